"""The recipes of docs/data.md on a real study: pandas, polars, DuckDB and pyarrow read each table folder of
the smoke study and get every row and column the project's readers get."""

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.core.tables import SCHEMA_VERSION, VERSION_KEY
from analysis.frames import study_frames
from analysis.results import read_epochs, read_samples, read_trials


def _readers(folder):
    glob = str(folder / "*.parquet")
    return {
        "pandas": lambda: pd.read_parquet(folder),
        "pyarrow": lambda: ds.dataset(folder, format="parquet").to_table().to_pandas(),
        "polars": lambda: pl.read_parquet(glob).to_pandas(),
        "duckdb": lambda: duckdb.sql(f"SELECT * FROM read_parquet('{glob}')").df(),
    }


def _same(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    assert sorted(got.columns) == sorted(want.columns)
    got = got[list(want.columns)].sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = got[column], want[column]
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a.astype(float), b.astype(float), err_msg=column)
        elif b.dtype.kind == "M":
            assert (pd.to_datetime(a, utc=True) == pd.to_datetime(b, utc=True)).all(), column
        else:
            assert [None if pd.isna(x) else x for x in a] == [None if pd.isna(x) else x for x in b], column


@pytest.mark.parametrize("tool", ["pandas", "pyarrow", "polars", "duckdb"])
def test_every_epoch_row_and_column_with(tool, smoke_study):
    want = read_epochs(smoke_study)
    assert len(want) and any(c.startswith("config/") for c in want) and "test/acc" in want
    got = _readers(smoke_study / "parquet" / "epochs")[tool]()
    _same(got, want, ["trial_id", "epoch"])


@pytest.mark.parametrize("tool", ["pandas", "pyarrow", "polars", "duckdb"])
def test_every_sample_row_with_its_trial_id_with(tool, smoke_study):
    trials = read_trials(smoke_study)
    with_samples = [t for t in trials["trial_id"] if (smoke_study / "parquet" / "samples" / f"part-{t}.parquet").exists()]
    assert with_samples, "the smoke study has completed trials with per-sample outputs"
    got = _readers(smoke_study / "parquet" / "samples")[tool]()
    assert sorted(set(got["trial_id"])) == sorted(with_samples)
    for trial in with_samples:
        arrays = read_samples(smoke_study, trial)
        mine = got[got["trial_id"] == trial]
        assert len(mine) == len(arrays["label"])
        assert set(mine.columns) == set(arrays) | {"trial_id"}
        np.testing.assert_array_equal(np.sort(mine["label"].to_numpy()), np.sort(arrays["label"]))


def test_trials_file_and_metadata(smoke_study):
    root = smoke_study / "parquet"
    want = read_trials(smoke_study)
    got = duckdb.sql(f"SELECT * FROM read_parquet('{root / 'trials.parquet'}')").df()
    _same(got, want, ["trial_id"])
    _same(pl.read_parquet(root / "trials.parquet").to_pandas(), want, ["trial_id"])
    files = [root / "trials.parquet", *root.glob("epochs/part-*.parquet"), *root.glob("samples/part-*.parquet")]
    assert {pq.read_schema(f).metadata[VERSION_KEY] for f in files} == {str(SCHEMA_VERSION).encode()}
    frames = study_frames(smoke_study)
    assert frames.trials.equals(want) and frames.epochs.equals(read_epochs(smoke_study))
    trial = want.loc[want["status"] == "completed", "trial_id"].iloc[0]
    samples = frames.samples(trial)
    assert len(samples) == len(read_samples(smoke_study, trial)["label"]) and "logit_0" in samples
