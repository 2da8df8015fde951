"""Study-file validation: every bad input is one line naming the field, raised before anything runs."""

from pathlib import Path

import pytest
import yaml

from search_spaces.study_file import StudyFileError, load_study, parse_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def smoke() -> dict:
    return yaml.safe_load((STUDIES / "smoke.yaml").read_text())


def with_(path: str, value) -> dict:
    data = smoke()
    node = data
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return data


def test_shipped_studies_load():
    for path in sorted(STUDIES.glob("*.yaml")):
        spec = load_study(path)
        assert spec.name and spec.methods


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("bogus_key", 1, "bogus_key: unknown key"),
        ("training.bogus", 1, "training.bogus: unknown key"),
        ("data.dataset", "imagenet", "unknown dataset 'imagenet'; allowed: cifar10, cifar100, digits"),
        ("model", "vgg99", "unknown model 'vgg99'; known: mlp, small_cnn"),
        ("methods", {"nope": {}}, "unknown loss 'nope'; allowed: ce,"),
        ("methods", {"ls": {"alpha": 1.5}}, "ls.alpha=1.5 is out of range; allowed: a float in [0, 0.9]"),
        ("methods", {"ls": {"alpha": {"low": -0.1, "high": 0.3}}}, "ls.alpha=-0.1 is out of range"),
        ("methods", {"ls": {"beta": 0.1}}, "ls.beta is not a hyperparameter of ls; allowed: alpha"),
        ("methods", {"ce": {"alpha": 0.1}}, "ce.alpha is not a hyperparameter of ce; allowed: none"),
        ("training.epochs", 0, "training.epochs: Input should be greater than 0"),
        ("training.seeds_per_trial", 0, "training.seeds_per_trial: Input should be greater than 0"),
        ("training.batch_size", -4, "training.batch_size: Input should be greater than 0"),
        ("training.optimizer", "lion", "training.optimizer='lion': Input should be 'sgd' or 'adamw'"),
        ("data.val_fraction", 1.5, "data.val_fraction: Input should be less than 1"),
        ("objective.metric", "test/acc", "'test/acc' is not one a trial reports every epoch; allowed: val/acc, "),
        ("objective.metric", "val/nosuch", "'val/nosuch' is not one a trial reports every epoch; allowed: val/acc, "),
        ("objective", [], "objective: an empty list; allowed: one {metric, mode} or a list of one or more"),
        ("search.sampler", "grid", "search.sampler=grid cannot enumerate methods.ls.alpha (a range); allowed"),
        ("search.sampler", "cmaes", "search.sampler='cmaes': Input should be 'tpe', 'random', 'nsga2' or 'grid'"),
        ("search.num_samples", 10**6, "search.num_samples: Input should be less than or equal to 100000"),
        ("name", "bad name!", "name: String should match pattern"),
        ("final.also_chosen_by", [{"metric": "test/ece", "mode": "min"}],
         "final.also_chosen_by.0.metric: objective metric 'test/ece' is not one a trial reports every epoch; "
         "allowed: val/acc"),
        ("final.also_chosen_by", [{"metric": "val/ece", "mode": "lowest"}],
         "final.also_chosen_by.0.mode='lowest': Input should be 'max' or 'min'"),
        ("final.also_chosen_by", [{"metric": "val/ece"}],
         "final.also_chosen_by.0: mode missing; allowed: {metric: <a val/ or train/ metric>, mode: max | min}"),
        ("final.also_chosen_by", ["val/ece"], "final.also_chosen_by.0: not a mapping; allowed: {metric: "),
        ("final.also_chosen_by", {"metric": "val/ece", "mode": "min"},
         "final.also_chosen_by: not a list; allowed: a list"),
        ("final.also_chosen_by", [{"metric": "val/ece", "mode": "min", "top": 2}],
         "final.also_chosen_by.0.top: unknown key"),
    ],
)
def test_bad_input_names_the_field(path, value, expected):
    with pytest.raises(StudyFileError) as err:
        parse_study(with_(path, value))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_final_runs_also_chosen_by_other_validation_metrics():
    spec = parse_study(with_("final", {"top": 2, "seeds": 5, "also_chosen_by": [
        {"metric": "val/ece", "mode": "min"}, {"metric": "train/loss", "mode": "min"}]}))
    assert [(s.metric, s.mode) for s in spec.final.also_chosen_by] == [("val/ece", "min"), ("train/loss", "min")]
    assert parse_study(with_("final", {"seeds": 2})).final.also_chosen_by == []


def test_grid_sampler_takes_finite_grids():
    methods = {"ce": {}, "ls": {"alpha": {"grid": [0.1, 0.2]}}, "focal": {"gamma": {"grid": "paper"}},
               "confidence_penalty": {"beta": 0.5}}
    spec = parse_study({**with_("search.sampler", "grid"), "methods": methods})
    assert spec.search.sampler == "grid"
    with pytest.raises(StudyFileError, match="cannot enumerate methods.mbls.weight"):  # unmentioned: a range
        parse_study({**with_("search.sampler", "grid"), "methods": {**methods, "mbls": {}}})


def test_paper_grid_requires_a_declared_grid():
    with pytest.raises(StudyFileError, match="declares no paper grid"):
        parse_study(with_("methods", {"mbls": {"margin": {"grid": "paper"}}}))


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(StudyFileError, match="cannot read it"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethods: {ce: {}\n")
    with pytest.raises(StudyFileError, match=r"line \d+: not valid YAML"):
        load_study(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(StudyFileError, match="mapping"):
        load_study(listy)


def test_yaml_is_data_only(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\nmethods: {ce: {}}\n")
    with pytest.raises(StudyFileError, match="not valid YAML"):
        load_study(evil)


def test_base_trial_config_carries_every_setting():
    spec = parse_study(smoke())
    base = spec.base_trial_config()
    assert base["dataset"] == "digits" and base["model"] == "mlp" and base["epochs"] == 4
    assert "loss" not in base  # the search chooses it
