"""The protocol file of a reproduction: its blocks, parts, rows, claims and panels, checked on reading.

A part is one study (``{study: <file>}``, its tables under ``<data>/<part>/``) or one study per seed
(``{study: <file>, seeds: [0, 1, …]}``, under ``<data>/<part>/s<seed>/``: the seed's own split, grid and
choice, as ``smoothstudy reproduce seed`` writes its study file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NOT_RUN = "not run yet"
SEED_FOLDER = "s{seed}"  # a per-seed part's study of one seed, under the part's folder
PAPER_SEEDS = 10  # what a paper's "±" is taken over when the protocol does not say (paper.seeds)


@dataclass
class Protocol:
    path: Path
    spec: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return self.path.parent / self.spec.get("data", "data")

    @property
    def repo_root(self) -> Path:
        """The first folder above the protocol file with a ``pyproject.toml`` (paths in the file are
        relative to it), else the protocol's folder."""
        for parent in self.path.resolve().parents:
            if (parent / "pyproject.toml").is_file():
                return parent
        return self.path.parent

    @property
    def paper_seeds(self) -> int:
        return int(self.spec["paper"].get("seeds", PAPER_SEEDS))

    @property
    def paper_decimals(self) -> int | None:
        """How many decimals the paper prints its numbers with (``paper.decimals``), None when not said."""
        decimals = self.spec["paper"].get("decimals")
        return None if decimals is None else int(decimals)

    def part_dir(self, part: str) -> Path:
        return self.data_dir / part

    def part_seeds(self, part: str) -> list[int] | None:
        """The seeds of a per-seed part, None for a part that is one study."""
        seeds = self.spec["parts"][part].get("seeds")
        return None if seeds is None else [int(s) for s in seeds]

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.repo_root))
        except ValueError:
            return str(path)


def load_protocol(path: Path | str) -> Protocol:
    """Reads and checks a protocol file; bad input raises ValueError with one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"protocol={path}: no such file")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError(f"protocol={path}: expected a mapping")
    for key in ("title", "blocks", "parts", "rows"):
        if key not in spec:
            raise ValueError(f"protocol={path}: missing key {key!r}")
    blocks, parts = spec["blocks"], spec["parts"]
    decimals = (spec.get("paper") or {}).get("decimals")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 9):
        raise ValueError(f"protocol={path}: paper.decimals={decimals!r}; allowed: an integer from 0 to 9")
    for name, block in blocks.items():
        if not {"objective", "mode"} <= set(block) or block["mode"] not in ("max", "min"):
            raise ValueError(f"protocol={path}: block {name!r} needs objective and mode (max or min)")
    for name, part in parts.items():
        seeds = part.get("seeds")
        if seeds is not None and (not isinstance(seeds, list) or not seeds
                                  or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
            raise ValueError(f"protocol={path}: part {name!r} has seeds={seeds!r}; allowed: a list of integers >= 0")
    panel = [(f"aurc_panel.{k}", v) for k, v in (spec.get("aurc_panel") or {}).items()]
    attribution = [(f"attribution {a.get('label')!r}", a) for a in spec.get("attribution", [])]
    attribution += [(f"attribution {a.get('label')!r} against", a.get("against") or {})
                    for a in spec.get("attribution", [])]
    for name, entry in [*((f"row {r.get('label')!r}", r) for r in spec["rows"]), *panel, *attribution]:
        for key in ("block", "chosen_by"):
            if key in entry and entry[key] not in blocks:
                raise ValueError(f"protocol={path}: {name} has {key}={entry[key]!r}; allowed: " + ", ".join(blocks))
        if entry.get("part") not in parts:
            raise ValueError(f"protocol={path}: {name} has part={entry.get('part')!r}; allowed: " + ", ".join(parts))
    labels = set()
    for row in spec["rows"]:
        for key in ("label", "method", "paper"):
            if key not in row:
                raise ValueError(f"protocol={path}: row {row.get('label')!r} lacks {key!r}")
        causes = row.get("causes", {})
        if not isinstance(causes, dict) or not set(causes) <= {"acc", "ece"} \
                or not all(isinstance(c, str) and c.strip() for c in causes.values()):
            raise ValueError(f"protocol={path}: row {row['label']!r} has causes={causes!r}; allowed: a mapping of "
                             "acc and/or ece to a sentence")
        labels.add(row["label"])
    for claim in spec.get("claims", []):
        names = [*claim.get("among", []), *[claim[k] for k in ("winner", "beats") if k in claim]]
        unknown = [n for n in names if n not in labels]
        if unknown:
            raise ValueError(f"protocol={path}: claim {claim.get('text')!r} names unknown rows {unknown}")
    variant = spec.get("compare_with")
    if variant is not None and not (path.parent / variant).is_file():
        raise ValueError(f"protocol={path}: compare_with={variant!r}: no such file next to it")
    return Protocol(path, spec)


def shown_in(protocol: Protocol, row: dict[str, Any]) -> str:
    """The block a row is shown (and ranked) in: its ``block``, else the first block."""
    return row.get("block", next(iter(protocol.spec["blocks"])))


def chosen_in(protocol: Protocol, row: dict[str, Any]) -> str:
    """The block whose objective chooses a row's configuration: its ``chosen_by``, else the block it is shown
    in (a row of a panel: the first block)."""
    return row.get("chosen_by", shown_in(protocol, row))


def choice(protocol: Protocol, block: str) -> tuple[str, str]:
    spec = protocol.spec["blocks"][block]
    return spec["objective"], spec["mode"]
