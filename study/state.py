"""What a study has done so far, read back from its folder: the settings it ran with (``study.yaml``,
``study.json``, the smoke-test cut) and its trials by state. A file that cannot be read is a ``UsageError`` naming it."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.core.statuses import NOT_ENDED
from analysis.core.tables import TRIALS
from search_spaces.smoke import smoke_version
from search_spaces.strategies import trials_asked
from search_spaces.study_file import StudySpec, load_study

# study.json's record of the search trials the study asked Tune for (``trials_asked`` of its spec when it started)
TRIALS_ASKED = "trials_asked"


def load_study_of(study: StudyDir, registries: bool = True) -> StudySpec:
    """The study file of a study folder; ``registries`` False: checked for shape only, no registry (no torch)
    imported (``search_spaces.study_file.parse_study``)."""
    if not study.study_file.exists():
        raise UsageError(f"{study.root} is not a study directory (no study.yaml); run 'smoothstudy run' first")
    return load_study(study.study_file, registries)


def run_spec(study: StudyDir, registries: bool = True) -> StudySpec:
    """The study's settings as it ran them: ``--smoke-test`` studies ran the smoke cut of their file.
    ``registries`` False: for a command that only reads the study back (``status``), without torch."""
    spec = load_study_of(study, registries)
    return smoke_version(spec, registries) if study.meta().get("smoke_test") else spec


def study_trials_asked(study: StudyDir, spec: StudySpec | None = None) -> int:
    """The search trials the study asked Tune for: as study.json recorded them when it started (so no loss
    registry, no torch, is needed to read them back), else (a study started before they were recorded) counted
    from its settings, which under ``per_method`` imports the losses' registry."""
    recorded = study.meta().get(TRIALS_ASKED)
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    return trials_asked(spec or run_spec(study))


def read_results(study: StudyDir, what: str = "trials") -> Any:
    """``analysis.results.read_<what>`` of the study; a missing or unreadable Parquet file is a UsageError."""
    from analysis import results

    try:
        return getattr(results, f"read_{what}")(study.root)
    except FileNotFoundError as err:
        raise UsageError(f"study_dir={study.root}: no results yet ({err}); see 'smoothstudy status'") from None
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise UsageError(f"{study.parquet}: cannot read the study's Parquet {what} ({first})") from None


def trial_states(study: StudyDir) -> Counter:
    if not TRIALS.location(study.parquet).exists():
        return Counter()
    trials = read_results(study, "trials")
    return Counter(trials["status"]) if len(trials) else Counter()


def ended_trials(states: Counter) -> int:
    return sum(n for state, n in states.items() if state not in NOT_ENDED)


def is_finished(study: StudyDir, spec: StudySpec | None = None) -> bool:
    """Every trial the study asked for (its smoke cut's, for a smoke test) has ended."""
    return ended_trials(trial_states(study)) >= study_trials_asked(study, spec)


def check_sqlite_file(path: Path) -> None:
    """``path``, when it exists, is an SQLite database (not garbage that SQLAlchemy fails on mid-command)."""
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as err:
        raise UsageError(f"{path}: not a readable SQLite database ({err})") from None
