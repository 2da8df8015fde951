"""`smoothstudy compare` on two studies: a cross-study table, average ranks, every study's own sections."""

from __future__ import annotations

import pytest

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.cross_study import cross_study_ranks
from study.compare import compare_studies
from tests.analysis.test_report_synthetic import make_synthetic_study
from tests.conftest import assert_png, run_cli


def test_compare_two_synthetic_studies(tmp_path):
    a = make_synthetic_study(tmp_path / "runs", "planted_a")
    b = make_synthetic_study(tmp_path / "runs", "planted_b", reruns=False)
    md_path = compare_studies([StudyDir(a), StudyDir(b)], tmp_path / "cmp")
    md = md_path.read_text()
    assert "## Study planted_a" in md and "## Study planted_b" in md
    assert "| method | planted_a: acc | planted_a: ece | planted_a: aurc | planted_b: acc |" in md
    images = sorted((tmp_path / "cmp" / "img").glob("*.png"))
    assert {p.name.split("_", 1)[0] for p in images} == {"0", "1"}  # no study overwrites the other's figures
    for path in images:
        assert_png(path)
    assert (tmp_path / "cmp" / "report.html").read_text().count("data:image/png;base64,") == len(images)
    # ranks by hand: a has ls best (0.902), then label_relaxation and ce tied (0.852): 1, 2.5, 2.5;
    # b (one seed each, test/acc = val/acc - 0.05): ls 0.88, label_relaxation 0.87, ce 0.85: 1, 2, 3
    assert "| label_relaxation | 2.2500 |" in md
    assert "| ce | 2.7500 |" in md
    assert "| ls | 1.0000 |" in md


def test_compare_refuses_the_same_study_twice(tmp_path):
    a = make_synthetic_study(tmp_path / "runs", "planted_a", reruns=False)
    with pytest.raises(UsageError, match="twice"):
        compare_studies([StudyDir(a), StudyDir(a)], tmp_path / "cmp")


def test_compare_cli_on_the_smoke_study_and_a_synthetic_one(smoke_study, tmp_path):
    other = make_synthetic_study(tmp_path / "runs", "planted")
    out = tmp_path / "cmp"
    proc = run_cli("compare", str(smoke_study), str(other), "--out", str(out))
    assert str(out / "report.md") in proc.stdout
    md = (out / "report.md").read_text()
    assert "## Study smoke" in md and "## Study planted" in md


def test_cross_study_ranks_needs_reports():
    assert cross_study_ranks([], ("test/acc",)) == {}
