"""Outputs written through a scratch folder: all of them or none."""

from __future__ import annotations

import pytest

from analysis.core.errors import UsageError
from study.staging import staged


def test_files_arrive_only_when_everything_was_written(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError), staged(out) as stage:
        (stage.scratch / "img").mkdir()
        (stage.scratch / "img" / "a.png").write_bytes(b"png")
        raise RuntimeError("the second study failed to load")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine.txt", "report"]  # no scratch left either
    with staged(out) as stage:
        (stage.scratch / "img").mkdir()
        (stage.scratch / "img" / "a.png").write_bytes(b"png")
        md = stage.scratch / "report.md"
        md.write_text("# r")
    assert stage.final(md) == out.absolute() / "report.md" and stage.final(md).read_text() == "# r"
    assert (out / "img" / "a.png").read_bytes() == b"png" and (out / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_out_naming_a_file_is_refused(tmp_path):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(UsageError, match="an existing file, not a directory"), staged(tmp_path / "x"):
        pass
    assert (tmp_path / "x").read_text() == "mine"
