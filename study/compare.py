"""`smoothstudy compare`: one report across several studies (e.g. the same methods on two datasets)."""

from __future__ import annotations

from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir


def compare_studies(study_dirs: list[StudyDir], out: Path) -> Path:
    """Writes ``report.md`` and ``report.html`` (with ``img/``) under ``out``; returns the Markdown path."""
    from analysis.cross_study import write_comparison
    from study.report import report_inputs
    from study.staging import staged
    from study.state import read_results

    if not study_dirs:
        raise UsageError("study_dirs is empty; give at least one study directory")
    roots = [s.root.resolve() for s in study_dirs]
    if len(set(roots)) != len(roots):
        raise UsageError(f"study_dirs names a study twice: {', '.join(map(str, roots))}")
    inputs = [report_inputs(s) for s in study_dirs]
    for study in study_dirs:  # every input loads before anything is written
        for what in ("trials", "rerun_trials", "epochs"):
            read_results(study, what)
    with staged(out) as stage:
        files = write_comparison(inputs, stage.scratch)
    return stage.final(files.markdown)
