"""Where the modules of earlier releases went. A study's Ray state (the pickled tuner and searcher) names
the classes of the release that started it; resuming it after an upgrade needs the old paths to import."""

from __future__ import annotations

import importlib
import sys

RENAMED_MODULES = {
    "search_spaces.schema": "search_spaces.study_file",
    "study.layout": "analysis.core.layout",
    "study.reporting": "study.report",
    "trainables.registry": "analysis.core.registry",
    "analysis.tables": "analysis.core.tables",
    "analysis.comparison": "analysis.study_report",
    "analysis.report": "analysis.terminal_table",
}


def alias_renamed_modules() -> None:
    """Make every old module path import its new module (a no-op for a path that still exists)."""
    for old, new in RENAMED_MODULES.items():
        if old in sys.modules:
            continue
        try:
            importlib.import_module(old)
        except ModuleNotFoundError:
            sys.modules[old] = importlib.import_module(new)
