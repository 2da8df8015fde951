"""Reading a study's Parquet results (written by ``study.sinks.parquet``).

Layout under ``runs/<study>/parquet/``::

    epochs/part-<trial_id>-<epoch>-<uuid8>.parquet   one row per reported epoch (replays allowed)
    epochs/part-<trial_id>-all-<uuid8>.parquet       a finished trial's rows, merged from its part files
    trials.parquet                                   one row per trial
    samples/trial=<trial_id>.parquet                 per-sample test outputs of one trial

Every reader takes the study directory ``runs/<study>`` (the ``parquet/`` directory itself works too).
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_DIR = "parquet"
EPOCHS_DIR = "epochs"
TRIALS_FILE = "trials.parquet"
SAMPLES_DIR = "samples"
PART_GLOB = "part-*.parquet"  # temporary files start with "." and end in ".tmp": never matched

EPOCH_KEY_COLUMNS = ("study", "trial_id", "epoch", "written_at")
CONFIG_PREFIX = "config/"
TAG_PREFIX = "tag/"
BEST_PREFIX = "best/"

# Direction of "better" by metric name (the part after the last "/"); everything not listed is minimised.
MAX_METRICS = frozenset({"acc", "auroc"})
MAX_PREFIXES = ("cov_at_",)


def metric_mode(key: str) -> str:
    """``"max"`` for accuracy-like metrics (``val/acc``, ``test/auroc``, ``val/cov_at_5``), else ``"min"``."""
    name = key.rsplit("/", 1)[-1]
    return "max" if name in MAX_METRICS or name.startswith(MAX_PREFIXES) else "min"


def parquet_dir(study_dir: Path | str) -> Path:
    """``runs/<study>/parquet``; accepts that directory itself as well."""
    path = Path(study_dir)
    if path.name == PARQUET_DIR and not (path / PARQUET_DIR).is_dir():
        return path
    return path / PARQUET_DIR


def samples_path(study_dir: Path | str, trial_id: str) -> Path:
    return parquet_dir(study_dir) / SAMPLES_DIR / f"trial={trial_id}.parquet"


def _require_dir(study_dir: Path | str) -> Path:
    root = parquet_dir(study_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no Parquet results at {root}: is {study_dir} a study directory (runs/<study>)?"
        )
    return root


def read_epoch_tables(epochs_dir: Path) -> list[pa.Table]:
    """Every readable part file; an unreadable one (a crash mid-write, a truncated copy) is named in a warning
    and skipped."""
    return read_epoch_tables_from(sorted(epochs_dir.glob(PART_GLOB)))


def read_epoch_tables_from(paths: list[Path]) -> list[pa.Table]:
    tables = []
    for path in paths:
        try:
            tables.append(pq.ParquetFile(path).read())  # a few times faster than pq.read_table per file
        except FileNotFoundError:  # merged into a trial's compacted file since the listing
            continue
        except (OSError, pa.ArrowException) as err:
            warnings.warn(f"skipping unreadable Parquet part file {path}: {err}", stacklevel=3)
    return tables


def concat_tables(tables: list[pa.Table]) -> pd.DataFrame:
    if not tables:
        return pd.DataFrame()
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column with clashing types across files
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def dedupe_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial_id, epoch): the latest written wins (a trial resumed from a checkpoint replays
    epochs)."""
    if frame.empty:
        return frame
    frame = frame.sort_values("written_at", kind="stable")
    frame = frame.drop_duplicates(["trial_id", "epoch"], keep="last")
    return frame.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def read_epochs(study_dir: Path | str) -> pd.DataFrame:
    """One row per trial × epoch: ``study, trial_id, epoch, written_at, config/*`` and every metric."""
    frame = concat_tables(read_epoch_tables(_require_dir(study_dir) / EPOCHS_DIR))
    if frame.empty:
        return pd.DataFrame(columns=list(EPOCH_KEY_COLUMNS))
    frame["epoch"] = frame["epoch"].astype("int64")
    return dedupe_epochs(frame)


def read_trials(study_dir: Path | str) -> pd.DataFrame:
    """One row per trial: ``trial_id, status, reason, epochs_run, config/*, tag/*``, final metrics under their
    own keys and ``best/val/*``. Empty (with the key columns) before the first trial starts."""
    path = _require_dir(study_dir) / TRIALS_FILE
    if not path.exists():
        return pd.DataFrame(columns=["trial_id", "status", "reason", "epochs_run"])
    return pq.read_table(path).to_pandas()


def read_samples(study_dir: Path | str, trial_id: str) -> dict[str, np.ndarray]:
    """The per-sample test outputs of one trial as written by ``write_samples``: 1-D arrays (``label``,
    ``pred``, ``msp``, ``lognorm`` …) and 2-D ones (``logits``: N×K float16)."""
    path = samples_path(_require_dir(study_dir), trial_id)
    if not path.exists():
        raise FileNotFoundError(f"no per-sample outputs for trial {trial_id!r}: {path} does not exist")
    return table_to_arrays(pq.read_table(path))


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


RERUNS_DIR = "reruns"  # `smoothstudy rerun` writes the same layout under parquet/reruns/


def reruns_dir(study_dir: Path | str) -> Path:
    return parquet_dir(study_dir) / RERUNS_DIR


def read_rerun_trials(study_dir: Path | str) -> pd.DataFrame:
    """The reruns' trial table (``tag/source_trial`` names the search trial each one repeats); empty, with
    the key columns, when the study has no reruns."""
    path = reruns_dir(study_dir) / TRIALS_FILE
    if not path.exists():
        return pd.DataFrame(columns=["trial_id", "status", "reason", "epochs_run"])
    return pq.read_table(path).to_pandas()


def read_rerun_samples(study_dir: Path | str, trial_id: str) -> dict[str, np.ndarray]:
    path = reruns_dir(study_dir) / SAMPLES_DIR / f"trial={trial_id}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no per-sample outputs for rerun {trial_id!r}: {path} does not exist")
    return table_to_arrays(pq.read_table(path))


def atomic_write_table(table: pa.Table, path: Path, **kwargs: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
    atomic_write_table(pa.table(columns), Path(path), compression="zstd")


def _compact_1d(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "iub":
        small = arr.size == 0 or (arr.min() >= np.iinfo(np.int16).min and arr.max() <= np.iinfo(np.int16).max)
        return arr.astype(np.int16 if small else np.int32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    return arr
