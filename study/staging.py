"""Writing a folder of outputs all at once: files are written to a scratch folder next to the destination and
moved into it only when everything was written, so a failure half-way leaves the destination as it was."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import SCRATCH_PREFIX
from study.preflight import check_writable_dir


@dataclass(frozen=True)
class Staged:
    scratch: Path
    out: Path

    def final(self, path: Path) -> Path:
        """Where ``path``, written under ``scratch``, is once moved."""
        return self.out / Path(path).relative_to(self.scratch)


@contextmanager
def staged(out: Path, setting: str = "out") -> Iterator[Staged]:
    out = out.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{setting}={out}: an existing file, not a directory; give a directory")
    check_writable_dir(out, setting)
    nearest = next(p for p in (out, *out.parents) if p.is_dir())
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=nearest))
    try:
        yield Staged(scratch, out)
        for path in sorted(scratch.rglob("*")):
            if path.is_file():
                dest = out / path.relative_to(scratch)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
