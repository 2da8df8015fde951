"""The report on a real smoke-study output: every file written, every figure a valid PNG, the report logged to
the study's MLflow parent run."""

from __future__ import annotations

import json
import platform

from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_trials
from study.report import REPORT_ARTIFACT_DIR, make_report, report_inputs, run_map_of
from study.state import load_study_of
from tests.conftest import assert_png


def test_report_on_the_smoke_study(smoke_study, tmp_path):
    study = StudyDir(smoke_study)
    out = tmp_path / "report"
    md_path = make_report(study, out, echo=None)
    md = md_path.read_text()
    page = (out / "report.html").read_text()
    images = sorted((out / "img").glob("*.png"))
    assert {p.name for p in images} >= {"pareto.png", "risk_coverage.png", "reliability.png",
                                        "metric_vs_hparam.png", "learning_curves.png"}
    for path in images:
        assert_png(path)
        assert f"img/{path.name}" in md
    assert page.count("data:image/png;base64,") == len(images)
    trials = read_trials(smoke_study)
    for method in set(trials.loc[trials["status"] == "completed", "config/loss"]):
        assert f"| {method} |" in md
    assert f"Trials: {len(trials)} (" in md
    for name in ("torch", "ray", "optuna", "mlflow", "python", "pyarrow", "timm"):
        assert f"| {name} |" in md
    # the facts are the study's, recorded by `smoothstudy run` when it started
    environment = json.loads(study.meta_file.read_text())["environment"]
    assert environment["versions"]["python"] == platform.python_version()
    assert environment["driver"]["host"] == platform.node() and int(environment["driver"]["cores"]) >= 1
    assert environment["cluster"]["nodes"] == 1 and environment["cluster"]["cpus"] >= 1
    assert "recorded when it started" in md and f"| driver host | {platform.node()} |" in md
    assert "| Ray cluster cpus |" in md

    client = MlflowClient(study.default_mlflow_uri)
    parent = run_map_of(study)["parent"]
    logged = {a.path for a in client.list_artifacts(parent, REPORT_ARTIFACT_DIR)}
    from study.report import ANSWER_FILE, LEADERBOARD_FILE

    assert logged == {f"{REPORT_ARTIFACT_DIR}/{name}" for name in ("report.md", "report.html", ANSWER_FILE,
                                                                    LEADERBOARD_FILE)}


def test_asha_rungs_of_the_smoke_study(smoke_study):
    spec = load_study_of(StudyDir(smoke_study))
    # grace period 1, reduction factor 2, 4 epochs: ASHA compares trials after epochs 1 and 2
    assert (spec.asha.grace_period, spec.asha.reduction_factor, spec.training.epochs) == (1, 2, 4)
    assert report_inputs(StudyDir(smoke_study), spec).rungs == [1, 2]
