"""``run --force``: replacing an existing study folder, and only one the tool made.

A folder is a study when it holds the study's marker files (``study.yaml`` and ``study.json``) and nothing
but what a study writes (``StudyDir.own_names``). Anything else is refused and left as it is; the replacement
deletes only the tool's own entries, after every other check has passed."""

from __future__ import annotations

import shutil

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from study.staging import SCRATCH_PREFIX


def _own(study: StudyDir, name: str) -> bool:
    return name in study.own_names or name.startswith(SCRATCH_PREFIX)  # a report's scratch, left by a kill


def foreign_entries(study: StudyDir) -> list[str]:
    """Names under ``study.root`` that a study does not write."""
    return sorted(p.name for p in study.root.iterdir() if not _own(study, p.name))


def is_study(study: StudyDir) -> bool:
    return (study.root.is_dir() and not study.root.is_symlink() and study.study_file.is_file()
            and study.meta_file.is_file() and not foreign_entries(study))


def check_replaceable(study: StudyDir, force: bool) -> bool:
    """Whether a replacement is due (``study.root`` holds something and ``force`` asks for it); refuses, with
    one line, a folder that holds something without ``force`` and anything but a study with it."""
    root = study.root
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise UsageError(f"{root} exists and is not a study folder; pick another --storage or study name")
    if not root.exists() or not any(root.iterdir()):
        return False
    if not force:
        raise UsageError(f"study {study.name!r} already exists at {root}; continue it with "
                         f"'smoothstudy resume {root}' or start over with --force")
    if not is_study(study):
        foreign = foreign_entries(study)
        what = (f"it holds {', '.join(foreign[:5])}{' …' if len(foreign) > 5 else ''}, which no study writes"
                if foreign else "it lacks a study's study.yaml and study.json")
        raise UsageError(f"--force replaces only a study folder; {root} is not one ({what}); nothing was deleted: "
                         "move it or pick another --storage")
    return True


def clear_study(study: StudyDir) -> None:
    """Deletes the tool's own entries of a folder ``check_replaceable`` accepted (not the folder itself, so
    anything that appeared since is kept)."""
    for path in study.root.iterdir():
        if not _own(study, path.name):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
