"""``smoothstudy export``: a study's chosen configurations as a study file of their own, so that ``smoothstudy run``
trains them again (locally, or wherever it is pointed): each chosen method with its hyperparameters fixed to
the chosen trial's (exact values), one search trial each (nothing left to search, ASHA off), then the final runs
with the study's number of seeds. Everything else (data, model, training, evaluation, objectives) is the study's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.core.tables import HPARAM_PREFIX, METHOD
from analysis.formatting import hparams_text

DEFAULT_SEEDS = 3


def exported_study(study: StudyDir, methods: list[str] | None = None, seeds: int | None = None,
                   name: str | None = None) -> dict[str, Any]:
    """The study file (as a dict) of ``methods``' chosen configurations (default: every method with a completed
    trial), chosen as the answer chooses them: each method's completed trial with the best first objective."""
    import pandas as pd

    from analysis.leaderboard import best_trials
    from search_spaces.study_file import parse_study
    from study.state import load_study_of, read_results

    spec = load_study_of(study)
    first = spec.objectives[0]
    chosen = best_trials(read_results(study, "trials"), first.metric, first.mode)
    if chosen.empty:
        raise UsageError("no completed trial to export yet; see 'smoothstudy status'")
    by_method = {str(row[METHOD]): row for _, row in chosen.iterrows()}
    wanted = methods or list(by_method)
    unknown = [m for m in wanted if m not in by_method]
    if unknown:
        raise UsageError(f"method={','.join(unknown)}: no completed trial of it in this study; allowed: "
                         + ", ".join(by_method))
    file = spec.model_dump(mode="json", exclude_none=True)
    fixed = {m: {k.removeprefix(HPARAM_PREFIX): _plain(v) for k, v in by_method[m].items()
                 if k.startswith(HPARAM_PREFIX) and pd.notna(v)} for m in wanted}
    base = spec.final.seeds if spec.final is not None else DEFAULT_SEEDS
    file.update(
        name=name or f"{spec.name}-chosen",
        description=f"The chosen configuration of {', '.join(wanted)} in study {spec.name} (smoothstudy export): "
                    + "; ".join(f"{m} {hparams_text(fixed[m])}" for m in wanted),
        methods=fixed,
        search={**file.get("search", {}), "num_samples": len(wanted), "strategy": "per_method",
                "max_concurrent": min(len(wanted), file.get("search", {}).get("max_concurrent", 1))},
        asha={**file.get("asha", {}), "enabled": False},  # one trial per method: nothing to stop
        final={"top": 1, "seeds": seeds or base},
    )
    parse_study(file)  # what run would refuse is refused here
    return file


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def export_study(study: StudyDir, out: Path, methods: list[str] | None = None, seeds: int | None = None,
                 echo=print) -> Path:
    """Writes the exported study file to ``out`` (refusing to replace a file) and says how to train it."""
    out = out.expanduser()
    if out.exists():
        raise UsageError(f"out={out}: exists; give a new file name")
    file = exported_study(study, methods, seeds)
    out.write_text(yaml.safe_dump(file, sort_keys=False))
    echo(f"wrote {out}: {file['description']}; train it with: smoothstudy run {out}")
    return out
