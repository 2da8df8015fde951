"""The full report on a synthetic Parquet set with planted answers: the best method, a significant and a
null difference, the Pareto sets, and every figure a valid PNG."""

from __future__ import annotations

import math
import platform
from pathlib import Path

import numpy as np
import pytest

from analysis.leaderboard import build_leaderboard
from analysis.results import read_rerun_trials, read_trials, samples_path, write_samples
from analysis.study_report import ReportInputs, build_study_report, write_study_report
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink
from tests.conftest import assert_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STUDY_YAML = """name: {name}
data: {{dataset: digits, val_fraction: 0.2}}
training: {{epochs: 2, device: cpu}}
methods: {{ce: {{}}, ls: {{alpha: {{low: 0.05, high: 0.3}}}}, label_relaxation: {{alpha: {{low: 0.01, high: 0.4}}}}}}
objective: {{metric: val/acc, mode: max}}
"""

# (trial, method, alpha, status, val/acc, val/aurc, val/ece)
SEARCH = [
    ("ce_a", "ce", None, "completed", 0.90, 0.010, 0.03),
    ("ce_b", "ce", None, "completed", 0.88, 0.012, 0.02),
    ("ls_a", "ls", 0.1, "completed", 0.93, 0.008, 0.15),  # the planted best by val/acc
    ("ls_b", "ls", 0.3, "completed", 0.91, 0.009, 0.16),  # dominated by ls_a
    ("ls_c", "ls", 0.05, "stopped", 0.80, 0.030, 0.05),
    ("lr_a", "label_relaxation", 0.1, "completed", 0.92, 0.009, 0.01),
    ("lr_b", "label_relaxation", 0.3, "stopped", 0.85, 0.020, 0.04),
]
METHOD_FRONTS = {"ce_a", "ce_b", "ls_a", "lr_a"}  # completed trials only: the stopped ls_c is on no front
GLOBAL_FRONT = {"ls_a", "lr_a"}
CE_ACC = np.array([0.85, 0.86, 0.84, 0.85, 0.86])
RERUN_ACC = {
    "ce_a": CE_ACC,
    "ls_a": CE_ACC + 0.05 + np.array([1, -1, 2, -2, 0]) * 1e-3,  # planted: clearly better than CE
    "lr_a": CE_ACC + np.array([10, -10, 5, -5, 0]) * 1e-3,  # planted: mean difference exactly 0
}
RERUN_ECE = {"ce_a": [0.05, 0.06, 0.04, 0.05, 0.06], "ls_a": [0.15, 0.16, 0.14, 0.15, 0.17],
             "lr_a": [0.010, 0.012, 0.011, 0.009, 0.013]}


def _final(acc, aurc, ece, test=True):
    out = {"val/acc": acc, "val/aurc": aurc, "val/ece": ece}
    if test:
        out.update({"test/acc": acc - 0.05, "test/ece": ece, "test/aurc": aurc, "test/temperature": 1.5})
    return out


def _samples(n_wrong: int, n: int = 120, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 4
    pred = label.copy()
    pred[:n_wrong] = (label[:n_wrong] + 1) % 4
    logits = rng.normal(0, 0.3, size=(n, 4))
    logits[np.arange(n), pred] += 3.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"label": label, "pred": pred, "msp": p.max(axis=1), "lognorm": p.max(axis=1), "logits": logits}


def make_synthetic_study(root: Path, name: str = "planted", reruns: bool = True,
                         shared_seeds: bool = True) -> Path:
    """A study directory with search trials, optional reruns (5 seeds of each method's best trial; the same
    seeds for every method unless ``shared_seeds`` is False) and per-sample outputs of the best trials (ls_a
    always right, ce_a and lr_a wrong on the same 40 of 120)."""
    study = root / name
    sink = ParquetSink(study / "parquet", name)
    for trial, method, alpha, status, acc, aurc, ece in SEARCH:
        config = {"loss": method, "seed": 0, **({"loss_params.alpha": alpha} if alpha is not None else {})}
        sink.trial_started(TrialStart(trial, config))
        sink.epoch(trial, 1, {"val/acc": acc - 0.05, "val/aurc": aurc * 2, "val/ece": ece})
        if status == "completed":
            sink.epoch(trial, 2, {"val/acc": acc, "val/aurc": aurc, "val/ece": ece})
        sink.trial_ended(TrialEnd(trial, status, "", _final(acc, aurc, ece, status == "completed")))
    sink.close()
    for trial, wrong in (("ce_a", 40), ("ls_a", 0), ("lr_a", 40)):
        write_samples(samples_path(study, trial), _samples(wrong))
    if reruns:
        rr = ParquetSink(study / "parquet" / "reruns", name)
        for k, (source, accs) in enumerate(RERUN_ACC.items()):
            method = next(s[1] for s in SEARCH if s[0] == source)
            for i, (acc, ece) in enumerate(zip(accs, RERUN_ECE[source])):
                seed = 1000 + i + (0 if shared_seeds else 100 * k)
                run = f"rerun-{source}-seed{seed}"
                rr.trial_started(TrialStart(run, {"loss": method, "seed": seed},
                                            tags={"kind": "rerun", "source_trial": source}))
                rr.trial_ended(TrialEnd(run, "completed", "", {"test/acc": float(acc), "test/ece": ece}))
        # noise the leaderboard must ignore: a diverged rerun of the best and a rerun of a non-best trial
        rr.trial_started(TrialStart("rerun-ls_a-seed2000", {"loss": "ls", "seed": 2000},
                                    tags={"kind": "rerun", "source_trial": "ls_a"}))
        rr.trial_ended(TrialEnd("rerun-ls_a-seed2000", "diverged", "nan", {"test/acc": 0.1}))
        rr.trial_started(TrialStart("rerun-ls_b-seed1000", {"loss": "ls", "seed": 1000},
                                    tags={"kind": "rerun", "source_trial": "ls_b"}))
        rr.trial_ended(TrialEnd("rerun-ls_b-seed1000", "completed", "", {"test/acc": 0.99}))
        rr.close()
    (study / "study.yaml").write_text(STUDY_YAML.format(name=name))
    return study


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_synthetic_study(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    return make_synthetic_study(tmp_path_factory.mktemp("runs"), "oneseed", reruns=False)




def test_leaderboard_planted_best_and_intervals(planted):
    board = build_leaderboard(read_trials(planted), read_rerun_trials(planted), "val/acc", "max")
    assert [m.method for m in board.methods] == ["ls", "label_relaxation", "ce"]
    assert [m.trial_id for m in board.methods] == ["ls_a", "lr_a", "ce_a"]
    assert all(m.source == "reruns" and len(m.seeds) == 5 for m in board.methods)
    assert board.best["test/acc"] == {"ls"}
    assert board.best["test/ece"] == {"label_relaxation"}
    ce = board.interval("ce", "test/acc")
    assert ce.mean == pytest.approx(0.852)
    assert ce.half_width == pytest.approx(2.776445 * math.sqrt(70e-6 / 5), rel=1e-5)
    assert board.methods[0].hparams == {"alpha": 0.1}


def test_significance_planted_difference_and_null(planted):
    rep = build_study_report(ReportInputs(planted, [("val/acc", "max")]), planted / "img")
    vs_ce = rep.tests["ce"]
    assert vs_ce[("ls", "test/acc")].test == "t-test"
    assert vs_ce[("ls", "test/acc")].diff == pytest.approx(0.05)
    assert vs_ce[("ls", "test/acc")].p_value < 1e-4
    assert vs_ce[("label_relaxation", "test/acc")].diff == pytest.approx(0.0, abs=1e-12)
    assert vs_ce[("label_relaxation", "test/acc")].p_value == pytest.approx(1.0)
    assert ("ce", "test/acc") not in vs_ce
    assert rep.tests["ls"][("ce", "test/acc")].diff == pytest.approx(-0.05)


def test_reruns_without_common_seeds_use_welch(tmp_path):
    study = make_synthetic_study(tmp_path, "distinct", shared_seeds=False)
    files = write_study_report(ReportInputs(study, [("val/acc", "max")]), tmp_path / "out")
    rep = build_study_report(ReportInputs(study, [("val/acc", "max")]), tmp_path / "img")
    planted_diff = rep.tests["ce"][("ls", "test/acc")]
    assert planted_diff.test == "Welch t-test" and planted_diff.n == 5
    assert planted_diff.diff == pytest.approx(0.05)
    assert planted_diff.p_value < 1e-3
    null = rep.tests["ce"][("label_relaxation", "test/acc")]
    assert null.diff == pytest.approx(0.0, abs=1e-12) and null.p_value == pytest.approx(1.0)
    md = files.markdown.read_text()
    assert "Welch t-test over seeds" in md and "| ls | Welch t-test |" in md


def test_one_seed_uses_paired_bootstrap_over_samples(one_seed):
    rep = build_study_report(ReportInputs(one_seed, [("val/acc", "max")], resamples=200), one_seed / "img")
    assert all(m.source == "search trial" and len(m.seeds) == 1 for m in rep.board.methods)
    planted_diff = rep.tests["ce"][("ls", "test/acc")]
    assert planted_diff.test == "paired bootstrap"
    assert planted_diff.diff == pytest.approx(40 / 120)
    assert planted_diff.p_value == pytest.approx(2 / 201)
    same = rep.tests["ce"][("label_relaxation", "test/acc")]
    assert same.diff == 0.0 and same.p_value == 1.0
    assert ("ls", "test/r2") not in rep.tests["ce"]  # not computable from per-sample outputs


def test_pareto_sets_planted(planted):
    rep = build_study_report(ReportInputs(planted, [("val/acc", "max")]), planted / "img")
    assert set(rep.pareto.loc[rep.pareto["on_method_front"], "trial_id"]) == METHOD_FRONTS
    assert set(rep.pareto.loc[rep.pareto["on_front"], "trial_id"]) == GLOBAL_FRONT


def test_multi_objective_pareto_uses_the_study_objectives(planted):
    rep = build_study_report(ReportInputs(planted, [("val/acc", "max"), ("val/ece", "min")]), planted / "img2")
    # ce_b has the lowest ECE of CE; ls_c, stopped by ASHA, has LS's lowest ECE but is no finished model; lr_a
    # is best of its method in both
    assert set(rep.pareto.loc[rep.pareto["on_method_front"], "trial_id"]) == {"ce_a", "ce_b", "ls_a", "lr_a"}
    assert set(rep.pareto.loc[rep.pareto["on_front"], "trial_id"]) == {"ls_a", "lr_a"}
    names = {p.name for p in rep.images}
    assert {"pareto.png", "pareto_objectives.png"} <= names  # accuracy/AURC/ECE always, the objectives too
    for path in rep.images:
        assert_png(path)


def test_written_report_is_complete_and_self_contained(planted, tmp_path):
    files = write_study_report(ReportInputs(planted, [("val/acc", "max")], rungs=[1]), tmp_path / "out")
    md, page = files.markdown.read_text(), files.html.read_text()
    names = {p.name for p in files.images}
    assert {"pareto.png", "risk_coverage.png", "reliability.png", "metric_vs_hparam.png",
            "learning_curves.png"} <= names
    for path in files.images:
        assert_png(path)
        assert f"img/{path.name}" in md
    assert page.count("data:image/png;base64,") == len(files.images)
    assert "src='img/" not in page and "http" not in page
    assert "**0.9020 ± " in md  # ls has the best mean accuracy: 0.852 + 0.05
    assert "paired t-test over seeds (n = 5 seeds)" in md and "| ls | t-test |" in md
    assert "Study facts" in md and "stopped early by ASHA | 2" in md


def test_reruns_section_lists_every_rerun_configuration(planted, tmp_path):
    md = write_study_report(ReportInputs(planted, [("val/acc", "max")]), tmp_path / "out").markdown.read_text()
    section = md.split("## Reruns", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "source trial" not in line]
    assert [r.split(" | ")[1] for r in rows] == ["ce_a", "lr_a", "ls_a", "ls_b"]  # by method, then best first
    by_trial = {r.split(" | ")[1]: r for r in rows}
    assert " | 5 | " in by_trial["ls_a"] and "0.9020 ± " in by_trial["ls_a"]  # the diverged rerun is left out
    assert " | 1 | " in by_trial["ls_b"] and "0.9900" in by_trial["ls_b"]


RECORDED = {"versions": {"python": "3.99.0", "torch": "9.9.9", "ray": "8.8.8"},
            "driver": {"host": "trainer-7", "cpu": "Z80 @ 4 MHz", "cores": "64", "gpu": "NVIDIA H100"},
            "cluster": {"nodes": 3, "cpus": 96.0, "gpus": 8.0, "accelerators": "H100"}}


def test_study_facts_are_the_studys_recorded_environment(planted, tmp_path):
    inputs = ReportInputs(planted, [("val/acc", "max")], environment=RECORDED)
    facts = build_study_report(inputs, tmp_path / "img").facts
    assert facts.environment_of == "study" and facts.versions == RECORDED["versions"]
    assert facts.machine == RECORDED["driver"] and facts.cluster == RECORDED["cluster"]
    md = write_study_report(inputs, tmp_path / "out").markdown.read_text()
    assert "recorded when it started" in md
    for row in ("| torch | 9.9.9 |", "| driver host | trainer-7 |", "| driver gpu | NVIDIA H100 |",
                "| Ray cluster nodes | 3 |", "| Ray cluster cpus | 96 |", "| Ray cluster gpus | 8 |"):
        assert row in md, row


def test_study_facts_of_an_unrecorded_study_are_labelled_as_the_report_writers(planted, tmp_path):
    facts = build_study_report(ReportInputs(planted, [("val/acc", "max")]), tmp_path / "img").facts
    assert facts.environment_of == "report writer" and facts.cluster == {}
    assert facts.machine["host"] == platform.node() and facts.versions["python"] == platform.python_version()
    md = write_study_report(ReportInputs(planted, [("val/acc", "max")]), tmp_path / "out").markdown.read_text()
    assert "did not record its software and machine" in md and f"| host | {platform.node()} |" in md
    assert "Ray cluster" not in md
