"""A two-objective study end to end: Optuna runs multi-objective, ASHA keys on the first objective, and the
report shows each method's Pareto set over both objectives."""

from __future__ import annotations

import optuna
import pytest

from analysis.results import read_trials
from study.optuna_store import optuna_studies, optuna_trials
from tests.conftest import run_cli

STUDY = """name: two_objectives
seed: 0
data: {dataset: digits, val_fraction: 0.2}
model: mlp
training: {optimizer: sgd, lr: 0.05, epochs: 3, batch_size: 64, device: cpu}
evaluation: {representation: false, probe: false}
methods:
  ce: {}
  ls: {alpha: {low: 0.05, high: 0.3}}
search: {num_samples: 5, max_concurrent: 2, sampler: SAMPLER}
asha: {grace_period: 1, reduction_factor: 2}
objective: [{metric: val/acc, mode: max}, {metric: val/ece, mode: min}]
resources: {cpu: 1}
"""


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["nsga2", "tpe"])
def test_two_objective_study_and_its_pareto_report(tmp_path, sampler):
    path = tmp_path / "two.yaml"
    path.write_text(STUDY.replace("SAMPLER", sampler))
    run_cli("run", str(path), "--storage", str(tmp_path / "runs"))
    study_dir = tmp_path / "runs" / "two_objectives"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    uri = f"sqlite:///{study_dir / 'optuna.db'}"
    assert {tuple(d.name for d in s.directions) for s in optuna_studies(uri, "two_objectives")} == \
        {("MAXIMIZE", "MINIMIZE")}
    complete = [t for t in optuna_trials(uri, "two_objectives") if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(len(t.values) == 2 for t in complete)
    trials = read_trials(study_dir)
    assert len(trials) == 5 and set(trials["status"]) <= {"completed", "stopped"}
    by_id = trials.set_index("trial_id")
    done = by_id[by_id["status"] == "completed"]
    values = sorted(tuple(round(v, 9) for v in t.values) for t in complete)
    assert values == sorted((round(a, 9), round(e, 9)) for a, e in zip(done["val/acc"], done["val/ece"]))

    md = (study_dir / "report" / "report.md").read_text()  # `run` writes the report at the end
    assert "| val/acc (max) | val/ece (min) | on the front of all trials |" in md
    assert "`val/acc` (max), `val/ece` (min)" in md
