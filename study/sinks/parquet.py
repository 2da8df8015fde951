"""Parquet, the source of truth of a study: small epoch part files as results arrive and a ``trials.parquet``
rewritten whenever a trial starts or ends. Every file is written under a temporary name in its directory and
renamed into place, so a crash never leaves a half-written file where readers look. The layout and the
readers are in ``analysis.results``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import uuid
import warnings
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.results import (
    BEST_PREFIX,
    CONFIG_PREFIX,
    EPOCH_KEY_COLUMNS,
    EPOCHS_DIR,
    SAMPLES_DIR,
    TAG_PREFIX,
    TRIALS_FILE,
    atomic_write_table,
    concat_tables,
    dedupe_epochs,
    metric_mode,
    read_epoch_tables,
)
from study.sinks.base import TrialEnd, TrialStart

SAMPLES_FILE = "samples.parquet"  # the name a trial gives its per-sample outputs in its artifacts dir
TRIAL_COLUMNS = ("study", "trial_id", "status", "reason", "epochs_run", "started_at", "ended_at")


def atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def config_columns(config: dict[str, Any]) -> dict[str, Any]:
    """Flat config → ``config/<key>`` columns; nested dicts flattened with ".", non-scalars made text."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(config_columns({f"{key}.{k}": v for k, v in value.items()}))
        else:
            out[f"{CONFIG_PREFIX}{key}"] = _scalar(value)
    return out


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def metric_values(metrics: dict[str, Any]) -> dict[str, Any]:
    """Numbers as float64, text kept as text (e.g. a node id); anything else is dropped."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (Number, str)):
            continue
        out[key] = value if isinstance(value, str) else float(value)
    return out


class _TrialState:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row  # the trials.parquet row, without epochs_run and best/*
        self.epochs: set[int] = set()
        self.best: dict[str, float] = {}

    def observe(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.epochs.add(epoch)
        for key, value in metrics.items():
            if not key.startswith("val/") or isinstance(value, str) or math.isnan(value):
                continue
            old = self.best.get(key)
            better = max if metric_mode(key) == "max" else min
            self.best[key] = value if old is None else better(old, value)

    def to_row(self) -> dict[str, Any]:
        row = dict(self.row)
        row["epochs_run"] = len(self.epochs)
        row.update({f"{BEST_PREFIX}{k}": v for k, v in sorted(self.best.items())})
        return row


class ParquetSink:
    """Writes ``runs/<study>/parquet/`` (``root``). On construction it rebuilds the trial table from the files
    already there, so a resumed study keeps its earlier trials."""

    def __init__(self, root: Path | str, study_name: str) -> None:
        self.root = Path(root)
        self.study = study_name
        self.epochs_dir = self.root / EPOCHS_DIR
        self.epochs_dir.mkdir(parents=True, exist_ok=True)
        self.trials: dict[str, _TrialState] = {}
        self._restore()

    # -- ResultSink ---------------------------------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        state = self.trials.get(start.trial_id)
        base = {
            "study": self.study,
            "trial_id": start.trial_id,
            "status": "running",
            "reason": "",
            "started_at": _now(),
            "ended_at": None,
        }
        row = {
            **base,
            **config_columns(start.config),
            **{f"{TAG_PREFIX}{k}": str(v) for k, v in start.tags.items()},
        }
        if state is None:
            self.trials[start.trial_id] = _TrialState(row)
        else:  # resumed: keep the epochs and best values seen before
            state.row = {**state.row, **row, "started_at": state.row.get("started_at") or row["started_at"]}
        self._write_trials()

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        state = self.trials.get(trial_id)
        if state is None:  # a result for a trial we were not told about: record it all the same
            state = self.trials[trial_id] = _TrialState(
                {"study": self.study, "trial_id": trial_id, "status": "running", "reason": ""}
            )
        values = metric_values({k: v for k, v in metrics.items() if k not in EPOCH_KEY_COLUMNS})
        config = {k: v for k, v in state.row.items() if k.startswith(CONFIG_PREFIX)}
        row = {
            "study": self.study,
            "trial_id": trial_id,
            "epoch": int(epoch),
            "written_at": _now(),
            **config,
            **values,
        }
        table = _table([row], list(row))
        name = f"part-{_safe(trial_id)}-{int(epoch)}-{uuid.uuid4().hex[:8]}.parquet"
        atomic_write_table(table, self.epochs_dir / name)
        state.observe(int(epoch), values)

    def trial_ended(self, end: TrialEnd) -> None:
        state = self.trials.get(end.trial_id)
        if state is None:
            state = self.trials[end.trial_id] = _TrialState({"study": self.study, "trial_id": end.trial_id})
        reserved = set(TRIAL_COLUMNS) | {"epochs_run"}
        final = {
            k: v
            for k, v in metric_values(end.final_metrics).items()
            if k not in reserved and not k.startswith((CONFIG_PREFIX, TAG_PREFIX, BEST_PREFIX))
        }
        state.row.update(final)
        state.row.update({"status": end.status, "reason": end.reason, "ended_at": _now()})
        if end.artifacts_dir is not None and (Path(end.artifacts_dir) / SAMPLES_FILE).is_file():
            atomic_copy(
                Path(end.artifacts_dir) / SAMPLES_FILE,
                self.root / SAMPLES_DIR / f"trial={end.trial_id}.parquet",
            )
        self._write_trials()
        self._compact(end.trial_id)

    def running_trials(self) -> set[str]:
        """Trials that started or reported but never ended (as far as this study's files know)."""
        return {t for t, state in self.trials.items() if state.row.get("status") == "running"}

    def close(self) -> None:
        self._write_trials()

    # -- internals ----------------------------------------------------------------------------------
    def _write_trials(self) -> None:
        rows = [self.trials[t].to_row() for t in sorted(self.trials)]
        if not rows:
            return
        columns = list(dict.fromkeys(c for row in rows for c in row))
        ordered = [c for c in TRIAL_COLUMNS if c in columns] + ["epochs_run"]
        ordered += sorted(c for c in columns if c not in ordered)
        atomic_write_table(_table(rows, ordered), self.root / TRIALS_FILE)

    def _compact(self, trial_id: str) -> None:
        """Merge a finished trial's part files into one, so that reading a large study opens one file per
        trial. The merged file is in place before the parts go; readers de-duplicate any overlap."""
        parts = sorted(self.epochs_dir.glob(f"part-{_safe(trial_id)}-*.parquet"))
        tables, merged_parts = [], []
        for path in parts:
            try:
                tables.append(pq.ParquetFile(path).read())
                merged_parts.append(path)
            except (OSError, pa.ArrowException):  # left in place: the readers name it
                continue
        if len(merged_parts) < 2:
            return
        merged = pa.Table.from_pandas(dedupe_epochs(concat_tables(tables)), preserve_index=False)
        name = f"part-{_safe(trial_id)}-all-{uuid.uuid4().hex[:8]}.parquet"
        atomic_write_table(merged, self.epochs_dir / name)
        for path in merged_parts:
            path.unlink(missing_ok=True)

    def _restore(self) -> None:
        path = self.root / TRIALS_FILE
        if path.exists():
            try:
                for row in pq.read_table(path).to_pylist():
                    row = {k: v for k, v in row.items() if not _is_missing(v)}
                    row.pop("epochs_run", None)
                    self.trials[row["trial_id"]] = _TrialState(
                        {k: v for k, v in row.items() if not k.startswith(BEST_PREFIX)}
                    )
            except (OSError, pa.ArrowException) as err:
                warnings.warn(
                    f"unreadable {path} ({err}); rebuilding the trial table from the epoch files",
                    stacklevel=2,
                )
        epochs = dedupe_epochs(concat_tables(read_epoch_tables(self.epochs_dir)))
        for record in epochs.to_dict("records"):
            trial_id = record["trial_id"]
            state = self.trials.get(trial_id)
            if state is None:  # the driver died before trials.parquet knew this trial
                config = {
                    k: v for k, v in record.items() if k.startswith(CONFIG_PREFIX) and not _is_missing(v)
                }
                state = self.trials[trial_id] = _TrialState(
                    {
                        "study": record.get("study", self.study),
                        "trial_id": trial_id,
                        "status": "running",
                        "reason": "",
                        **config,
                    }
                )
            metrics = {
                k: v
                for k, v in record.items()
                if k not in ("study", "trial_id", "epoch", "written_at")
                and not k.startswith(CONFIG_PREFIX)
                and not _is_missing(v)
            }
            state.observe(int(record["epoch"]), metrics)


def _now() -> pd.Timestamp:
    return pd.Timestamp(time.time_ns(), unit="ns", tz="UTC")


def _safe(trial_id: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in trial_id)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column_type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if not present:
        return pa.null()
    if all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def _column(name: str, values: list[Any]) -> pa.Array:
    if name in ("study", "trial_id", "status", "reason") or name.startswith(TAG_PREFIX):
        kind = pa.string()
    elif name in ("epoch", "epochs_run"):
        kind = pa.int64()
    elif name in ("written_at", "started_at", "ended_at"):
        kind = pa.timestamp("ns", tz="UTC")
    elif name.startswith(CONFIG_PREFIX):
        kind = _column_type(values)
    else:  # metrics: float64 unless some value is text
        kind = pa.string() if any(isinstance(v, str) for v in values) else pa.float64()
    if kind == pa.string():
        values = [None if v is None else str(v) for v in values]
    return pa.array(values, type=kind)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> pa.Table:
    return pa.table({name: _column(name, [row.get(name) for row in rows]) for name in columns})
