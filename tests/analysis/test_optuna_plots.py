from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from analysis.optuna_section import optuna_blocks
from analysis.plots.optuna_plots import method_importances, own_params


def _trials():
    loss = CategoricalDistribution(["ce", "ls"])
    alpha, beta = FloatDistribution(0.0, 0.5), FloatDistribution(1.0, 2.0)
    out = []
    for i in range(8):
        a, b = 0.05 * i, 1.0 + 0.1 * ((i * 3) % 8)
        out.append(create_trial(params={"loss": "ls", "ls/alpha": a, "ls/beta": b},
                                distributions={"loss": loss, "ls/alpha": alpha, "ls/beta": beta},
                                value=0.9 - (a - 0.2) ** 2, intermediate_values={1: 0.5, 2: 0.8}))
    out.append(create_trial(params={"loss": "ce"}, distributions={"loss": loss}, value=0.85,
                            intermediate_values={1: 0.6, 2: 0.85}))
    out.append(create_trial(params={"loss": "ce"}, distributions={"loss": loss}, state=TrialState.PRUNED,
                            intermediate_values={1: 0.3}))
    for number, t in enumerate(out):
        t.number = number
    return out


def test_importance_is_per_method_over_its_own_parameters():
    trials = _trials()
    found = method_importances(trials)
    assert set(found) == {"ls"}  # ce has no hyper-parameter; `loss` is never a candidate
    assert set(found["ls"]) == {"alpha", "beta"} and found["ls"]["alpha"] > found["ls"]["beta"]
    assert own_params(trials[0]) == {"alpha": 0.0, "beta": 1.0}


def test_the_section_draws_every_view(tmp_path):
    blocks, images = optuna_blocks(_trials(), "val/acc", "max", [1], tmp_path)
    assert sorted(p.name for p in images) == ["optuna_contour.png", "optuna_history.png", "optuna_importance.png",
                                              "optuna_intermediate.png", "optuna_slice.png"]
    assert all(p.stat().st_size > 1000 for p in images)
    assert optuna_blocks([], "val/acc", "max", [], tmp_path) == ([], [])


def test_a_multi_objective_search_is_shown_by_its_first_objective(tmp_path):
    loss, alpha = CategoricalDistribution(["ls"]), FloatDistribution(0.0, 0.5)
    trials = [create_trial(params={"loss": "ls", "ls/alpha": 0.1 * i}, distributions={"loss": loss, "ls/alpha": alpha},
                           values=[0.8 + 0.01 * i, 0.1]) for i in range(4)]
    for number, t in enumerate(trials):
        t.number = number
    blocks, images = optuna_blocks(trials, "val/acc", "max", [], tmp_path)
    assert {p.name for p in images} >= {"optuna_history.png", "optuna_slice.png", "optuna_importance.png"}
