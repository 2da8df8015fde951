"""Parquet, the source of truth of a study: an epoch part file per batch of results (merged now and then)
and a ``trials.parquet`` rewritten in a batch where a trial starts or ends (``study.sinks.trial_table`` keeps
its rows, the ended trials' as one Arrow table). Every file is written under a temporary name in its directory
and renamed into place, so a crash never leaves a half-written file where readers look. The tables, their
columns and types are the contract in ``analysis.core.tables`` (every file of a table has the table's schema);
the readers are in ``analysis.results``.
"""

from __future__ import annotations

import math
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

from analysis.core.statuses import TrialStatus
from analysis.core.tables import (
    BEST_PREFIX,
    CONFIG_PREFIX,
    EPOCH_KEY_COLUMNS,
    EPOCHS,
    MATRICES,
    MATRIX_SUFFIX,
    SAMPLES,
    SAMPLES_FILE,
    TAG_PREFIX,
    TRIAL_COLUMNS,
    TRIALS,
    PartWriter,
    atomic_write_table,
    combine,
    matrix_file,
    matrix_rows,
    merge_schemas,
    read_parts,
    rows_to_table,
    sample_file,
    write_file,
)
from analysis.results import SAMPLES_COMPRESSION, dedupe_epochs, epochs_frame
from study.sinks.base import EpochResult, ResultSink, SinkEvent, TrialEnd, TrialStart
from study.sinks.trial_table import TrialState, TrialsView, TrialTable

BATCH_PART, MERGED_PART = "b", "m"  # epochs/part-b-*: one per written batch; part-m-*: batches merged
MERGE_AFTER = 64  # batch part files before they are merged into one
# A live study rewrites trials.parquet (every trial's row) at most this often: at a trial's end each time, it
# cost O(trials) per trial (0.2 s at 1000 trials on 2 cores). Closing the sink always writes it.
LIVE_TRIALS_EVERY_S = 2.0


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
        if type(value) in (float, str):  # nearly every value: skips the slower checks below
            out[key] = value
        elif not isinstance(value, bool) and isinstance(value, (Number, str)):
            out[key] = value if isinstance(value, str) else float(value)
    return out


class ParquetSink(ResultSink):
    """Writes ``runs/<study>/parquet/`` (``root``). On construction it rebuilds the trial table from the files
    already there, so a resumed study keeps its earlier trials."""

    holds_truth = True

    def __init__(self, root: Path | str, study_name: str, configs: list[dict[str, Any]] | None = None,
                 trials_every_s: float = 0.0) -> None:
        """``configs``: flat trial configurations the study will run (one per method, say): their columns
        and types go into the epochs table's schema (``_common_metadata``) before the first trial starts.
        ``trials_every_s``: the least time between two writes of ``trials.parquet`` (0: at every change)."""
        self.root = Path(root)
        self.study = study_name
        self.epochs_dir = EPOCHS.location(self.root)
        declared = None
        if configs:
            rows = [{"study": study_name, **config_columns(c)} for c in configs]
            declared = merge_schemas(EPOCHS, [rows_to_table(EPOCHS, [row]).schema for row in rows])
        self.epochs_table = PartWriter(self.root, EPOCHS, declared)
        self.samples_table = PartWriter(self.root, SAMPLES)
        self.matrices_table = PartWriter(self.root, MATRICES)
        self._trials = TrialTable()
        self.merge_after = MERGE_AFTER
        self.trials_every_s = trials_every_s
        self._trials_changed = False
        self._trials_written_at = -math.inf
        self._restore()

    @property
    def trials(self) -> TrialsView:
        """Every trial's state, running and ended, read-only (an ended trial's is a copy)."""
        return TrialsView(self._trials)

    def epochs_seen(self) -> dict[str, set[int]]:
        """The epochs each trial has in the epochs table, as far as this sink knows (those it restored and
        those it wrote)."""
        return self._trials.epochs_seen()

    # -- ResultSink ---------------------------------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self.write_batch([start])

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.write_batch([EpochResult(trial_id, epoch, metrics)])

    def trial_ended(self, end: TrialEnd) -> None:
        self.write_batch([end])

    def write_batch(self, events: list[SinkEvent]) -> None:
        """The events' epoch rows as one part file, then the ended trials' samples and matrices, then
        ``trials.parquet`` once: a reader never sees a trial ended whose epochs are not on disk."""
        rows, ended = [], []
        for event in events:
            if isinstance(event, EpochResult):
                rows.append(self._epoch_row(event))
            elif isinstance(event, TrialStart):
                self._start(event)
            else:
                ended.append(self._end(event))
        if rows:
            name = f"part-{BATCH_PART}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
            self.epochs_table.write(rows_to_table(EPOCHS, rows), name)
        for end, last_epoch in ended:
            if end.artifacts_dir is not None:
                self._write_artifacts(end.trial_id, Path(end.artifacts_dir), last_epoch)
        self._trials_changed |= bool(ended) or len(rows) < len(events)
        if self._trials_changed and time.monotonic() - self._trials_written_at >= self.trials_every_s:
            self._write_trials()
        if len(self._batch_parts()) >= self.merge_after:
            self._compact()

    def _start(self, start: TrialStart) -> None:
        state = self._trials.get(start.trial_id)
        base = {
            "study": self.study,
            "trial_id": start.trial_id,
            "status": TrialStatus.RUNNING,
            "reason": "",
            "started_at": _now(start.at),
            "ended_at": None,
        }
        row = {
            **base,
            **config_columns(start.config),
            **{f"{TAG_PREFIX}{k}": str(v) for k, v in start.tags.items()},
        }
        if state is None:
            self._trials.add(start.trial_id, TrialState(row))
        else:  # resumed: keep the epochs and best values seen before
            state.row = {**state.row, **row, "started_at": state.row.get("started_at") or row["started_at"]}

    def _epoch_row(self, result: EpochResult) -> dict[str, Any]:
        trial_id, epoch = result.trial_id, int(result.epoch)
        state = self._trials.get(trial_id)
        if state is None:  # a result for a trial we were not told about: record it all the same
            state = self._trials.add(trial_id, TrialState(
                {"study": self.study, "trial_id": trial_id, "status": TrialStatus.RUNNING, "reason": ""}
            ))
        values = metric_values({k: v for k, v in result.metrics.items() if k not in EPOCH_KEY_COLUMNS})
        config = {k: v for k, v in state.row.items() if k.startswith(CONFIG_PREFIX)}
        state.observe(epoch, values)
        return {"study": self.study, "trial_id": trial_id, "epoch": epoch, "written_at": _now(), **config, **values}

    def _end(self, end: TrialEnd) -> tuple[TrialEnd, int | None]:
        """Records the end in the trial's row; returns it with the trial's last epoch."""
        state = self._trials.get(end.trial_id)
        if state is None:
            state = self._trials.add(end.trial_id, TrialState({"study": self.study, "trial_id": end.trial_id}))
        reserved = set(TRIAL_COLUMNS) | {"epochs_run"}
        final = {
            k: v
            for k, v in metric_values(end.final_metrics).items()
            if k not in reserved and not k.startswith((CONFIG_PREFIX, TAG_PREFIX, BEST_PREFIX))
        }
        state.row.update(final)
        state.row.update({"status": end.status, "reason": end.reason, "ended_at": _now(end.at)})
        return end, max(state.epochs, default=None)

    def running_trials(self) -> set[str]:
        """Trials that started or reported but never ended (as far as this study's files know)."""
        return self._trials.running()

    def close(self) -> None:
        self._write_trials()
        self._compact()

    # -- internals ----------------------------------------------------------------------------------
    def _write_trials(self) -> None:
        self._trials_changed, self._trials_written_at = False, time.monotonic()
        rows = self._trials.rows()
        if rows is not None:
            write_file(TRIALS, rows, TRIALS.location(self.root))

    def _write_artifacts(self, trial_id: str, folder: Path, last_epoch: int | None) -> None:
        """A finished trial's per-sample outputs and its matrices (each ``<name>.npy`` of 2 dimensions)."""
        if (folder / SAMPLES_FILE).is_file():
            self._write_samples(trial_id, folder / SAMPLES_FILE)
        matrices = {}
        for path in sorted(folder.glob(f"*{MATRIX_SUFFIX}")):
            matrix = np.load(path)
            if matrix.ndim == 2:
                matrices[path.name.removesuffix(MATRIX_SUFFIX)] = matrix
        if matrices:
            rows = matrix_rows(trial_id, last_epoch, matrices)
            self.matrices_table.write(rows, matrix_file(self.root, trial_id).name)

    def _write_samples(self, trial_id: str, source: Path) -> None:
        """A trial's per-sample outputs with its ``trial_id`` as the first column, at the samples table's
        schema (one file per trial)."""
        data = pq.read_table(source)
        if "trial_id" in data.column_names:
            data = data.drop_columns(["trial_id"])
        data = data.add_column(0, "trial_id", pa.array([trial_id] * len(data), pa.string()))
        path = sample_file(self.root, trial_id)
        data = data.replace_schema_metadata(None)
        try:
            self.samples_table.write(data, path.name, compression=SAMPLES_COMPRESSION)
        except pa.ArrowTypeError as err:  # e.g. logits of another width: kept, outside the one schema
            warnings.warn(f"trial {trial_id}'s samples do not fit the samples table ({err}); written as they are",
                          stacklevel=2)
            atomic_write_table(data, path, compression=SAMPLES_COMPRESSION)

    def _batch_parts(self) -> list[Path]:
        return sorted(self.epochs_dir.glob(f"part-{BATCH_PART}-*.parquet"))

    def _compact(self) -> None:
        """Merge the batch part files into one, so that reading a large study opens few files. The merged
        file is in place before the parts go; readers de-duplicate any overlap."""
        tables, merged_parts = [], []
        for path in self._batch_parts():
            try:
                tables.append(pq.ParquetFile(path).read())
                merged_parts.append(path)
            except (OSError, pa.ArrowException):  # left in place: the readers name it
                continue
        if len(merged_parts) < 2:
            return
        combined = combine(EPOCHS, tables, self.epochs_table.schema)
        keys = combined.select(["trial_id", "epoch", "written_at"]).to_pandas()
        keep = dedupe_epochs(keys.assign(_row=np.arange(len(keys))))["_row"].to_numpy()
        merged = combined.take(pa.array(keep))
        name = f"part-{MERGED_PART}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        self.epochs_table.write(merged, name)
        for path in merged_parts:
            path.unlink(missing_ok=True)

    def _restore(self) -> None:
        path = TRIALS.location(self.root)
        if path.exists():
            try:
                for row in pq.read_table(path).to_pylist():
                    row = {k: v for k, v in row.items() if not _is_missing(v)}
                    row.pop("epochs_run", None)
                    self._trials.add(row["trial_id"], TrialState(
                        {k: v for k, v in row.items() if not k.startswith(BEST_PREFIX)}
                    ))
            except (OSError, pa.ArrowException) as err:
                warnings.warn(
                    f"unreadable {path} ({err}); rebuilding the trial table from the epoch files",
                    stacklevel=2,
                )
        epochs = epochs_frame(combine(EPOCHS, read_parts(self.epochs_table.parts()), self.epochs_table.schema))
        for record in epochs.to_dict("records"):
            trial_id = record["trial_id"]
            state = self._trials.get(trial_id)
            if state is None:  # the driver died before trials.parquet knew this trial
                config = {
                    k: v for k, v in record.items() if k.startswith(CONFIG_PREFIX) and not _is_missing(v)
                }
                state = self._trials.add(trial_id, TrialState(
                    {
                        "study": record.get("study", self.study),
                        "trial_id": trial_id,
                        "status": TrialStatus.RUNNING,
                        "reason": "",
                        **config,
                    }
                ))
            metrics = {
                k: v
                for k, v in record.items()
                if k not in EPOCH_KEY_COLUMNS
                and not k.startswith(CONFIG_PREFIX)
                and not _is_missing(v)
            }
            state.observe(int(record["epoch"]), metrics)
        self._trials.fold()


def _now(at: float | None = None) -> pd.Timestamp:
    """``at`` (seconds since the epoch) as a UTC timestamp; now without it."""
    return pd.Timestamp(time.time_ns() if at is None else int(at * 1e9), unit="ns", tz="UTC")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
