"""A study folder as pandas DataFrames: the notebook API, and what the report reads.

    from analysis.frames import study_frames

    s = study_frames("runs/quick")
    s.trials                 # one row per search trial (status, config/*, final metrics, best/val/*)
    s.epochs                 # one row per search trial x epoch (learning curves)
    s.reruns                 # one row per rerun (`smoothstudy rerun`; tag/source_trial names its trial)
    s.rerun_epochs           # the reruns' epochs
    s.runs                   # search trials and reruns in one table, told apart by tag/kind
    s.samples("<trial id>")  # one trial's (or rerun's) per-sample test outputs, read when asked for

Each table is read once, on first use. The columns are described in ``docs/data.md``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.results import (
    parquet_dir,
    read_epochs,
    read_rerun_epochs,
    read_rerun_samples,
    read_rerun_trials,
    read_samples,
    read_trials,
)


class StudyFrames:
    """The tables of one study (``runs/<study>`` or its ``parquet/`` folder), loaded lazily."""

    def __init__(self, study_dir: Path | str) -> None:
        self.root = parquet_dir(study_dir)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"no Parquet results at {self.root}: is {study_dir} a study directory (runs/<study>)?"
            )

    @cached_property
    def trials(self) -> pd.DataFrame:
        return read_trials(self.root)

    @cached_property
    def epochs(self) -> pd.DataFrame:
        return read_epochs(self.root)

    @cached_property
    def reruns(self) -> pd.DataFrame:
        return read_rerun_trials(self.root)

    @cached_property
    def rerun_epochs(self) -> pd.DataFrame:
        return read_rerun_epochs(self.root)

    @property
    def runs(self) -> pd.DataFrame:
        """Search trials and reruns together; ``tag/kind`` says which (``trial``, ``rerun`` …)."""
        frames = [f for f in (self.trials, self.reruns) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else self.trials

    def sample_arrays(self, trial_id: str) -> dict[str, np.ndarray]:
        """One trial's or rerun's per-sample outputs as NumPy arrays (``logits``: N x K)."""
        try:
            return read_samples(self.root, trial_id)
        except FileNotFoundError:
            return read_rerun_samples(self.root, trial_id)

    def samples(self, trial_id: str) -> pd.DataFrame:
        """One trial's or rerun's per-sample outputs: one row per test sample (``label``, ``pred``, the
        confidence scores …), ``logits`` as one column per class (``logit_0`` …)."""
        arrays = self.sample_arrays(trial_id)
        columns: dict[str, np.ndarray] = {}
        for name, values in arrays.items():
            if values.ndim == 2:
                columns.update({f"{name.removesuffix('s')}_{k}": values[:, k] for k in range(values.shape[1])})
            else:
                columns[name] = values
        return pd.DataFrame(columns).assign(trial_id=trial_id)


def study_frames(study_dir: Path | str) -> StudyFrames:
    """A study's results as DataFrames: ``.trials``, ``.epochs``, ``.reruns``, ``.rerun_epochs``, ``.runs``
    and ``.samples(trial_id)``; each read from Parquet on first use."""
    return StudyFrames(study_dir)
