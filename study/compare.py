"""`smoothstudy compare`: one report across several studies (e.g. the same methods on two datasets)."""

from __future__ import annotations

from pathlib import Path

from study.errors import UsageError
from study.layout import StudyDir


def compare_studies(study_dirs: list[StudyDir], out: Path) -> Path:
    """Writes ``report.md`` and ``report.html`` (with ``img/``) under ``out``; returns the Markdown path."""
    from analysis.comparison import write_comparison
    from study.reporting import report_inputs

    if not study_dirs:
        raise UsageError("study_dirs is empty; give at least one study directory")
    roots = [s.root.resolve() for s in study_dirs]
    if len(set(roots)) != len(roots):
        raise UsageError(f"study_dirs names a study twice: {', '.join(map(str, roots))}")
    files = write_comparison([report_inputs(s) for s in study_dirs], out)
    return files.markdown
