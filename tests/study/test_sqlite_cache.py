import sqlite3

import pytest
from mlflow import MlflowClient

from study.sinks.mlflow_runs import RunStore
from study.sqlite_cache import CACHE_ENV, copy_empty_database, new_mlflow_database


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def test_template_made_once_then_copied(tmp_path, cache):
    made = []

    def create(uri):
        made.append(uri)
        with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
            db.execute("CREATE TABLE t (x)")
        db.close()

    for name in ("a", "b"):
        assert copy_empty_database(f"sqlite:///{tmp_path / name / 'x.db'}", "k", create)
    assert len(made) == 1 and (cache / "k.db").exists()
    with sqlite3.connect(tmp_path / "b" / "x.db") as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    db.close()


def test_an_existing_database_is_never_replaced(tmp_path, cache):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"the user's data")
    assert not copy_empty_database(f"sqlite:///{path}", "k", lambda uri: None)
    assert path.read_bytes() == b"the user's data"


@pytest.mark.parametrize("uri", ["http://localhost:5000", "postgresql://h/db", "sqlite:///:memory:"])
def test_only_new_sqlite_files_are_copied(uri, cache):
    assert not copy_empty_database(uri, "k", lambda u: pytest.fail("nothing to create"))


def test_cache_off_or_unusable_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "")
    assert not copy_empty_database(f"sqlite:///{tmp_path / 'a.db'}", "k", lambda u: pytest.fail("cache is off"))
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder should be
    monkeypatch.setenv(CACHE_ENV, str(blocked))
    assert not copy_empty_database(f"sqlite:///{tmp_path / 'b.db'}", "k", lambda u: None)
    assert not (tmp_path / "b.db").exists()


def test_copied_mlflow_store_works_and_default_experiment_points_at_the_study(tmp_path, cache):
    for study in ("one", "two"):  # "two" is a copy of the template "one" made
        uri = f"sqlite:///{tmp_path / study / 'mlflow.db'}"
        new_mlflow_database(uri, (tmp_path / study / "mlartifacts").as_uri())
        client = MlflowClient(uri)
        default = client.get_experiment("0")
        assert default.name == "Default"
        assert default.artifact_location == (tmp_path / study / "mlartifacts").as_uri() + "/0"
        store = RunStore(uri, experiment=study, study_name=study)
        run_id, created = store.parent(settings={"a": 1})
        assert created
        client.log_metric(run_id, "val/acc", 0.5, step=1)
        assert client.get_run(run_id).data.metrics == {"val/acc": 0.5}
    assert len(list(cache.glob("mlflow-*.db"))) == 1


def test_an_unexpected_mlflow_schema_is_copied_without_error(tmp_path, cache):
    from study.sqlite_cache import mlflow_key

    cache.mkdir()
    with sqlite3.connect(cache / f"{mlflow_key()}.db") as db:
        db.execute("CREATE TABLE other (x)")  # no experiments table: the Default fix-up cannot apply
    db.close()
    target = tmp_path / "mlflow.db"
    new_mlflow_database(f"sqlite:///{target}", (tmp_path / "mlartifacts").as_uri())
    assert target.exists()
