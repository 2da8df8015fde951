"""The rows of ``trials.parquet`` as the Parquet sink keeps them while a study runs. A trial that may still
change (running, or ended since the file was last written) is a :class:`TrialState`, a Python dict row; when
the file is written, the ended trials' rows are folded into one Arrow table. A dict row of some 60 final
metrics and the best values costs the driver ~10 KB a trial for the whole study; a row of the table, ~1 KB.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, ItemsView, Iterator, Mapping, ValuesView
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analysis.core.catalogue import metric_mode
from analysis.core.statuses import TrialStatus
from analysis.core.tables import BEST_PREFIX, TRIAL_COLUMNS, TRIALS, order_columns, rows_to_table

# Names in the ended table that are not the file's columns start with HIDDEN, which no metric's does.
HIDDEN = "\x00"
EPOCHS_SEEN = f"{HIDDEN}epochs"  # the epochs each trial reported
# JSON + a column: the column's values as JSON text, where they are of more than one Python type (a config
# value 0 in one trial and 0.5 or "auto" in another). The file's type of such a column depends on every row
# (float64, or text with str(0) "0"), so the values are kept as they were and typed when the file is written.
JSON = f"{HIDDEN}json "
ROWS_AT_ONCE = 512  # ended rows made Python rows at a time, when every trial's state is read


class TrialState:
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

    @property
    def ended(self) -> bool:
        return self.row.get("status") != TrialStatus.RUNNING


class TrialTable:
    """Every trial's row: the ``live`` states, and the ended trials folded into a table by :meth:`fold`. A
    folded trial that comes back (a resumed study restarting it) is taken out of the table into a state."""

    def __init__(self) -> None:
        self.live: dict[str, TrialState] = {}
        self._ended: pa.Table | None = None  # a row per folded trial, each trial once, with the HIDDEN columns

    def get(self, trial_id: str) -> TrialState | None:
        state = self.live.get(trial_id)
        if state is None and (i := self._index(trial_id)) >= 0:
            state = self.live[trial_id] = self._take(trial_id, i)
        return state

    def add(self, trial_id: str, state: TrialState) -> TrialState:
        self.live[trial_id] = state
        return state

    def running(self) -> set[str]:
        return {t for t, state in self.live.items() if not state.ended}

    def epochs_seen(self) -> dict[str, set[int]]:
        seen = {t: set(state.epochs) for t, state in self.live.items()}
        if self._ended is not None:
            ids, epochs = self._ended["trial_id"].to_pylist(), self._ended[EPOCHS_SEEN].to_pylist()
            seen.update((t, set(e)) for t, e in zip(ids, epochs))
        return seen

    def fold(self) -> None:
        ended = [t for t, state in self.live.items() if state.ended]
        if ended:
            states = [self.live.pop(t) for t in ended]
            rows = _table([state.to_row() for state in states])
            seen = pa.array([sorted(state.epochs) for state in states], pa.list_(pa.int64()))
            self._ended = concat_rows([self._ended, rows.append_column(EPOCHS_SEEN, seen)])

    def rows(self) -> pa.Table | None:
        """Every trial's row (after :meth:`fold`) ordered by trial id, typed as ``rows_to_table`` would type
        them all at once; None without trials."""
        self.fold()
        running = [self.live[t].to_row() for t in sorted(self.live)]
        parts = [t for t in (self._ended, _table(running) if running else None) if t is not None]
        if not parts:
            return None
        rows = concat_rows(parts)
        for name in [n for n in rows.column_names if n.startswith(JSON)]:
            values = [None if v is None else json.loads(v) for v in rows[name].to_pylist()]
            rows = rows.append_column(_plain(name), rows_to_table(TRIALS, [{_plain(name): v} for v in values])[0])
        names = order_columns(TRIALS, [n for n in rows.column_names if not n.startswith(HIDDEN)])
        return rows.select(names).sort_by("trial_id")

    def states(self) -> Iterator[tuple[str, TrialState]]:
        """Every trial's state; an ended trial's is rebuilt from its row, a copy."""
        yield from list(self.live.items())
        if self._ended is not None:
            for batch in self._ended.to_batches(ROWS_AT_ONCE):
                for row in batch.to_pylist():
                    yield row["trial_id"], _state(row)

    def state_of(self, trial_id: str) -> TrialState:
        """The live state, or a copy rebuilt from the ended table (which keeps the row)."""
        if trial_id in self.live:
            return self.live[trial_id]
        if (i := self._index(trial_id)) < 0:
            raise KeyError(trial_id)
        return _state(self._ended.slice(i, 1).to_pylist()[0])

    def ids(self) -> Iterator[str]:
        yield from list(self.live)
        if self._ended is not None:
            yield from self._ended["trial_id"].to_pylist()

    def __len__(self) -> int:
        return len(self.live) + (0 if self._ended is None else len(self._ended))

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self.live or (isinstance(trial_id, str) and self._index(trial_id) >= 0)

    def _index(self, trial_id: str) -> int:
        return -1 if self._ended is None else pc.index(self._ended["trial_id"], trial_id).as_py()

    def _take(self, trial_id: str, i: int) -> TrialState:
        """Row ``i`` out of the ended table, as the state it was folded from. A column that only this row
        had values in goes with it, so the file has the columns the rows would give."""
        table = self._ended
        null_before = {name for name in table.column_names if table[name].null_count == len(table)}
        state = _state(table.slice(i, 1).to_pylist()[0], {_plain(n) for n in null_before})
        table = table.filter(pc.not_equal(table["trial_id"], trial_id))
        gone = [n for n in table.column_names if table[n].null_count == len(table) and n not in null_before]
        self._ended = table.drop_columns(gone) if len(table) else None
        return state


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """``rows_to_table`` of trial rows, a column of values of several types kept as JSON text (JSON + name)."""
    table = rows_to_table(TRIALS, rows)
    for i, name in enumerate(table.column_names):
        values = [row.get(name) for row in rows]
        if name not in TRIAL_COLUMNS and len({type(v) for v in values if v is not None}) > 1:
            table = table.set_column(i, JSON + name, pa.array([_json(v) for v in values], pa.string()))
    return table


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _plain(name: str) -> str:
    return name[len(JSON):] if name.startswith(JSON) else name


def _state(row: dict[str, Any], keep_null: Collection[str] = ()) -> TrialState:
    """The state a folded row came from. A null is a key the row lacked, except in a column of nulls only
    (``keep_null``): some row had the key, with None (a config value of None, say)."""
    hidden = {k: row.pop(k) for k in [k for k in row if k.startswith(HIDDEN)]}
    row.update({_plain(k): json.loads(v) for k, v in hidden.items() if k.startswith(JSON) and v is not None})
    row.update({_plain(k): None for k, v in hidden.items() if k.startswith(JSON) and v is None})
    state = TrialState({
        k: v for k, v in row.items()
        if (v is not None or k in keep_null) and k != "epochs_run" and not k.startswith(BEST_PREFIX)
    })
    state.epochs = set(hidden.get(EPOCHS_SEEN) or ())
    state.best = {k[len(BEST_PREFIX):]: v for k, v in row.items() if k.startswith(BEST_PREFIX) and v is not None}
    return state


def concat_rows(tables: list[pa.Table | None]) -> pa.Table:
    """The rows of ``tables`` (of :func:`_table`) as one table. A column the tables type apart becomes JSON:
    Arrow's cast to a wider type would write the int 1 as "1.0" where one ``rows_to_table`` writes "1"."""
    tables = [t for t in tables if t is not None]
    types = [dict(zip(t.column_names, t.schema.types)) for t in tables]
    columns = {}
    for name in order_columns(TRIALS, dict.fromkeys(_plain(n) for t in types for n in t)):
        kinds = {t[name] for t in types if name in t} - {pa.null()}
        if len(kinds) > 1 or any(JSON + name in t for t in types):
            chunks = [_json_column(t, name) for t in tables]
            columns[JSON + name] = pa.chunked_array([c for part in chunks for c in part.chunks], pa.string())
            continue
        kind = kinds.pop() if kinds else pa.null()
        parts = [t[name].cast(kind) if name in ts else pa.chunked_array([pa.nulls(len(t), kind)], kind)
                 for t, ts in zip(tables, types)]
        columns[name] = pa.chunked_array([c for part in parts for c in part.chunks], kind)
    return pa.table(columns).combine_chunks()


def _json_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if JSON + name in table.column_names:
        return table[JSON + name]
    if name in table.column_names:
        return pa.chunked_array([pa.array([_json(v) for v in table[name].to_pylist()], pa.string())])
    return pa.chunked_array([pa.nulls(len(table), pa.string())])


class TrialsView(Mapping[str, TrialState]):
    """Every trial the sink knows, read-only. A running trial's is its state; an ended trial's is rebuilt from
    its row (a copy: changing it changes nothing)."""

    def __init__(self, table: TrialTable) -> None:
        self._table = table

    def __getitem__(self, trial_id: str) -> TrialState:
        return self._table.state_of(trial_id)

    def __iter__(self) -> Iterator[str]:
        return self._table.ids()

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self._table

    def items(self) -> _Items:  # one pass over the table, not a look-up per trial
        return _Items(self)

    def values(self) -> _Values:
        return _Values(self)


class _Items(ItemsView):
    def __iter__(self) -> Iterator[tuple[str, TrialState]]:
        return self._mapping._table.states()


class _Values(ValuesView):
    def __iter__(self) -> Iterator[TrialState]:
        return (state for _, state in self._mapping._table.states())
