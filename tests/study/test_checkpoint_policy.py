"""The checkpoint policy: when a trial saves its state, and a trial killed between two checkpoints resumes
from the last one with no Parquet row or MLflow step lost or repeated."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from analysis.results import read_epochs
from search_spaces.study_file import parse_study
from study.search import checkpoint_policy
from trainables.synthetic import synthetic_metrics
from trainables.tune_reporting import CheckpointPolicy


def test_due_by_epochs_seconds_decision_epochs_and_the_end():
    policy = CheckpointPolicy(every_epochs=3, every_s=None, decision_epochs=frozenset({2}))
    assert [e for e in range(1, 10) if policy.due(e, 3 * ((e - 1) // 3), 0.0, done=False)] == [2, 3, 6, 9]
    timed = CheckpointPolicy(every_s=60)
    assert not timed.due(5, 0, 59.0, done=False) and timed.due(5, 0, 60.0, done=False)
    assert timed.due(1, 0, 0.0, done=True)


def _spec(**asha):
    return parse_study({"name": "p", "methods": {"ce": {}}, "training": {"epochs": 20},
                        "asha": {"grace_period": 2, "reduction_factor": 3, **asha}})


def test_asha_rungs_are_checkpointed_and_the_default_is_by_time():
    assert checkpoint_policy(_spec()).decision_epochs == {2, 6, 18}
    assert checkpoint_policy(_spec(reduction_factor=2.5)).decision_epochs == {2, 5, 13}  # the first epoch past a rung
    assert checkpoint_policy(_spec(enabled=False)).decision_epochs == frozenset()
    policy = checkpoint_policy(_spec())
    assert policy.every_s == 60 and policy.every_epochs is None


@pytest.fixture
def ray_local():
    import ray

    from study.cluster import connect

    connect(None)
    yield
    ray.shutdown()


@pytest.mark.slow  # 24 s of the default suite on a 2-core EPYC; a trial worker killed by SIGKILL is among the slow tests too
def test_a_trial_killed_between_checkpoints_resumes_from_the_last_one(tmp_path, ray_local):
    from ray import tune

    from benchmarks.bench_ingestion import study_sinks
    from study.callback import SinkCallback
    from trainables.synthetic import synthetic_trial

    marker = tmp_path / "died"
    config = {"loss": "ce", "epochs": 8, "epoch_s": 0.05, "every_epochs": 3, "every_s": None, "seed": 7,
              "die_at_epoch": 5, "die_marker": str(marker)}
    root = tmp_path / "study"
    callback = SinkCallback(lambda: study_sinks(root, None), base={}, epochs=8, echo=lambda line: None)
    grid = tune.Tuner(
        tune.with_resources(synthetic_trial, {"cpu": 0.5}), param_space=config,
        run_config=tune.RunConfig(name="killed", storage_path=str(tmp_path / "ray"), verbose=0,
                                  callbacks=[callback], failure_config=tune.FailureConfig(max_failures=2)),
    ).fit()
    assert marker.exists() and grid[0].error is None  # the worker died once; the trial went on
    reported = grid[0].metrics_dataframe
    resumed = reported[reported["restored_from"] > 0]
    assert set(resumed["restored_from"]) == {3} and resumed["epoch"].min() == 4  # from the epoch 3 checkpoint

    epochs = read_epochs(root)
    assert list(epochs["epoch"]) == list(range(1, 9))  # none lost, none twice
    assert list(epochs["val/acc"]) == [synthetic_metrics(7, e)["val/acc"] for e in range(1, 9)]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("ingest-study").experiment_id],
                             filter_string="tags.`smoothstudy.kind` = 'trial'")[0]
    for key in ("val/acc", "test/ece"):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == list(range(1, 9))


def test_parquet_holds_every_result_by_each_snapshot_of_the_experiment(tmp_path, ray_local):
    """Tune asks the callback for its state as it snapshots the experiment (trials and their checkpoints):
    by then Parquet holds every result handed over, whatever the checkpoints in between."""
    from ray import tune

    from benchmarks.bench_ingestion import study_sinks
    from study.callback import SinkCallback
    from trainables.synthetic import synthetic_trial

    root = tmp_path / "study"

    class Watched(SinkCallback):
        handed, at_snapshots = 0, []

        def on_trial_result(self, *args, **kwargs):
            Watched.handed += 1
            super().on_trial_result(*args, **kwargs)

        def get_state(self):
            state = super().get_state()
            if self._sinks is not None:
                Watched.at_snapshots.append((Watched.handed, len(read_epochs(root))))
            return state

    callback = Watched(lambda: study_sinks(root, None), base={}, epochs=6, echo=lambda line: None)
    tune.Tuner(
        tune.with_resources(synthetic_trial, {"cpu": 0.5}),
        param_space={"loss": "ce", "epochs": 6, "epoch_s": 0.05, "every_epochs": 1, "seed": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(name="snapshots", storage_path=str(tmp_path / "ray"), verbose=0,
                                  callbacks=[callback]),
    ).fit()
    assert Watched.at_snapshots, "Tune never asked for the callback's state"
    assert all(handed == stored for handed, stored in Watched.at_snapshots), Watched.at_snapshots
    assert Watched.at_snapshots[-1][0] == 12  # a checkpoint every epoch; 6 checkpoints a trial forced snapshots
