"""One report across several studies (e.g. the same methods on two datasets): a table per study, the
average rank of each method, then every study's own sections."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.catalogue import metric_mode
from analysis.document import Block, Heading, Paragraph, Table
from analysis.formatting import fmt_interval, fmt_value
from analysis.study_report import (
    IMG_DIR,
    ReportFiles,
    ReportInputs,
    StudyReport,
    build_study_report,
    reading_guide,
    write_files,
)

CROSS_METRICS = ("test/acc", "test/ece", "test/aurc")  # the cross-study table's columns


def write_comparison(inputs: list[ReportInputs], out_dir: Path | str) -> ReportFiles:
    """One document comparing several studies (e.g. one per dataset): a table of each method's key metrics
    per study, the average rank of each method per metric across studies, then every study's own sections."""
    if len(inputs) < 1:
        raise ValueError("inputs is empty; expected at least one study")
    out = Path(out_dir)
    img = out / IMG_DIR
    img.mkdir(parents=True, exist_ok=True)
    reports = [build_study_report(inp, img, prefix=f"{i}_") for i, inp in enumerate(inputs)]
    names = [r.name for r in reports]
    title = f"Comparison of studies: {', '.join(names)}"
    methods = sorted({m.method for r in reports for m in r.board.methods})
    header = ["method"] + [f"{n}: {k.removeprefix('test/')}" for n in names for k in CROSS_METRICS]
    rows = [[meth] + [fmt_interval(r.board.interval(meth, k)) for r in reports for k in CROSS_METRICS]
            for meth in methods]
    ranks = cross_study_ranks(reports, CROSS_METRICS)
    rank_rows = [[meth] + [fmt_value(ranks.get((meth, k), math.nan)) for k in CROSS_METRICS] for meth in methods]
    blocks: list[Block] = [
        Heading(title, 1),
        Paragraph("Per study, each method's best configuration (mean ± 95% CI over rerun seeds where there are "
                  "reruns). The rank table averages each method's rank (1 = best) over the studies that ran it."),
        Table(header, rows),
        Heading("Average rank across studies", 2),
        Table(["method", *(k.removeprefix("test/") for k in CROSS_METRICS)], rank_rows),
    ]
    images: list[Path] = []
    for r in reports:
        blocks += [Heading(f"Study {r.name}", 2), *[_demote(b) for b in r.blocks]]
        images += r.images
    blocks += reading_guide()
    return write_files(blocks, title, out, images)


def cross_study_ranks(reports: list[StudyReport], keys: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """Mean rank (1 = best, ties share the mean rank) of each method per metric over the studies."""
    collected: dict[tuple[str, str], list[float]] = {}
    for r in reports:
        for key in keys:
            means = pd.Series({m.method: r.board.interval(m.method, key).mean for m in r.board.methods},
                              dtype=float).dropna()
            if means.empty:
                continue
            ranks = means.rank(ascending=(metric_mode(key) == "min"), method="average")
            for meth, rank in ranks.items():
                collected.setdefault((meth, key), []).append(float(rank))
    return {k: float(np.mean(v)) for k, v in collected.items()}


def _demote(b: Block) -> Block:
    return Heading(b.text, min(b.level + 1, 6)) if isinstance(b, Heading) else b
