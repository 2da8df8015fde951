"""Optuna learns what ASHA, errors and NaNs did: PRUNED with per-epoch values, FAIL, COMPLETE."""

from __future__ import annotations

import math
from types import SimpleNamespace

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from analysis.core.layout import StudyDir
from analysis.results import read_epochs, read_trials
from search_spaces.study_file import load_study
from study.optuna_bridge import TruthfulOptunaSearch, trial_outcome
from study.optuna_store import optuna_trial_states, optuna_trials
from study.search import build_searcher
from tests.conftest import ROOT


@pytest.mark.parametrize("result,error,expected", [
    ({"epoch": 4, "val/acc": 0.9}, False, (TrialState.COMPLETE, [0.9])),
    ({"epoch": 2, "val/acc": 0.7}, False, (TrialState.PRUNED, None)),  # ASHA stopped it after epoch 2 of 4
    ({"epoch": 2, "val/acc": math.nan, "status": "diverged"}, False, (TrialState.FAIL, None)),
    ({"epoch": 4, "val/acc": math.inf}, False, (TrialState.FAIL, None)),
    ({"epoch": 3, "val/acc": 0.8}, True, (TrialState.FAIL, None)),  # errored with a last result
    (None, False, (TrialState.FAIL, None)),
])
def test_trial_outcome(result, error, expected):
    assert trial_outcome(result, error, ["val/acc"], epochs=4) == expected


def test_trial_outcome_multi_objective_needs_every_value():
    assert trial_outcome({"epoch": 3, "a": 1.0, "b": 2.0}, False, ["a", "b"], 3) == (TrialState.COMPLETE, [1.0, 2.0])
    assert trial_outcome({"epoch": 3, "a": 1.0}, False, ["a", "b"], 3) == (TrialState.FAIL, None)


def _space(trial):
    trial.suggest_float("x", 0.0, 1.0)


def test_searcher_records_the_truth():
    searcher = TruthfulOptunaSearch(epochs=3, space=_space, metric="val/acc", mode="max",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
    runs = {  # trial id -> (val/acc per epoch, how it ended)
        "stopped": ([0.5, 0.6], {}),
        "finished": ([0.4, 0.7, 0.8], {}),
        "diverged": ([0.3, math.nan], {"status": "diverged"}),
        "errored": ([0.2], {"error": True}),
    }
    for trial_id, (values, how) in runs.items():
        searcher.suggest(trial_id)
        for epoch, value in enumerate(values, 1):
            result = {"epoch": epoch, "training_iteration": epoch, "val/acc": value, **how}
            # Tune hands the result on which ASHA stops a trial only to on_trial_complete
            if not (trial_id == "stopped" and epoch == len(values)):
                searcher.on_trial_result(trial_id, result)
                searcher.on_trial_result(trial_id, result)  # a retried trial re-sends an epoch
        searcher.on_trial_complete(trial_id, result, error=how.get("error", False))
    trials = {t.number: t for t in searcher._ot_study.get_trials()}
    got = {tid: trials[searcher._ot_trials[tid].number] for tid in runs}
    assert got["stopped"].state == TrialState.PRUNED
    assert got["stopped"].intermediate_values == {1: 0.5, 2: 0.6}
    assert got["stopped"].value == 0.6  # Optuna's value of a pruned trial: its last intermediate value
    assert got["finished"].state == TrialState.COMPLETE and got["finished"].value == 0.8
    assert got["finished"].intermediate_values == {1: 0.4, 2: 0.7, 3: 0.8}
    assert got["diverged"].state == TrialState.FAIL and got["diverged"].intermediate_values == {1: 0.3}
    assert got["errored"].state == TrialState.FAIL
    # a second completion (a trial finished again after a resume) changes nothing
    searcher._completed_trials.discard("finished")
    searcher.on_trial_complete("finished", {"epoch": 3, "val/acc": 0.1})
    assert searcher._ot_study.get_trials()[got["finished"].number].value == 0.8


def test_orphaned_running_trials_become_fail():
    searcher = TruthfulOptunaSearch(epochs=2, space=_space, metric="val/acc", mode="max")
    searcher.suggest("t1")
    orphan = searcher._ot_study.ask()  # asked for by a driver that died before Tune saved the trial
    assert searcher.fail_orphans() == [orphan.number]
    states = {t.number: t.state for t in searcher._ot_study.get_trials()}
    assert states == {0: TrialState.RUNNING, orphan.number: TrialState.FAIL}


def test_grid_sampler_enumerates_the_conditional_grid_once(tmp_path):
    """`sampler: grid` on the Label Relaxation Table 1 preset, joint strategy: 2 trials at a time (some stopped by ASHA,
    some errored), every one of the 29 configurations exactly once, then repeats without an error (Optuna's
    own stop at the end of a grid raises under ask-and-tell)."""
    spec = load_study(ROOT / "studies" / "lr_table1_fmnist_augmented.yaml")
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"strategy": "joint"})})
    limiter = build_searcher(spec, StudyDir(tmp_path))
    live: list[str] = []
    configs = []
    for i in range(31):
        config = limiter.suggest(f"t{i}")
        if config is None:  # the limiter holds max_concurrent trials: finish the oldest
            done = live.pop(0)
            epochs = 50 if int(done[1:]) % 3 else 10
            limiter.on_trial_complete(done, {"epoch": epochs, "val/acc": 0.5}, error=int(done[1:]) % 7 == 0)
            config = limiter.suggest(f"t{i}")
        live.append(f"t{i}")
        configs.append(config)
    for done in live:
        limiter.on_trial_complete(done, {"epoch": 50, "val/acc": 0.5})
    keys = [yaml.safe_dump({k: v for k, v in c.items() if k != "seed"}) for c in configs]
    assert len(set(keys[:29])) == 29 and set(keys[29:]) <= set(keys[:29])
    assert {c["loss"] for c in configs[:29]} == set(spec.methods)
    assert [c["seed"] for c in configs] == list(range(31))


def test_epochs_is_validated():
    with pytest.raises(ValueError, match="epochs=0"):
        TruthfulOptunaSearch(epochs=0, space=_space, metric="val/acc", mode="max")


def test_asha_study_tells_optuna_pruned_and_complete(smoke_study):
    """A real study (the smoke study): ASHA (grace 1, factor 2) over 4 epochs stops some of 6 trials; Optuna's
    persisted studies then hold them as PRUNED with exactly the epochs Parquet recorded, and the rest as
    COMPLETE."""
    study_dir = smoke_study
    trials, epochs = read_trials(study_dir), read_epochs(study_dir)
    parquet_status = dict(zip(trials["trial_id"], trials["status"]))
    assert set(parquet_status.values()) <= {"completed", "stopped"}
    assert "stopped" in parquet_status.values() and "completed" in parquet_status.values()

    study = SimpleNamespace(trials=optuna_trials(f"sqlite:///{study_dir / 'optuna.db'}", "smoke"))
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    assert len(study.trials) == 6
    assert len(by_state[TrialState.PRUNED]) == sum(s == "stopped" for s in parquet_status.values())
    assert len(by_state[TrialState.COMPLETE]) == sum(s == "completed" for s in parquet_status.values())
    stopped_curves = sorted(
        tuple(round(v, 6) for v in g.sort_values("epoch")["val/acc"])
        for tid, g in epochs.groupby("trial_id") if parquet_status[tid] == "stopped")
    pruned_curves = sorted(tuple(round(t.intermediate_values[e], 6) for e in sorted(t.intermediate_values))
                           for t in by_state[TrialState.PRUNED])
    assert pruned_curves == stopped_curves  # per-epoch values, steps 1..k, for every pruned trial
    for t in by_state[TrialState.PRUNED]:
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
        assert len(t.intermediate_values) < 4
    for t in by_state[TrialState.COMPLETE]:
        assert sorted(t.intermediate_values) == [1, 2, 3, 4] and t.value == t.intermediate_values[4]
    assert optuna_trial_states(f"sqlite:///{study_dir / 'optuna.db'}", "smoke") == {
        s.name: len(v) for s, v in by_state.items() if v}


def test_a_restored_searcher_reopens_the_study_where_it_is_now(tmp_path):
    """A study folder moved between save and restore: the pickled searcher names the old database; the
    restored one goes on in the database it is told about (study.json's storage, or optuna.db where it is)."""
    import pickle
    import shutil

    from study.optuna_bridge import RAY_TRIAL_ATTR

    (tmp_path / "before").mkdir()
    old, new = tmp_path / "before" / "optuna.db", tmp_path / "new.db"
    searcher = TruthfulOptunaSearch(epochs=2, space=_space, metric="val/acc", mode="max", study_name="s",
                                    storage=optuna.storages.RDBStorage(f"sqlite:///{old}"))
    searcher.suggest("t1")
    searcher.save(str(tmp_path / "searcher.pkl"))
    pickled = pickle.dumps(searcher)  # as in Tune's experiment state
    shutil.copyfile(old, new)
    shutil.rmtree(tmp_path / "before")  # the old folder is gone: nothing may open it again
    restored = TruthfulOptunaSearch(epochs=2, space=_space, metric="val/acc", mode="max")
    TruthfulOptunaSearch.storage_on_restore = f"sqlite:///{new}"
    try:
        restored.restore(str(tmp_path / "searcher.pkl"))
        unpickled = pickle.loads(pickled)
    finally:
        TruthfulOptunaSearch.storage_on_restore = None
    assert unpickled._ot_trials["t1"].number == 0
    restored.on_trial_complete("t1", {"epoch": 2, "val/acc": 0.9})
    assert not (tmp_path / "before").exists()
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{new}").get_trials()
    assert trial.state == TrialState.COMPLETE and trial.value == 0.9 and trial.user_attrs[RAY_TRIAL_ATTR] == "t1"
