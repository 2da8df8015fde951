"""Reading a study's Parquet results (written by ``study.sinks.parquet``) with the project's own semantics:
epochs de-duplicated (a resumed trial replays epochs; the latest written wins), samples as NumPy arrays.
The layout, column types and the writing rules are the contract in ``analysis.core.tables``; ``docs/data.md``
describes every table and how to read it with pandas, polars, DuckDB and pyarrow.

Every reader takes the study directory ``runs/<study>`` (the ``parquet/`` directory itself works too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.core.tables import (
    EPOCHS,
    PARQUET_DIR,
    RERUNS_DIR,
    SAMPLES_DIR,
    TRIAL_COLUMNS,
    TRIALS,
    atomic_write_table,
    matrix_file,
    read_folder,
    rows_to_matrices,
    sample_file,
)

SAMPLES_COMPRESSION = "zstd"


def parquet_dir(study_dir: Path | str) -> Path:
    """``runs/<study>/parquet``; accepts that directory itself as well."""
    path = Path(study_dir)
    if path.name == PARQUET_DIR and not (path / PARQUET_DIR).is_dir():
        return path
    return path / PARQUET_DIR


def samples_path(study_dir: Path | str, trial_id: str) -> Path:
    """Where a search trial's per-sample outputs are (``parquet/samples/part-<trial id>.parquet``)."""
    return sample_file(parquet_dir(study_dir), trial_id)


def _require_dir(study_dir: Path | str) -> Path:
    root = parquet_dir(study_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no Parquet results at {root}: is {study_dir} a study directory (runs/<study>)?"
        )
    return root


def dedupe_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial_id, epoch): the latest written wins (a trial resumed from a checkpoint replays
    epochs)."""
    if frame.empty:
        return frame
    frame = frame.sort_values("written_at", kind="stable")
    frame = frame.drop_duplicates(["trial_id", "epoch"], keep="last")
    return frame.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def epochs_frame(table: pa.Table) -> pd.DataFrame:
    """An epochs table (Arrow) as the readers return it: de-duplicated, sorted by trial and epoch."""
    return dedupe_epochs(table.to_pandas())


def _read_epochs_at(root: Path) -> pd.DataFrame:
    return epochs_frame(read_folder(root, EPOCHS))


def _read_trials_at(root: Path) -> pd.DataFrame:
    path = TRIALS.location(root)
    if not path.exists():
        return pd.DataFrame(columns=list(TRIAL_COLUMNS))
    return pq.read_table(path).to_pandas()


def read_epochs(study_dir: Path | str) -> pd.DataFrame:
    """One row per trial × epoch: ``study, trial_id, epoch, written_at, config/*`` and every metric (null
    where a trial did not report it)."""
    return _read_epochs_at(_require_dir(study_dir))


def read_trials(study_dir: Path | str) -> pd.DataFrame:
    """One row per trial: ``study, trial_id, status, reason, epochs_run, started_at, ended_at``, ``config/*``,
    ``tag/*``, final metrics under their own keys and ``best/val/*``. Empty (with the key columns) before
    the first trial starts."""
    return _read_trials_at(_require_dir(study_dir))


def _samples_at(root: Path, trial_id: str, what: str) -> dict[str, np.ndarray]:
    path = sample_file(root, trial_id)
    if not path.exists():
        legacy = root / SAMPLES_DIR / f"trial={trial_id}.parquet"  # before the contract (schema_version 1)
        if not legacy.exists():
            raise FileNotFoundError(f"no per-sample outputs for {what} {trial_id!r}: {path} does not exist")
        path = legacy
    table = pq.read_table(path)
    if "trial_id" in table.column_names:
        table = table.drop_columns(["trial_id"])
    return table_to_arrays(table)


def read_samples(study_dir: Path | str, trial_id: str) -> dict[str, np.ndarray]:
    """The per-sample test outputs of one trial as written by ``write_samples``: 1-D arrays (``label``,
    ``pred``, ``msp``, ``lognorm`` …) and 2-D ones (``logits``: N×K float16)."""
    return _samples_at(_require_dir(study_dir), trial_id, "trial")


def read_matrices(study_dir: Path | str, trial_id: str) -> dict[str, np.ndarray]:
    """The K×K matrices one trial left at its last epoch (name -> array; ``target_matrix(method)`` is the
    soft-label target a method learned); none for a trial that left none."""
    path = matrix_file(_require_dir(study_dir), trial_id)
    return rows_to_matrices(pq.read_table(path)) if path.exists() else {}


def table_to_arrays(table: pa.Table) -> dict[str, np.ndarray]:
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def reruns_dir(study_dir: Path | str) -> Path:
    """The reruns' results root (``parquet/reruns``): the same tables as the search's."""
    return parquet_dir(study_dir) / RERUNS_DIR


def read_rerun_trials(study_dir: Path | str) -> pd.DataFrame:
    """The reruns' trial table (``tag/source_trial`` names the search trial each one repeats); empty, with
    the key columns, when the study has no reruns."""
    return _read_trials_at(reruns_dir(study_dir))


def read_rerun_epochs(study_dir: Path | str) -> pd.DataFrame:
    """The reruns' epochs table (empty, with the key columns, when the study has no reruns)."""
    return _read_epochs_at(reruns_dir(study_dir))


def read_rerun_samples(study_dir: Path | str, trial_id: str) -> dict[str, np.ndarray]:
    return _samples_at(reruns_dir(study_dir), trial_id, "rerun")


def write_samples(path: Path | str, per_sample: dict[str, np.ndarray]) -> None:
    """Per-sample outputs, compactly: integer 1-D arrays (``label``, ``pred``) as int16 when they fit, else
    int32; float 1-D arrays (the scores ``msp``, ``lognorm``) as float64; 2-D arrays (``logits``, N×K) as a
    ``fixed_size_list<float16>[K]`` column (integers keep int32). zstd-compressed.

    Scores keep float64 because saturated MSPs (1 − 1e-9 …) collapse into ties in float32, and AURC, coverage
    at risk and AUROC recomputed from the file (the leaderboard's bootstrap) would then differ from the
    reported ``test/…`` values."""
    columns = {}
    for name, values in per_sample.items():
        arr = np.asarray(values)
        if arr.ndim == 1:
            columns[name] = pa.array(_compact_1d(arr))
        elif arr.ndim == 2:
            item = arr.astype(np.float16 if arr.dtype.kind == "f" else np.int32)
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(item.reshape(-1)), arr.shape[1])
        else:
            raise ValueError(f"per_sample[{name!r}] has shape {arr.shape}; allowed: 1-D (N,) or 2-D (N, K)")
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"per_sample arrays differ in length: { {k: len(c) for k, c in columns.items()} }")
    atomic_write_table(pa.table(columns), Path(path), compression=SAMPLES_COMPRESSION)


def _compact_1d(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "iub":
        small = arr.size == 0 or (arr.min() >= np.iinfo(np.int16).min and arr.max() <= np.iinfo(np.int16).max)
        return arr.astype(np.int16 if small else np.int32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    return arr
