"""The report's "Search (Optuna)" section: Optuna's standard views of the search, per method."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.document import Block, Heading, Image, Paragraph
from analysis.plots import optuna_plots as op


def optuna_blocks(trials: Sequence[Any], objective: str, mode: str, rungs: Sequence[int], img_dir: Path,
                  prefix: str = "") -> tuple[list[Block], list[Path]]:
    """Blocks and image paths of the section (nothing when the study has no Optuna trials)."""
    if not trials:
        return [], []
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    blocks: list[Block] = [
        Heading("Search (Optuna)", 2),
        Paragraph(f"{len(trials)} Optuna trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                  + ". PRUNED: stopped by ASHA; each Optuna trial holds its Ray trial id and MLflow run id as "
                  "user attributes (`optuna-dashboard` shows them)."),
    ]
    images: list[Path] = []

    def add(path: Path | None, caption: str) -> None:
        if path is not None:
            images.append(path)
            blocks.append(Image(path, caption))

    add(op.plot_optimization_history(trials, objective, mode, img_dir / f"{prefix}optuna_history.png"),
        f"Optimisation history: `{objective}` of each completed trial and the best so far.")
    add(op.plot_intermediate_values(trials, objective, rungs, img_dir / f"{prefix}optuna_intermediate.png"),
        "Intermediate values reported to Optuna per epoch; ✕ where ASHA stopped a trial.")
    add(op.plot_slices(trials, objective, img_dir / f"{prefix}optuna_slice.png"),
        "Slice: each method's objective over its own hyper-parameters.")
    add(op.plot_contours(trials, objective, img_dir / f"{prefix}optuna_contour.png"),
        "Contour: pairs of a method's hyper-parameters.")
    importances = op.method_importances(trials)
    add(op.plot_importances(importances, img_dir / f"{prefix}optuna_importance.png"),
        "Hyper-parameter importance (fANOVA) within each method, on its completed trials.")
    if not importances:
        blocks.append(Paragraph("Importance needs three completed trials of a method with hyper-parameters; "
                                "none has them yet."))
    return blocks, images
