"""Reruns: which trials are chosen, their seeds, and that the same seed gives the same numbers on CPU (twice
locally, and as a Ray task)."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.results import read_rerun_trials, read_trials, reruns_dir
from analysis.study_report import build_study_report
from search_spaces.study_file import MAX_NUM_SAMPLES, load_study
from study.rerun import RERUN_SEED_OFFSET, rerun, rerun_configs, select_trials
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink
from tests.conftest import run_cli
from trainables.config import TrialConfig, flatten

TRIALS = pd.DataFrame({
    "trial_id": ["a", "b", "c", "d", "e", "f"],
    "status": ["completed", "completed", "stopped", "completed", "completed", "error"],
    "config/loss": ["ce", "ce", "ce", "ls", "ls", "ls"],
    "val/acc": [0.80, 0.85, 0.99, 0.70, 0.90, 0.95],
})


def test_select_trials_best_completed_per_method():
    best = select_trials(TRIALS, "val/acc", "max", "best", 1)
    assert list(best["trial_id"]) == ["e", "b"]  # a stopped or errored trial is never chosen
    top2 = select_trials(TRIALS, "val/acc", "max", "best", 2)
    assert sorted(top2["trial_id"]) == ["a", "b", "d", "e"]
    assert list(select_trials(TRIALS, "val/acc", "min", "best", 1)["trial_id"]) == ["d", "a"]
    assert list(select_trials(TRIALS, "val/acc", "max", "c", 1)["trial_id"]) == ["c"]
    with pytest.raises(UsageError, match="trial='zz'"):
        select_trials(TRIALS, "val/acc", "max", "zz", 1)
    with pytest.raises(UsageError, match="top=0"):
        select_trials(TRIALS, "val/acc", "max", "best", 0)
    with pytest.raises(UsageError, match="no completed trial"):
        select_trials(TRIALS[TRIALS["status"] != "completed"], "val/acc", "max", "best", 1)


@pytest.fixture(scope="module")
def study_copy(smoke_study, tmp_path_factory):
    """A copy of the smoke study's search results (no checkpoints, reruns or MLflow store), so reruns here
    leave the shared study alone and other tests' reruns stay out of this one."""
    root = tmp_path_factory.mktemp("rerun") / "smoke"
    shutil.copytree(smoke_study, root, ignore=shutil.ignore_patterns("ray", "report", "reruns", "mlflow.db",
                                                                     "mlflow_runs.json"))
    return StudyDir(root)


def _best(study: StudyDir) -> pd.DataFrame:
    """The best completed trial of the study (whichever method it is: ASHA decides which complete)."""
    return select_trials(read_trials(study.root), "val/acc", "max", "best", 1).head(1)


def test_rerun_configs_new_seeds(study_copy):
    row = _best(study_copy)
    jobs = rerun_configs(row, seeds=3, epochs=1, device="cpu", study_seed=0)
    assert [cfg.seed for _, cfg in jobs] == [RERUN_SEED_OFFSET + i for i in range(3)]
    searched = {0 + n for n in range(MAX_NUM_SAMPLES)}  # the seed of every search trial (trial n: seed + n)
    assert not searched & {cfg.seed for _, cfg in jobs}
    method = row["config/loss"].iloc[0]
    assert all(source == row["trial_id"].iloc[0] and cfg.epochs == 1 and cfg.loss == method for source, cfg in jobs)


# -- reruns of different methods share their seeds, so the report pairs them ------------------------------
TINY_STUDY = {"name": "paired", "seed": 7, "data": {"dataset": "digits", "val_fraction": 0.2, "subset": 400},
              "model": "mlp", "training": {"epochs": 1, "batch_size": 64, "device": "cpu", "amp": False},
              "evaluation": {"representation": False, "probe": False},
              "methods": {"ce": {}, "ls": {"alpha": {"low": 0.05, "high": 0.3}}}}
# (trial, method, params, trial number, val/acc): search trial n trained with seed 7 + n
TINY_TRIALS = [("ce_0", "ce", {}, 0, 0.80), ("ls_1", "ls", {"alpha": 0.1}, 1, 0.85),
               ("ls_2", "ls", {"alpha": 0.2}, 2, 0.83), ("ce_3", "ce", {}, 3, 0.82)]


def tiny_searched_study(root) -> StudyDir:
    """A study directory as a finished search leaves it (study file and trials Parquet, with full configs of
    trials that trained with different seeds), without running the search."""
    study = StudyDir(root / "paired")
    study.root.mkdir(parents=True)
    study.study_file.write_text(yaml.safe_dump(TINY_STUDY))
    base = load_study(study.study_file).base_trial_config()
    sink = ParquetSink(study.parquet, "paired")
    for trial_id, loss, params, number, acc in TINY_TRIALS:
        cfg = TrialConfig.from_dict({**base, "loss": loss, "loss_params": params, "seed": 7 + number})
        sink.trial_started(TrialStart(trial_id, flatten(cfg.to_dict())))
        sink.epoch(trial_id, 1, {"val/acc": acc})
        sink.trial_ended(TrialEnd(trial_id, "completed", "", {"val/acc": acc, "test/acc": acc}))
    sink.close()
    return study


def test_reruns_of_every_method_share_seeds(tmp_path):
    trials = read_trials(tiny_searched_study(tmp_path).root)
    best = select_trials(trials, "val/acc", "max", "best", 2)
    assert set(best["config/seed"]) == {7, 8, 9, 10}  # four different search seeds
    jobs = rerun_configs(best, seeds=3, epochs=None, device="cpu", study_seed=7)
    by_source: dict[str, list[int]] = {}
    for source, cfg in jobs:
        by_source.setdefault(source, []).append(cfg.seed)
    assert by_source == {t: [7 + RERUN_SEED_OFFSET + i for i in range(3)] for t in ("ce_0", "ls_1", "ls_2", "ce_3")}


def test_real_reruns_give_the_paired_t_test_in_the_report(tmp_path):
    """Two reruns of each method's best trial (trained here, 1 epoch on 400 digits): the report pairs CE and
    LS seed by seed (paired t-test over 2 seeds), not Welch's unpaired test."""
    from analysis.study_report import write_study_report
    from study.report import report_inputs

    study = tiny_searched_study(tmp_path)
    results = rerun(study, top=1, seeds=2, epochs=1, device="cpu", echo=lambda _: None)
    assert [r["status"] for r in results] == ["completed"] * 4
    assert {r["trial_id"] for r in results} == {f"rerun-{t}-seed{7 + RERUN_SEED_OFFSET + i}"
                                                for t in ("ls_1", "ce_3") for i in range(2)}
    inputs = report_inputs(study)
    report = build_study_report(inputs, tmp_path / "img")
    assert [(m.method, m.source, len(m.seeds)) for m in report.board.methods] == [("ls", "reruns", 2),
                                                                                  ("ce", "reruns", 2)]
    against_ce = report.tests["ce"][("ls", "test/acc")]
    assert against_ce.test == "t-test" and against_ce.n == 2
    assert {c.test for c in report.tests["ce"].values()} == {"t-test"}
    md = write_study_report(inputs, tmp_path / "report").markdown.read_text()
    assert "paired t-test over seeds (n = 2 seeds)" in md and "Welch" not in md


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if "/" in k and not k.startswith("time/")}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(x == b[k] or (math.isnan(x) and math.isnan(b[k])) for k, x in a.items())


@pytest.fixture(scope="module")
def local_rerun(study_copy):
    source = str(_best(study_copy)["trial_id"].iloc[0])
    return source, rerun(study_copy, trial=source, seeds=1, epochs=1, device="cpu", echo=lambda _: None)


def test_same_seed_same_numbers_locally(study_copy, local_rerun, smoke_study, tmp_path):
    source, first = local_rerun
    said = []
    assert rerun(study_copy, trial=source, seeds=1, epochs=1, device="cpu", echo=said.append) == []
    assert said == ["all reruns asked for are already recorded"]  # a recorded run is not trained again
    other = tmp_path / "smoke"
    shutil.copytree(study_copy.root, other, ignore=shutil.ignore_patterns("reruns", "mlflow.db", "mlflow_runs.json",
                                                                          "mlartifacts"))
    second = rerun(StudyDir(other), trial=source, seeds=1, epochs=1, device="cpu", echo=lambda _: None)
    assert len(first) == len(second) == 1 and first[0]["status"] == "completed"
    assert len(_numbers(first[0])) > 20 and "test/acc" in first[0]
    assert _same(_numbers(first[0]), _numbers(second[0]))
    rows = read_rerun_trials(study_copy.root).set_index("trial_id")
    assert rows.loc[first[0]["trial_id"], "tag/source_trial"] == source

    client = MlflowClient(study_copy.default_mlflow_uri)
    experiment = client.get_experiment_by_name("smoke")
    tagged = client.search_runs([experiment.experiment_id], "tags.`smoothstudy.kind` = 'rerun'")
    assert {r.data.tags["source_trial"] for r in tagged} == {source}
    assert {r.data.tags["smoothstudy.trial_id"] for r in tagged} == {first[0]["trial_id"]}  # one run, not one a time


@pytest.mark.slow
def test_same_seed_same_numbers_as_a_ray_task(study_copy, local_rerun):
    source, first = local_rerun
    run_cli("rerun", str(study_copy.root), "--trial", source, "--seeds", "1", "--epochs", "1", "--device", "cpu",
            "--parallel")
    on_ray = read_rerun_trials(study_copy.root).set_index("trial_id").loc[first[0]["trial_id"]]
    assert on_ray["tag/source_trial"] == source and on_ray["status"] == "completed"
    local, remote = _numbers(first[0]), {k: float(on_ray[k]) for k in _numbers(first[0])}
    assert _same(local, remote), {k: (v, remote[k]) for k, v in local.items() if not _same({k: v}, {k: remote[k]})}


@pytest.mark.parametrize("given, env, recorded, up, joined, note", [
    ("10.0.0.9:6379", None, "10.0.0.1:6379", True, "10.0.0.9:6379", None),  # --address wins
    (None, "10.0.0.8:6379", "10.0.0.1:6379", True, None, None),  # RAY_ADDRESS: connect() reads it
    (None, None, "10.0.0.1:6379", True, "10.0.0.1:6379", "reruns on the study's cluster 10.0.0.1:6379"),
    (None, None, "10.0.0.1:6379", False, None, "10.0.0.1:6379 is unreachable; reruns on a local Ray"),
    (None, None, None, True, None, None),  # the study started its own Ray: nothing to go back to
])
def test_parallel_reruns_go_back_to_the_studys_cluster(tmp_path, monkeypatch, given, env, recorded, up,
                                                       joined, note):
    import study.cluster as cluster
    from study.rerun import connect_for_reruns

    study_dir = StudyDir(tmp_path)
    study_dir.meta_file.write_text(json.dumps({"address": recorded}))
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    calls, lines = [], []
    monkeypatch.setattr(cluster, "connect", calls.append)
    monkeypatch.setattr(cluster, "reachable", lambda address: up)
    connect_for_reruns(study_dir, given, lines.append)
    assert calls == [joined]
    assert (note is None and not lines) or (len(lines) == 1 and note in lines[0])


def test_a_run_is_recorded_with_the_times_it_ran_not_the_time_it_is_recorded(tmp_path):
    """Ray reruns are recorded when their task returns: started_at and ended_at are the task's own times."""
    from study.rerun import _record

    sink = ParquetSink(reruns_dir(tmp_path), "s")
    cfg = TrialConfig(loss="ce", seed=3)
    started, ended = 1_700_000_000.0, 1_700_001_234.5
    _record("t0", cfg, [sink], lambda _: None, [], None, "nan loss", (started, ended), kind="final")
    sink.close()
    row = read_rerun_trials(tmp_path).set_index("trial_id").loc["final-t0-seed3"]
    assert row["started_at"] == pd.Timestamp(started, unit="s", tz="UTC")
    assert (row["ended_at"] - row["started_at"]).total_seconds() == pytest.approx(ended - started)


def test_rerun_after_final_adds_no_duplicate_seed_and_leaves_the_interval(tmp_path):
    """After the final runs (2 seeds of each method's best trial, written here as a finished ``final`` leaves
    them), ``rerun --top 1 --seeds 1`` asks for a seed the final runs already trained: nothing is trained and it
    says so; ``--seeds 3`` trains only the third seed. No (configuration, seed) pair is recorded twice, and the
    answer's intervals (over the final runs) do not move."""
    from analysis.leaderboard import build_leaderboard

    study = tiny_searched_study(tmp_path)
    trials = read_trials(study.root)
    chosen = select_trials(trials, "val/acc", "max", "best", 1)
    sink = ParquetSink(reruns_dir(study.root), "paired")
    for k, (source, cfg) in enumerate(rerun_configs(chosen, 2, None, "cpu", 7)):
        run = f"final-{source}-seed{cfg.seed}"
        sink.trial_started(TrialStart(run, flatten(cfg.to_dict()), tags={"kind": "final", "source_trial": source}))
        sink.trial_ended(TrialEnd(run, "completed", "", {"val/acc": 0.8 + k / 100, "test/acc": 0.7 + k / 50}))
    sink.close()

    def intervals():
        board = build_leaderboard(read_trials(study.root), read_rerun_trials(study.root), "val/acc", "max")
        return {(m.method, k): board.interval(m.method, k) for m in board.methods for k in ("test/acc", "val/acc")}

    before, said = intervals(), []
    assert all(iv.n == 2 for iv in before.values())
    assert rerun(study, top=1, seeds=1, epochs=1, device="cpu", echo=said.append) == []
    assert "already trained (as final runs)" in said[0] and "--seeds 3 adds a new seed" in said[0]
    assert len(read_rerun_trials(study.root)) == 4
    added = rerun(study, top=1, seeds=3, epochs=1, device="cpu", echo=lambda _: None)
    assert sorted((r["source_trial"], r["trial_id"]) for r in added) == sorted(
        (t, f"rerun-{t}-seed{7 + RERUN_SEED_OFFSET + 2}") for t in chosen["trial_id"])
    runs = read_rerun_trials(study.root)
    assert not runs.duplicated(["tag/source_trial", "config/seed"]).any() and len(runs) == 6
    assert intervals() == before
