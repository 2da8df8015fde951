"""The reproduction's Markdown document, computed from the protocol file and the committed tables alone; only
the protocol file's text and the paper's numbers come from elsewhere. A part without data, or without tested
runs for a row, shows "not run yet": no number is filled in.

Rules (also written into the document): a row's numbers are its tested runs (``analysis.reproduction.parts``)
over seeds; each is compared with the paper's by Welch's test from the two summaries
(``analysis.reproduction.verdicts``); a ranking claim is checked on our means once every row it names has runs,
with the test of the winner against the runner-up; each number that differs is listed with its row's cited cause,
else the paper's rounding where that alone allows p ≥ 0.05, else as unexplained.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.reproduction.machine import part_machine
from analysis.reproduction.panels import aurc_panel, differences_section, noise_section
from analysis.reproduction.parts import Part, load_part, part_seconds, part_status, part_throughput
from analysis.reproduction.protocol import NOT_RUN, Protocol, choice, chosen_in, load_protocol
from analysis.reproduction.verdicts import (
    ALPHA,
    CONSISTENT,
    DIFFERS,
    NO_VALUES,
    ONE_SEED,
    RowResult,
    claim_result,
    fmt_test,
    precision_cause,
    row_result,
    verdict,
)

UNEXPLAINED = "**unexplained** (no measured or cited cause)"


def fmt_paper(value: tuple[float, float]) -> str:
    mean, spread = value
    return f"{mean:.3f}" if math.isnan(spread) else f"{mean:.3f} ± {spread:.3f}"


def fmt_ours(sample) -> str:
    if sample is None:
        return NOT_RUN
    if sample.n == 0:
        return NO_VALUES
    if sample.n < 2:
        return f"{sample.mean:.4f} (n = 1)"
    return f"{sample.mean:.4f} ± {sample.sd:.4f} (n = {sample.n})"


def fmt_seconds(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.2f} h"


def deviations(protocol: Protocol, preset: str) -> list[str]:
    """The ``Deviations from the paper…`` comment block of a preset file, and the lines after it up to the
    first line that is not a comment (the precision note)."""
    path = protocol.repo_root / preset
    if not path.is_file():
        return [f"(preset {preset} not found)"]
    lines, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            if inside:
                break
            continue
        text = line[1:].strip() if line[1:2] == " " and not line[2:3] == " " else line[1:]
        if line.startswith("# Deviations from the paper"):
            inside = True
            continue
        if inside:
            lines.append(text.rstrip())
    out: list[str] = []
    for line in lines:  # an item starts with "- " or "Word:"; other lines continue the item above
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("- "):
            out.append(stripped)
        elif re.match(r"^[A-Z][\w ]*:", stripped) or not out:
            out.append(f"- {stripped}")
        else:
            out[-1] += " " + stripped
    return out


def _flat(spec: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(spec, dict):
        return {prefix.rstrip("."): spec}
    out: dict[str, Any] = {}
    for key, value in spec.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def part_blocks(protocol: Protocol, part: str) -> list[str]:
    """The blocks whose objectives choose the configurations of the part's rows, in the blocks' order."""
    used = {chosen_in(protocol, row) for row in protocol.spec["rows"] if row["part"] == part}
    return [name for name in protocol.spec["blocks"] if name in used]


def home_block(protocol: Protocol, part: Part) -> str:
    """The block of the part's first objective (the block whose preset the part's study restricts), else the
    first block."""
    blocks = protocol.spec["blocks"]
    first = next((s.selections[:1] for s in part.collected), [])
    return next((name for name in blocks if [choice(protocol, name)] == first), next(iter(blocks)))


PER_SEED_KEYS = ("seed", "data.split_seed")  # what a per-seed part's studies set from their seed


def _shown(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


def differs_from_preset(protocol: Protocol, part: Part) -> str:
    """The settings (``section.key``) in which the part's study file, as run, differs from its home block's
    preset (``name`` aside, and a per-seed part's seeds)."""
    if not part.study:
        return "–"
    if not part_blocks(protocol, part.name):
        return "– (a reference of the attribution, no row of this table)"
    path = protocol.repo_root / protocol.spec["blocks"][home_block(protocol, part)]["preset"]
    if not path.is_file():
        return "(preset not found)"
    preset = _flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    mine = _flat(part.study)
    skip = {"name", *(PER_SEED_KEYS if part.per_seed else ())}
    keys = sorted(k for k in set(preset) | set(mine) if k not in skip and preset.get(k) != mine.get(k))
    sections = list(dict.fromkeys(k.split(".")[0] if k.startswith("methods.") else k for k in keys))
    shown = []
    for key in sections:
        if key == "methods":
            shown.append(f"methods: {', '.join(part.study.get('methods') or {})}")
        else:
            shown.append(f"{key}: {_shown(mine.get(key, '–'))}")
    return "; ".join(shown) or "none"


def table_results(protocol: Protocol) -> tuple[dict[str, Part], dict[str, RowResult]]:
    parts = {name: load_part(protocol, name) for name in protocol.spec["parts"]}
    return parts, {row["label"]: row_result(protocol, parts, row) for row in protocol.spec["rows"]}


def render(protocol_path: Path | str) -> str:
    """The reproduction's Markdown document, computed from the protocol file and the committed tables."""
    protocol = load_protocol(protocol_path)
    spec = protocol.spec
    parts, results = table_results(protocol)
    variant = None
    if spec.get("compare_with"):
        other = load_protocol(protocol.path.parent / spec["compare_with"])
        variant = (other, table_results(other)[1])
    n_paper = protocol.paper_seeds
    rel_proto = protocol.rel(protocol.path)
    lines = [f"# {spec['title']}", "",
             f"<!-- Generated by `smoothstudy reproduce report {rel_proto}` from the tables under "
             f"`{protocol.rel(protocol.data_dir)}/`; do not edit by hand. -->", "",
             f"The paper: {spec['paper']['cite'].strip()}. Its numbers below are copied from its Table 1 "
             f"(`{rel_proto}`, `rows: paper:`); {spec['paper'].get('spread', '').strip()}. Every other "
             f"number is computed from the committed tables.", ""]
    if spec.get("about"):
        lines += [spec["about"].strip(), ""]

    lines += ["## Protocol", ""]
    lines += [spec.get("protocol_text", "The paper chooses each method's parameter on a validation split, once "
                                        "for accuracy and once for ECE; each choice is a block of the table, with "
                                        "the preset that states the protocol:").strip(), ""]
    for name, block in spec["blocks"].items():
        lines.append(f"- **{name}** ({block.get('title', '')}): `{block['preset']}`, objective "
                     f"`{block['objective']}` ({block['mode']})")
    lines += ["", "The protocol runs in parts: a part is one study (its grid, each value trained once, then the "
              "configuration each of its blocks' objectives chooses retrained with seeds shared by every part), or "
              "one study per seed (each seed's own resampled split, its grid, its choice and the chosen "
              "configuration's final run). A row's numbers are the tested runs of the configuration its block's "
              "objective chooses, chosen again here from each study's trials table (ties: the first value in grid "
              "order).", "",
              "| part | blocks | study file | differs from its first objective's preset in | data | state |",
              "|---|---|---|---|---|---|"]
    for name, part in parts.items():
        study = spec["parts"][name]["study"]
        exists = (protocol.repo_root / study).is_file()
        data = f"`{protocol.rel(part.dir)}/`" if part.present else "–"
        lines.append(f"| {name} | {', '.join(part_blocks(protocol, name)) or '–'} | "
                     f"`{study}`{'' if exists else ' (not written yet)'} | "
                     f"{differs_from_preset(protocol, part)} | {data} | {part_status(part)} |")
    lines += [""]

    lines += ["## Deviations from the paper", ""]
    presets = list(dict.fromkeys(b["preset"] for b in spec["blocks"].values()))
    lines += [f"From the preset's comments (`{presets[0]}`):" if len(presets) == 1 else
              f"From the presets' comments (`{'`, `'.join(presets)}`; the same list in each):", ""]
    lines += deviations(protocol, presets[0])
    seeds = sorted({len(r.seeds) for r in results.values() if r.ran})
    lines += [f"- seeds here: {' or '.join(map(str, seeds)) + ' per row' if seeds else 'no tested runs yet'} "
              f"(the paper: {n_paper}).", ""]

    lines += ["## Table 1, Fashion-MNIST: the paper's numbers and ours", "",
              "Ours: mean ± standard deviation over seeds (n). The paper's: mean ± its printed spread, taken as the "
              f"standard deviation over its {n_paper} seeds. A number of ours is **consistent** with the paper's "
              f"when Welch's two-sample t-test from the two summaries gives p ≥ {ALPHA} and **differs** otherwise; "
              "the difference is also given in the paper's standard deviations. With one seed of ours there is no "
              "test.", ""]
    for name, block in spec["blocks"].items():
        lines += [f"### {block.get('title', name)}", "",
                  "| row | paper acc | ours acc | acc | paper ECE | ours ECE | ECE | chosen | seeds | run time |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in spec["rows"]:
            r = results[row["label"]]
            if r.block != name:
                continue
            metric = row.get("ece_metric", "test/ece")
            ece_label = "" if metric == "test/ece" else f" (`{metric}`)"
            lines.append(
                f"| {r.label} | {fmt_paper(r.paper['acc'])} | {fmt_ours(r.acc)} | "
                f"{fmt_test(r.acc, r.paper['acc'], n_paper)} | {fmt_paper(r.paper['ece'])} | "
                f"{fmt_ours(r.ece)}{ece_label} | {fmt_test(r.ece, r.paper['ece'], n_paper)} | {r.params or '–'} | "
                f"{', '.join(map(str, r.seeds)) or '–'} | {fmt_seconds(r.seconds)} |")
        notes = [f"- {row['label']}: {row['note'].strip()}" for row in spec["rows"]
                 if row.get("note") and results[row["label"]].block == name]
        lines += [""] + (notes + [""] if notes else [])

    lines += ["## Which claims hold here", ""]
    cells = [(r.label, m, verdict(getattr(r, m), r.paper[m], n_paper)) for r in results.values()
             for m in ("acc", "ece")]
    counts = pd.Series([v for _, _, v in cells]).value_counts().to_dict()
    shown = (CONSISTENT, DIFFERS, ONE_SEED, NOT_RUN)
    lines += ["Numbers of the table: " + ", ".join(f"{k}: {counts.get(k, 0)}" for k in shown)
              + "".join(f", {k}: {v}" for k, v in counts.items() if k not in shown) + f" (of {len(cells)}).", ""]
    lines += differing_numbers(spec["rows"], cells, results, n_paper, protocol.paper_decimals)
    if spec.get("claims"):
        lines += ["The paper's statements, checked on our means (with Welch's test of the best against the "
                  "runner-up over seeds):", ""]
        for claim in spec["claims"]:
            lines.append(f"- {claim['text']}: {claim_result(claim, results)}")
        lines += [""]

    lines += noise_section(protocol, parts)
    if variant is not None or spec.get("attribution") or spec.get("differences"):
        lines += differences_section(protocol, results, variant, parts)
    lines += aurc_panel(protocol, parts)

    lines += ["## Wall time and machine", "",
              "Summed run times from the tables' `started_at`/`ended_at` (a running trial: up to its last epoch "
              "row), a run never counted shorter than its epochs' own `time/train_s` + `time/eval_s`; runs in "
              "parallel overlap, so these are compute times, not spans. Throughput: median of the epochs' "
              "`time/images_per_s`.", "",
              "| part | search | final runs | images/s | machine |", "|---|---|---|---|---|"]
    for name, part in parts.items():
        if not part.present:
            lines.append(f"| {name} | {NOT_RUN} | | | |")
            continue
        search, final = part_seconds(part)
        speed = part_throughput(part)
        lines.append(f"| {name} | {fmt_seconds(search)} | {fmt_seconds(final)} | "
                     f"{'–' if math.isnan(speed) else f'{speed:.0f}'} | {part_machine(part.collected)} |")
    lines += ["", "## Rebuilding this document", "",
              "Each part is a study (`smoothstudy run <study file>`, with its final runs), or one study per seed "
              "(`smoothstudy reproduce seed <study file> --seed k` writes seed k's study file); its tables are "
              "copied into the repository, finished or not, and the document is written from them alone:", "",
              "```",
              f"smoothstudy reproduce collect runs/<study> --into {protocol.rel(protocol.data_dir)}/<part>"
              "[/s<seed>]",
              f"smoothstudy reproduce report {rel_proto}",
              "```", "",
              "A test (`tests/analysis/test_reproduction.py`) rebuilds the document from the committed tables and "
              "fails when it differs from this file.", ""]
    return "\n".join(lines)


def differing_numbers(rows: list[dict[str, Any]], cells: list[tuple[str, str, str]],
                      results: dict[str, RowResult], n_paper: int, decimals: int | None) -> list[str]:
    """Each number that differs from the paper, grouped under the cause its row cites (``causes: {acc|ece: ...}``),
    else the paper's rounding when that is enough to explain it (``paper.decimals``); a number with neither is
    marked unexplained."""
    causes = {row["label"]: row.get("causes", {}) for row in rows}
    grouped: dict[str, list[str]] = {}
    for label, m, v in cells:
        if v == DIFFERS:
            r = results[label]
            cause = ((causes[label].get(m) or "").strip()
                     or precision_cause(getattr(r, m), r.paper[m], n_paper, decimals) or UNEXPLAINED)
            grouped.setdefault(cause, []).append(f"{label} {'accuracy' if m == 'acc' else 'ECE'}")
    if not grouped:
        return []
    lines = ["Each number that differs from the paper, and why:", ""]
    lines += [f"- {'; '.join(numbers)}: {cause}" for cause, numbers in grouped.items()]
    return lines + [""]


def write_report(protocol_path: Path | str, out: Path | str | None = None) -> Path:
    """Writes the document next to the protocol file (``<name>.md``) unless ``out`` names another path."""
    protocol_path = Path(protocol_path)
    target = Path(out) if out else protocol_path.with_suffix(".md")
    text = render(protocol_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
