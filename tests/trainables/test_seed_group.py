"""Several seeds in one trial (SeedGroup), peak memory, and torch.compile on CPU; digits + MLP, seconds."""

import math

import numpy as np
import pytest
import torch

from tests.conftest import digits_config, untimed
from trainables.config import TrialConfig
from trainables.loop import make_trainer, run_local
from trainables.peak_memory import peak_memory_mb, reset_peak_memory
from trainables.seed_group import PER_SEED_CHOICES, SeedGroup
from trainables.trainer import FinalEvaluation, Trainer

EPOCHS = 2


def small_config(**overrides) -> TrialConfig:
    return digits_config(**{"subset": 400, "epochs": EPOCHS, "seed": 5, **overrides})


@pytest.fixture(scope="module")
def lone_runs():
    """Seeds 10 and 11 (the group of seed 5 with 2 seeds per trial) each trained alone: (epoch metrics, final
    evaluation, trainer)."""
    runs = []
    for seed in (10, 11):
        trainer = Trainer(small_config(seed=seed))
        history = [trainer.train_epoch() for _ in range(EPOCHS)]
        runs.append((history, trainer.final_evaluation(), trainer))
    return runs


@pytest.fixture(scope="module")
def group_run():
    group = SeedGroup(small_config(seeds_per_trial=2))
    history = [group.train_epoch() for _ in range(EPOCHS)]
    return group, history, group.final_evaluation()


def test_each_seed_trains_exactly_as_alone(lone_runs, group_run):
    group, _, _ = group_run
    assert [t.config.seed for t in group.trainers] == [10, 11]  # seed·n + i
    for (_, _, lone), member in zip(lone_runs, group.trainers):
        for key, value in lone.model.state_dict().items():
            assert torch.equal(value, member.model.state_dict()[key]), key


def test_epoch_metrics_are_means_and_times_add_up(lone_runs, group_run):
    _, history, _ = group_run
    assert [m["epoch"] for m in history] == [1, 2]
    for e, metrics in enumerate(history):
        a, b = lone_runs[0][0][e], lone_runs[1][0][e]
        for key in ("train/loss", "train/acc", "val/acc", "val/nll"):
            assert metrics[key] == pytest.approx((a[key] + b[key]) / 2, rel=1e-12), key
        assert metrics["train/lr"] == pytest.approx(a["train/lr"])
        assert metrics["time/train_s"] > 0 and metrics["time/eval_s"] > 0
        # both seeds saw 320 // 64 * 64 = 320 images in time/train_s
        assert metrics["time/images_per_s"] * metrics["time/train_s"] == pytest.approx(2 * 320)


def test_final_metrics_mean_plus_each_seed(lone_runs, group_run):
    _, _, final = group_run
    (_, first_final, _), (_, second_final, _) = lone_runs
    first, second = first_final.metrics, second_final.metrics
    assert final.metrics["seed0/test/acc"] == first["test/acc"]
    assert final.metrics["seed1/test/acc"] == second["test/acc"]
    assert final.metrics["test/acc"] == pytest.approx((first["test/acc"] + second["test/acc"]) / 2)
    for key in PER_SEED_CHOICES:  # chosen on each seed's validation split: the first seed's, not a mean
        assert final.metrics[key] == pytest.approx(first[key], nan_ok=True), key
        assert final.metrics[f"seed1/{key}"] == pytest.approx(second[key], nan_ok=True), key
    assert set(final.metrics) == set(first) | {f"seed{i}/{k}" for i in (0, 1) for k in first}
    assert final.per_sample.keys() == first_final.per_sample.keys()
    for key, values in first_final.per_sample.items():  # the first seed's per-sample outputs
        assert np.array_equal(final.per_sample[key], values), key


def test_per_seed_choices_are_the_first_seeds_even_when_another_fell_back(monkeypatch):
    choices = {10: {"test/temperature": 1.5, "test/lognorm_p": 2.0, "test/lognorm_fallback": 0.0},
               11: {"test/temperature": 2.5, "test/lognorm_p": math.nan, "test/lognorm_fallback": 1.0}}

    def fake_final_evaluation(trainer):
        seed = trainer.config.seed
        return FinalEvaluation(metrics={"test/acc": seed / 100, **choices[seed]}, per_sample={})

    monkeypatch.setattr(Trainer, "final_evaluation", fake_final_evaluation)
    metrics = SeedGroup(small_config(seeds_per_trial=2)).final_evaluation().metrics
    assert metrics["test/acc"] == pytest.approx(0.105)
    assert {k: metrics[k] for k in PER_SEED_CHOICES} == choices[10]  # no NaN from seed 11's fallback
    assert math.isnan(metrics["seed1/test/lognorm_p"]) and metrics["seed1/test/lognorm_fallback"] == 1.0
    assert metrics["seed1/test/temperature"] == 2.5


def test_group_resumes_exactly(group_run):
    group, history, _ = group_run
    first = SeedGroup(small_config(seeds_per_trial=2))
    first.train_epoch()
    state = first.state_dict()
    resumed = SeedGroup(small_config(seeds_per_trial=2))
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    assert untimed(resumed.train_epoch()) == untimed(history[1])
    with pytest.raises(ValueError, match="seeds_per_trial"):
        SeedGroup(small_config(seeds_per_trial=3)).load_state_dict(state)


def test_one_seed_is_the_plain_trainer_and_bad_counts_are_refused():
    assert type(make_trainer(small_config())) is Trainer
    history, final = run_local(small_config(seeds_per_trial=2, epochs=1))
    assert len(history) == 1 and "seed1/test/acc" in final.metrics
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="seeds_per_trial"):
            small_config(seeds_per_trial=bad)


def test_peak_memory_sees_a_large_allocation():
    device = torch.device("cpu")
    reset_peak_memory(device)
    before = peak_memory_mb(device)
    block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    after = peak_memory_mb(device)
    del block
    assert before > 10 and math.isfinite(after)
    assert after - before >= 190
    assert peak_memory_mb(device) >= after - 5  # a peak stays when memory is freed (RSS counters sync lazily)


@pytest.mark.slow  # inductor's C++ compile: ~15 s with a warm cache, ~90 s cold on 2 cores
def test_compile_on_cpu_trains_like_eager():
    eager_history, eager_final = run_local(small_config(epochs=3))
    compiled = Trainer(small_config(epochs=3, compile=True))
    history = [compiled.train_epoch() for _ in range(3)]
    assert compiled.forward is not compiled.model
    for a, b in zip(eager_history, history):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-3)
    assert compiled.final_evaluation().metrics["test/acc"] == pytest.approx(eager_final.metrics["test/acc"], abs=0.02)


def test_study_file_seeds_per_trial_reaches_the_tune_adapter(monkeypatch):
    """``training.seeds_per_trial`` in a study file makes one Tune trial train that many seeds; each report
    carries their means and the last one every seed's own final metrics."""
    from pathlib import Path

    import yaml

    from search_spaces.study_file import parse_study
    from trainables import tune_adapter

    study = yaml.safe_load((Path(__file__).resolve().parents[2] / "studies" / "smoke.yaml").read_text())
    study["training"].update(seeds_per_trial=2, epochs=1)
    study["evaluation"] = {"representation": False, "probe": False}
    base = parse_study(study).base_trial_config()
    assert base["seeds_per_trial"] == 2
    reports = []
    monkeypatch.setattr(tune_adapter.tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune_adapter.tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    tune_adapter.train_trial({"loss": "ce"}, base=base)
    assert len(reports) == 1 and reports[0]["status"] == "completed"
    from trainables.tune_reporting import result_metrics

    final = result_metrics(reports[0])  # what the sinks see: the metrics Tune only carries, unpacked
    seeds = [final["seed0/test/acc"], final["seed1/test/acc"]]
    assert final["test/acc"] == pytest.approx(sum(seeds) / 2)
