"""`smoothstudy report`: the comparison of a study's methods, written next to its results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from study.layout import StudyDir
from study.runner import load_study_of


def make_report(study: StudyDir, out: Path | None = None, echo: Callable[[str], None] | None = print) -> Path:
    from analysis.report import build_report, format_table, write_report

    spec = load_study_of(study)
    first = spec.objectives[0]
    report = build_report(study.root, objective=first.metric, mode=first.mode)
    path = write_report(report, out or study.report_dir)
    if echo:
        echo(format_table(report))
    return path
