"""What MLflow's runs table shows of a run: its name says what it is (method, hyperparameters in the one format,
short trial id; a final run's kind and seed), the method and its hyperparameters are its first params, and its
kind is one tag."""

from __future__ import annotations

from study.sinks.mlflow_names import RUN_KIND_TAG, TRIAL_TAG, child_run_name, child_tags, flatten_params

CONFIG = {"lr": 0.05, "seed": 3, "loss": "ls", "batch_size": 64, "loss_params.alpha": 0.18720337598183118,
          "loss_params.schedule": "constant"}


def test_a_search_trial_is_named_by_method_hyperparameters_and_short_id():
    assert child_run_name("train_0d9de8c0", CONFIG, {"kind": "trial"}) == "ls alpha=0.1872 schedule=constant · 0d9de8c0"
    assert child_run_name("c", {"loss": "ce", "lr": 0.1}, {}) == "ce · c"


def test_a_final_run_is_named_by_its_kind_seed_and_source():
    name = child_run_name("final-0d9de8c0-seed1000000", {**CONFIG, "seed": 1000000},
                          {"kind": "final", "source_trial": "0d9de8c0"})
    assert name == "ls alpha=0.1872 schedule=constant · final seed 1000000 · 0d9de8c0"


def test_the_method_and_its_hyperparameters_are_the_first_params():
    assert list(flatten_params(CONFIG))[:3] == ["loss", "loss_params.alpha", "loss_params.schedule"]
    assert flatten_params(CONFIG)["loss_params.alpha"] == str(CONFIG["loss_params.alpha"])  # the exact value


def test_the_kind_is_one_tag():
    tags = child_tags("final-a-seed1", {"kind": "final", "source_trial": "a"})
    assert tags == {RUN_KIND_TAG: "final", TRIAL_TAG: "final-a-seed1", "source_trial": "a"}
    assert child_tags("t", {})[RUN_KIND_TAG] == "trial"
