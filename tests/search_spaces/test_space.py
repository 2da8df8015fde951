import pickle

import optuna
import pytest
import yaml

from search_spaces.space import define_by_run, method_params
from search_spaces.study_file import parse_study
from trainables.config import resolve_trial_config
from trainables.losses import build_loss, get_loss_info


def spec_with(methods: dict):
    return parse_study({"name": "t", "data": {"dataset": "digits"}, "methods": methods})


def sample(spec, n=30, seed=0, sampler=None):
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=seed))
    space = define_by_run(spec)
    out = []
    for _ in range(n):
        trial = study.ask()
        fixed = space(trial)
        out.append({**trial.params, **fixed})
        study.tell(trial, 0.0)
    return out


def test_conditional_space_per_method():
    spec = spec_with({"ce": {}, "ls": {"alpha": {"low": 0.05, "high": 0.2}}, "focal": {"gamma": {"grid": "paper"}}})
    rows = sample(spec, n=60)
    assert {r["loss"] for r in rows} == {"ce", "ls", "focal"}
    for r in rows:
        keys = {k for k in r if k not in ("loss", "seed")}
        if r["loss"] == "ce":
            assert keys == set()
        elif r["loss"] == "ls":
            assert keys == {"ls/alpha"} and 0.05 <= r["ls/alpha"] <= 0.2
        else:
            assert keys == {"focal/gamma"} and r["focal/gamma"] in get_loss_info("focal").hparams[0].grid


def test_unmentioned_params_follow_the_declaration():
    """A searchable parameter not named in the study is searched over its declared range; a non-searchable
    one is fixed at the paper default. Adding a method therefore never touches search_spaces/."""
    spec = spec_with({"mbls": {}})
    params = {p.hparam.name: p for p in method_params(spec)["mbls"]}
    for h in get_loss_info("mbls").hparams:
        p = params[h.name]
        if h.search:
            assert not p.is_fixed and (p.low, p.high) == (h.low, h.high)
        else:
            assert p.is_fixed and p.fixed == h.default


def test_fixed_value_and_every_sample_builds_a_loss():
    spec = spec_with({"ls": {"alpha": 0.3}, "maxsup": {}, "lls": {}})
    base = spec.base_trial_config()
    for row in sample(spec, n=20):
        nested = {"loss": row["loss"]}
        for key, value in row.items():
            if "/" in key:
                method, name = key.split("/")
                nested.setdefault(method, {})[name] = value
        cfg = resolve_trial_config(base, nested)
        if cfg["loss"] == "ls":
            assert cfg["loss_params"] == {"alpha": 0.3}
        build_loss(cfg["loss"], 10, **cfg["loss_params"])


def test_each_trial_gets_its_own_seed():
    spec = parse_study({"name": "t", "seed": 7, "data": {"dataset": "digits"}, "methods": {"ce": {}}})
    rows = sample(spec, n=4)
    assert [r["seed"] for r in rows] == [7, 8, 9, 10]
    cfg = resolve_trial_config(spec.base_trial_config(), {"loss": "ce", "seed": rows[1]["seed"]})
    assert cfg["seed"] == 8


def test_space_pickles_for_ray_experiment_state():
    space = define_by_run(spec_with({"ls": {}}))
    assert pickle.loads(pickle.dumps(space)).methods.keys() == {"ls"}


def test_tpe_is_seeded():
    from search_spaces.samplers import make_sampler

    spec = spec_with({"ce": {}, "ls": {}})
    a, b, c = (sample(spec, n=12, sampler=make_sampler("tpe", seed, n_startup_trials=4)) for seed in (3, 3, 4))
    assert a == b
    assert a != c


@pytest.mark.parametrize("path", ["studies/quick.yaml", "studies/smoke.yaml"])
def test_shipped_spaces_sample(path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = parse_study(yaml.safe_load((root / path).read_text()))
    assert len(sample(spec, n=5)) == 5


@pytest.mark.parametrize("trial_seed, expected", [("per_trial", [5, 6, 7, 8]), ("shared", [5, 5, 5, 5])])
def test_trial_seeds_per_trial_or_shared(trial_seed, expected):
    spec = parse_study({"name": "t", "seed": 5, "data": {"dataset": "digits"},
                        "methods": {"ls": {"alpha": {"grid": [0.1, 0.2, 0.3, 0.4]}}},
                        "search": {"sampler": "grid", "num_samples": 4, "trial_seed": trial_seed}})
    assert [row["seed"] for row in sample(spec, n=4)] == expected
