"""``run --force``: replacing an existing study folder, and only one the tool made.

A folder is a study when it holds the study's marker files (``study.yaml`` and ``study.json``) and every entry
in it, at every depth, is one a study writes (``analysis.core.layout.study_manifest``). Anything else is refused,
naming the first foreign entry, and left as it is; the replacement deletes only the files of the manifest, after
every other check has passed."""

from __future__ import annotations

import os
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir, in_manifest


def first_foreign(study: StudyDir) -> str | None:
    """The first path under ``study.root`` that a study does not write (relative, a folder ending in /)."""
    return next(study.foreign_entries(), None)


def is_study(study: StudyDir) -> bool:
    return (study.root.is_dir() and not study.root.is_symlink() and study.study_file.is_file()
            and study.meta_file.is_file() and first_foreign(study) is None)


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
    foreign = first_foreign(study)
    if foreign is not None or not is_study(study):
        what = (f"it holds {foreign}, which no study writes" if foreign is not None
                else "it lacks a study's study.yaml and study.json")
        raise UsageError(f"--force replaces only a study folder; {root} is not one ({what}); nothing was deleted: "
                         "move it or pick another --storage")
    return True


def clear_study(study: StudyDir) -> None:
    """Deletes the files of the manifest in a folder ``check_replaceable`` accepted, then the folders they leave
    empty (not the study folder itself): anything that appeared since is kept, with the folders holding it."""
    root = study.root
    for top, dirs, files in os.walk(root, topdown=False):
        rel = Path(top).relative_to(root).parts
        for name in files + [d for d in dirs if (Path(top) / d).is_symlink()]:
            if in_manifest((*rel, name), folder=False):
                (Path(top) / name).unlink()
        if rel and in_manifest(rel, folder=True):
            try:
                Path(top).rmdir()
            except OSError:  # not empty: it holds something the study did not write
                pass
