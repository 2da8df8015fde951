"""The Parquet contract of a study: which tables there are, where their files lie, how their columns are
typed, and the one way to write and read them. Every writer (``study.sinks.parquet``, reruns, anything that
adds rows later) and every reader (``analysis.results``, ``analysis.frames``) goes through this module;
``docs/data.md`` describes the tables for people.

A *results root* (``runs/<study>/parquet``, and ``runs/<study>/parquet/reruns`` for the reruns) holds::

    trials.parquet                       table "trials": one row per trial (one file, rewritten in place)
    epochs/part-*.parquet                table "epochs": one row per trial x epoch
    epochs/_common_metadata              the epochs table's schema (no rows)
    samples/part-<trial id>.parquet      table "samples": one row per test sample, ``trial_id`` a column
    samples/_common_metadata             the samples table's schema
    matrices/part-<trial id>.parquet     table "matrices": one row per entry of each K×K matrix a trial learned
    matrices/_common_metadata            (LS++ C, LLS Q: ``<method>_targets``) or measured, at its last epoch

The guarantee: at rest, every part file of a table has exactly the table's schema (the one in
``_common_metadata``), so ``pandas.read_parquet``, ``pyarrow.dataset``, polars and DuckDB read a table folder
with no column lost. A row that brings a new column (a new metric, a method's hyper-parameter first seen in a
resumed or extended study) widens the schema: ``_common_metadata`` is rewritten first, then every older part
file is rewritten with the new column as nulls. Column types only widen (null -> anything, int -> float,
anything else -> string). Every file carries ``schema_version`` and ``smoothstudy.table`` in its metadata.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
VERSION_KEY = b"schema_version"
TABLE_KEY = b"smoothstudy.table"
COMMON_METADATA = "_common_metadata"
PART_GLOB = "part-*.parquet"  # temporary files start with "." and end in ".tmp": never matched

PARQUET_DIR = "parquet"  # the results root under runs/<study>/
RERUNS_DIR = "reruns"  # the reruns' results root, under the study's results root

CONFIG_PREFIX = "config/"  # a trial's flat configuration: config/lr, config/loss_params.alpha …
TAG_PREFIX = "tag/"  # labels of a trial: tag/kind (trial, rerun …), tag/source_trial
BEST_PREFIX = "best/"  # trials only: the best value over epochs of each val/* metric
# Columns of a trial's (or rerun's) row that the readers rely on.
METHOD = f"{CONFIG_PREFIX}loss"  # the method, i.e. the loss it trained with
HPARAM_PREFIX = f"{CONFIG_PREFIX}loss_params."  # the method's hyperparameters: config/loss_params.alpha …
SEED = f"{CONFIG_PREFIX}seed"
TRAIN_ON = f"{CONFIG_PREFIX}train_on"  # what the run trained on (``catalogue.TRAIN_ON_VALUES``)
KIND, SOURCE = "kind", "source_trial"  # a trial's tags (``TrialStart.tags``): what it is, a rerun's source
KIND_TAG = f"{TAG_PREFIX}{KIND}"  # what the row is: "trial" (search, SEARCH_KIND), "rerun", "final" (FINAL_KIND)
SOURCE_TAG = f"{TAG_PREFIX}{SOURCE}"  # a rerun's search trial
SEARCH_KIND = "trial"  # the kind of a search trial
FINAL_KIND = "final"  # the kind of the study's own final runs (``smoothstudy final``), among the reruns

TIMESTAMP = pa.timestamp("ns", tz="UTC")

# A finished trial's artifacts folder, as the Parquet sink reads it: its per-sample outputs (rows of the
# samples table) and each K×K matrix as ``<name>.npy`` (rows of the matrices table).
SAMPLES_FILE = "samples.parquet"
MATRIX_SUFFIX = ".npy"


def target_matrix(method: str) -> str:
    """The name of the soft-label target matrix a method learns (LS++ C, LLS Q)."""
    return f"{method}_targets"


@dataclass(frozen=True)
class Table:
    """One table of the contract. ``path`` is relative to a results root: a file name, or a folder of part
    files (``folder=True``). ``columns`` are the fixed columns with their types, first and in this order; the
    other columns (config, tags, metrics) follow sorted by name, typed by :func:`column_type`."""

    name: str
    path: str
    folder: bool
    columns: tuple[tuple[str, pa.DataType], ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def location(self, root: Path | str) -> Path:
        return Path(root) / self.path


TRIALS = Table("trials", "trials.parquet", False, (
    ("study", pa.string()), ("trial_id", pa.string()), ("status", pa.string()), ("reason", pa.string()),
    ("epochs_run", pa.int64()), ("started_at", TIMESTAMP), ("ended_at", TIMESTAMP),
))
EPOCHS = Table("epochs", "epochs", True, (
    ("study", pa.string()), ("trial_id", pa.string()), ("epoch", pa.int64()), ("written_at", TIMESTAMP),
))
SAMPLES = Table("samples", "samples", True, (("trial_id", pa.string()),))
MATRICES = Table("matrices", "matrices", True, (
    ("trial_id", pa.string()), ("matrix", pa.string()), ("epoch", pa.int64()), ("row", pa.int64()),
    ("col", pa.int64()), ("value", pa.float64()),
))
TABLES = {t.name: t for t in (TRIALS, EPOCHS, SAMPLES, MATRICES)}

# The names kept for the layout (readers and writers import these, not string literals).
TRIALS_FILE = TRIALS.path
EPOCHS_DIR = EPOCHS.path
SAMPLES_DIR = SAMPLES.path
EPOCH_KEY_COLUMNS = EPOCHS.keys
TRIAL_COLUMNS = TRIALS.keys


def metadata(table: Table) -> dict[bytes, bytes]:
    return {VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: table.name.encode()}


def schema_version(path: Path | str) -> int | None:
    """The ``schema_version`` of a Parquet file (None for files written before the contract)."""
    meta = pq.read_schema(path).metadata or {}
    return int(meta[VERSION_KEY]) if VERSION_KEY in meta else None


def safe_name(trial_id: str) -> str:
    """A trial id as part of a file name."""
    return "".join(c if c.isalnum() or c in "_." else "_" for c in str(trial_id))


def sample_file(root: Path | str, trial_id: str) -> Path:
    return SAMPLES.location(root) / f"part-{safe_name(trial_id)}.parquet"


def matrix_file(root: Path | str, trial_id: str) -> Path:
    return MATRICES.location(root) / f"part-{safe_name(trial_id)}.parquet"


def matrix_rows(trial_id: str, epoch: int | None, matrices: dict[str, Any]) -> pa.Table:
    """The matrices table's rows of one trial: every entry of each 2-D array in ``matrices`` (name -> array)."""
    columns: dict[str, list] = {name: [] for name in MATRICES.keys}
    for name, matrix in matrices.items():
        matrix = np.asarray(matrix, dtype=float)
        rows, cols = np.indices(matrix.shape)
        columns["matrix"] += [name] * matrix.size
        columns["row"] += rows.ravel().tolist()
        columns["col"] += cols.ravel().tolist()
        columns["value"] += matrix.ravel().tolist()
    n = len(columns["value"])
    columns["trial_id"], columns["epoch"] = [trial_id] * n, [epoch] * n
    return pa.table({name: pa.array(columns[name], kind) for name, kind in MATRICES.columns})


def rows_to_matrices(data: pa.Table) -> dict[str, np.ndarray]:
    """The matrices of a trial's rows (name -> float64 array), the inverse of :func:`matrix_rows`."""
    names = np.asarray(data["matrix"].to_pylist(), dtype=object)
    rows, cols = data["row"].to_numpy(), data["col"].to_numpy()
    values = data["value"].to_numpy(zero_copy_only=False)
    out = {}
    for name in dict.fromkeys(names):
        at = names == name
        matrix = np.full((rows[at].max() + 1, cols[at].max() + 1), np.nan)
        matrix[rows[at], cols[at]] = values[at]
        out[name] = matrix
    return out


# -- typing ---------------------------------------------------------------------------------------------
def column_type(table: Table, name: str, values: Iterable[Any]) -> pa.DataType:
    """The type of column ``name`` of ``table`` given its values: fixed for the key columns; ``tag/*`` text;
    ``config/*`` bool, int64, float64 or text by value (null while every value is None); metrics float64
    unless a value is text (``sys/node_ip``)."""
    fixed = dict(table.columns)
    if name in fixed:
        return fixed[name]
    if name.startswith(TAG_PREFIX):
        return pa.string()
    present = [v for v in values if v is not None]
    if name.startswith(CONFIG_PREFIX):
        if not present:
            return pa.null()
        if all(isinstance(v, bool) for v in present):
            return pa.bool_()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            return pa.int64()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            return pa.float64()
        return pa.string()
    return pa.string() if any(isinstance(v, str) for v in present) else pa.float64()


def rows_to_table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    """Python rows (dicts; a missing key is a null) as an Arrow table typed by the contract."""
    names = list(dict.fromkeys(c for row in rows for c in row))
    arrays = {}
    for name in order_columns(table, names):
        values = [row.get(name) for row in rows]
        kind = column_type(table, name, values)
        if kind == pa.string():
            values = [None if v is None else str(v) for v in values]
        elif kind == pa.float64():
            values = [None if v is None else float(v) for v in values]
        arrays[name] = pa.array(values, type=kind)
    return pa.table(arrays)


def order_columns(table: Table, names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [k for k in table.keys if k in names] + sorted(n for n in names if n not in table.keys)


def _wider(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    if any(f(a) for f in numeric) and any(f(b) for f in numeric):
        return pa.float64()
    if pa.types.is_nested(a) or pa.types.is_nested(b):
        raise pa.ArrowTypeError(f"incompatible column types {a} and {b}")
    return pa.string()


def merge_schemas(table: Table, schemas: Iterable[pa.Schema | None]) -> pa.Schema:
    """The smallest schema that holds every one of ``schemas``: the union of their columns in the contract's
    order, each with the widest of its types, and the contract's metadata. The table's fixed columns are
    always there."""
    types: dict[str, pa.DataType] = dict(table.columns)
    for schema in schemas:
        if schema is None:
            continue
        for field in schema:
            try:
                types[field.name] = _wider(types[field.name], field.type) if field.name in types else field.type
            except pa.ArrowTypeError as err:
                raise pa.ArrowTypeError(f"table {table.name}, column {field.name}: {err}") from None
    return pa.schema([pa.field(n, types[n]) for n in order_columns(table, types)], metadata=metadata(table))


def conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with exactly ``schema``: missing columns as nulls, others cast, the schema's order and
    metadata. Columns ``schema`` lacks are an error (widen the schema first)."""
    extra = set(data.column_names) - set(schema.names)
    if extra:
        raise ValueError(f"columns {sorted(extra)} are not in the table's schema")
    arrays = []
    for field in schema:
        if field.name in data.column_names:
            column = data.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            arrays.append(pa.nulls(len(data), field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def same_columns(a: pa.Schema | None, b: pa.Schema | None) -> bool:
    return a is not None and b is not None and a.remove_metadata().equals(b.remove_metadata())


# -- writing --------------------------------------------------------------------------------------------
def atomic_write_table(table: pa.Table, path: Path, **kwargs: Any) -> None:
    """Written under a temporary name in the same folder and renamed into place: readers never see a half
    written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_common_metadata(folder: Path, schema: pa.Schema) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{COMMON_METADATA}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_metadata(schema, tmp)
        os.replace(tmp, folder / COMMON_METADATA)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(table: Table, data: pa.Table, path: Path) -> None:
    """A one-file table (``trials.parquet``): ``data`` in the contract's column order and metadata."""
    atomic_write_table(conform(data, merge_schemas(table, [data.schema])), path)


class PartWriter:
    """The single writer of one folder table. It keeps every part file at the table's schema: a part that
    brings a new column (or a wider type) first widens ``_common_metadata``, then rewrites the older parts.

    On construction it repairs what a writer that died mid-widening left: parts at an older schema."""

    def __init__(self, root: Path | str, table: Table, declared: pa.Schema | None = None) -> None:
        if not table.folder:
            raise ValueError(f"table {table.name} is one file; use write_file")
        self.table = table
        self.folder = table.location(root)
        self.folder.mkdir(parents=True, exist_ok=True)
        current = read_common_schema(self.folder)
        parts = {path: _part_schema(path) for path in self.parts()}
        self.schema = merge_schemas(table, [declared, current, *parts.values()])
        if not same_columns(current, self.schema):
            _write_common_metadata(self.folder, self.schema)
        stale = [p for p, s in parts.items() if s is not None and not same_columns(s, self.schema)]
        self._rewrite(stale)

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob(PART_GLOB))

    def write(self, data: pa.Table, name: str, **kwargs: Any) -> Path:
        """Writes ``data`` as part file ``name`` (``part-….parquet``), widening the table first if needed."""
        if not (name.startswith("part-") and name.endswith(".parquet")):
            raise ValueError(f"part file name {name!r}: allowed: part-<anything>.parquet")
        self.widen(data.schema)
        path = self.folder / name
        atomic_write_table(conform(data, self.schema), path, **kwargs)
        return path

    def widen(self, schema: pa.Schema) -> None:
        wider = merge_schemas(self.table, [self.schema, schema])
        if same_columns(wider, self.schema):
            return
        self.schema = wider
        _write_common_metadata(self.folder, wider)
        self._rewrite(self.parts())

    def _rewrite(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                data = pq.ParquetFile(path).read()
            except FileNotFoundError:
                continue
            except (OSError, pa.ArrowException):  # left in place: the readers name it
                continue
            if not same_columns(data.schema, self.schema):
                atomic_write_table(conform(data, self.schema), path, compression=_compression(path))


def _compression(path: Path) -> str:
    try:
        return pq.ParquetFile(path).metadata.row_group(0).column(0).compression.lower()
    except Exception:  # noqa: BLE001 - an empty file or an odd codec name: the default
        return "snappy"


def _part_schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None


def read_common_schema(folder: Path) -> pa.Schema | None:
    path = folder / COMMON_METADATA
    if not path.exists():
        return None
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as err:
        warnings.warn(f"ignoring unreadable {path}: {err}", stacklevel=2)
        return None


# -- reading --------------------------------------------------------------------------------------------
def read_parts(paths: Iterable[Path]) -> list[pa.Table]:
    """Every readable file of ``paths``; an unreadable one (a crash mid-write, a truncated copy) is named in a
    warning and skipped; one removed since the listing (merged by the writer) is skipped silently."""
    tables = []
    for path in paths:
        try:
            tables.append(pq.ParquetFile(path).read())  # a few times faster than pq.read_table per file
        except FileNotFoundError:
            continue
        except (OSError, pa.ArrowException) as err:
            warnings.warn(f"skipping unreadable Parquet part file {path}: {err}", stacklevel=3)
    return tables


def combine(table: Table, tables: list[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    """One Arrow table of ``tables`` at their common schema (and ``schema``'s columns, e.g. the table's
    ``_common_metadata``): how a reader gets every column even from files of an older layout."""
    target = merge_schemas(table, [schema, *(t.schema for t in tables)])
    if not tables:
        return target.empty_table()
    return pa.concat_tables([conform(t, target) for t in tables])


def read_folder(root: Path | str, table: Table) -> pa.Table:
    """Every row of a folder table under results root ``root``, at the table's schema."""
    folder = table.location(root)
    return combine(table, read_parts(sorted(folder.glob(PART_GLOB))), read_common_schema(folder))
