"""`smoothstudy reproduce`: the committed data of a reproduction run in parts, and its document.

``collect`` copies one part's (a study's) tables, exactly as the study wrote them, into the repository
(``docs/reproductions/data/<part>/``): ``study.yaml``, ``study.json`` and ``parquet/`` (search trials, epochs,
the reruns and final runs under ``parquet/reruns``, and the per-sample files unless the whole would exceed
``max_mb``). A finished or a still running study may be collected, and collected again later: the folder's
``COLLECTED.json`` lists every file collect wrote with its SHA-256, and collect refuses to touch a folder that
holds anything else, or a file someone changed since. ``report`` renders the protocol's document
(``analysis.reproduction``). ``seed`` writes one seed of a per-seed part: the part's study file with that seed
as its training and split seed, named ``<name>_s<seed>``, for ``smoothstudy run``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir

MANIFEST = "COLLECTED.json"
DEFAULT_MAX_MB = 20.0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_files(study_dir: Path) -> list[str]:
    """Relative paths of the study's files to collect (temporary ``.*`` files excluded)."""
    study = StudyDir(study_dir)
    out = [path.name for path in (study.study_file, study.meta_file) if path.is_file()]
    for path in sorted(study.parquet.rglob("*")):
        rel = path.relative_to(study_dir)
        if path.is_file() and not any(p.startswith(".") for p in rel.parts):
            out.append(rel.as_posix())
    return out


def _is_sample_part(rel: str) -> bool:
    from analysis.core.tables import (  # pyarrow: not on the CLI's way to --help
        PARQUET_DIR,
        RERUNS_DIR,
        SAMPLES,
    )

    samples_dirs = (f"{PARQUET_DIR}/{SAMPLES.path}", f"{PARQUET_DIR}/{RERUNS_DIR}/{SAMPLES.path}")
    return any(rel.startswith(d + "/part-") for d in samples_dirs)


def _check_target(into: Path) -> dict[str, str]:
    """The files collect wrote into ``into`` before ({relative path: sha256}); refuses a folder with files it
    did not write, or with files changed since."""
    if into.exists() and not into.is_dir():
        raise UsageError(f"into={into}: exists and is not a folder")
    if not into.exists():
        return {}
    manifest_path = into / MANIFEST
    present = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    present = [p for p in present if p != MANIFEST]
    if not manifest_path.is_file():
        if present:
            raise UsageError(f"into={into}: holds {len(present)} file(s) collect did not write (e.g. {present[0]}) "
                             f"and no {MANIFEST}; refusing to overwrite: choose an empty or new folder")
        return {}
    try:
        written = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"into={into}: unreadable {MANIFEST} ({err}); refusing to overwrite") from None
    foreign = [p for p in present if p not in written]
    if foreign:
        raise UsageError(f"into={into}: {foreign[0]} (and {len(foreign) - 1} more) not written by collect; "
                         "refusing to overwrite")
    changed = [p for p in present if _sha256(into / p) != written[p]]
    if changed:
        raise UsageError(f"into={into}: {changed[0]} changed since collect wrote it; refusing to overwrite")
    return written


def collect(study_dir: Path | str, into: Path | str, max_mb: float = DEFAULT_MAX_MB, samples: bool = True,
            echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Copies a study's tables into ``into``; returns ``{files, bytes, samples, removed}``."""
    study_dir, into = Path(study_dir), Path(into)
    if not StudyDir(study_dir).study_file.is_file() or not StudyDir(study_dir).parquet.is_dir():
        raise UsageError(f"study_dir={study_dir}: not a study directory (needs study.yaml and parquet/)")
    if max_mb <= 0:
        raise UsageError(f"max_mb={max_mb:g} is not allowed; allowed: a number > 0")
    if into.resolve() == study_dir.resolve() or study_dir.resolve() in into.resolve().parents:
        raise UsageError(f"into={into}: inside the study directory; choose a folder outside it")
    written = _check_target(into)
    files = _source_files(study_dir)
    sizes = {rel: (study_dir / rel).stat().st_size for rel in files if (study_dir / rel).exists()}
    total = sum(sizes.values())
    with_samples = samples and total <= max_mb * 1e6
    if not with_samples:
        files = [rel for rel in files if not _is_sample_part(rel)]
    into.mkdir(parents=True, exist_ok=True)
    copied: dict[str, str] = {}
    for rel in files:
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(study_dir / rel, target)
        except FileNotFoundError:  # a running study merged or replaced it since the listing
            continue
        copied[rel] = _sha256(target)
    removed = [rel for rel in written if rel not in copied]
    for rel in removed:
        (into / rel).unlink(missing_ok=True)
    for folder in sorted((p for p in into.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    manifest = {"study": study_dir.name, "samples": with_samples, "files": dict(sorted(copied.items()))}
    (into / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    size = sum((into / rel).stat().st_size for rel in copied)
    from analysis.frames import study_frames

    frames = study_frames(into)
    if with_samples:
        note = ""
    elif not samples:
        note = " (per-sample files left out, as asked)"
    else:
        note = f" (per-sample files left out: the whole is {total / 1e6:.1f} MB > {max_mb:g} MB)"
    echo(f"collected {study_dir} -> {into}: {len(copied)} files, {size / 1e6:.2f} MB, {len(frames.trials)} "
         f"trial(s), {len(frames.reruns)} rerun(s){note}")
    return {"files": len(copied), "bytes": size, "samples": with_samples, "removed": removed}


SEED_SUFFIX = "_s"


def seeded_study(template: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed of a per-seed part: its own split (``data.split_seed``) and training seed (``seed``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed={seed!r} is not allowed; allowed: an integer >= 0")
    out = dict(template)
    out["name"] = f"{template['name']}{SEED_SUFFIX}{seed}"
    out["seed"] = seed
    out["data"] = {**(template.get("data") or {}), "split_seed": seed}
    return out


def write_seeded_study(template_path: Path | str, seed: int, out_dir: Path | str) -> Path:
    """Writes ``seeded_study`` of the study file ``template_path`` into ``out_dir``; refuses to replace a file
    that says something else."""
    import yaml

    from search_spaces.study_file import StudyFileError, load_study, parse_study
    from search_spaces.yaml_file import read_study_yaml

    template_path = Path(template_path)
    try:
        load_study(template_path)
        data = seeded_study(read_study_yaml(template_path), seed)
        parse_study(data)
    except StudyFileError as err:
        raise UsageError(f"{template_path}: {err}") from None
    text = (f"# {template_path.as_posix()} with seed {seed} (smoothstudy reproduce seed); its comments say the "
            "protocol\n" + yaml.safe_dump(data, sort_keys=False))
    out = Path(out_dir) / f"{data['name']}.yaml"
    if out.exists() and out.read_text(encoding="utf-8") != text:
        raise UsageError(f"{out}: exists and says something else; refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def add_parser(sub) -> None:
    """The ``reproduce`` subcommand and its two actions."""
    rep = sub.add_parser("reproduce", help="a published table reproduced in parts: collect a part's tables, "
                         "render the protocol's document")
    acts = rep.add_subparsers(dest="action", required=True)
    col = acts.add_parser("collect", help="copy a (finished or running) study's tables into the repository")
    col.add_argument("study_dir", type=Path)
    col.add_argument("--into", type=Path, required=True, help="e.g. docs/reproductions/data/<part>")
    col.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB,
                     help="leave the per-sample files out when the whole exceeds this (default 20)")
    col.add_argument("--no-samples", action="store_true", help="leave the per-sample files out")
    sd = acts.add_parser("seed", help="write one seed of a per-seed part's study file (its own split and seed)")
    sd.add_argument("study_file", type=Path, help="the part's study file, e.g. docs/reproductions/parts/paper/…")
    sd.add_argument("--seed", type=int, required=True)
    sd.add_argument("--out", type=Path, default=Path("runs/seeded"), help="folder of the written file")
    doc = acts.add_parser("report", help="write the protocol's document from the committed tables")
    doc.add_argument("protocol", type=Path, help="e.g. docs/reproductions/lr_table1_fmnist.yaml")
    doc.add_argument("--out", type=Path, help="default: the protocol file with .md")


def cmd_reproduce(args) -> int:
    if args.action == "collect":
        collect(args.study_dir, args.into, max_mb=args.max_mb, samples=not args.no_samples)
        return 0
    if args.action == "seed":
        print(write_seeded_study(args.study_file, args.seed, args.out))
        return 0
    from analysis.reproduction.document import write_report
    from analysis.reproduction.protocol import load_protocol

    try:
        load_protocol(args.protocol)
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(f"report: {write_report(args.protocol, args.out)}")
    return 0
