"""The study's final runs (``final: {top, seeds, also_chosen_by}``): after the search, each method's ``top``
best configurations, chosen by the first objective on the validation split and again by each selection of
``also_chosen_by``, retrained with ``seeds`` new seeds that every method shares (``rerun_seeds``), as Ray tasks
on the study's cluster, recorded like reruns (Parquet ``parquet/reruns``, MLflow runs tagged ``kind=final``).
A configuration several selections choose is trained once. The leaderboard and its paired tests use the
first objective's.

Nothing here reads a test metric: the choice is ``best_trials`` on each selection's metric, which the study
file restricts to ``val/`` and ``train/`` metrics; the test set is evaluated once per run, after its last epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.core.tables import FINAL_KIND
from search_spaces.study_file import FinalSection, StudySpec


def final_settings(spec: StudySpec, top: int | None = None, seeds: int | None = None) -> FinalSection:
    """The study's ``final`` section (defaults when it has none), with command-line overrides."""
    base = spec.final or FinalSection()
    out = base.model_copy(update={k: v for k, v in (("top", top), ("seeds", seeds)) if v is not None})
    for name in ("top", "seeds"):
        if getattr(out, name) < 1:
            raise UsageError(f"{name}={getattr(out, name)} is not allowed; allowed: an integer >= 1")
    return out


def final_objectives(spec: StudySpec, final: FinalSection) -> list[tuple[str, str]]:
    """``(metric, mode)`` of every selection of the final runs: the first objective's, then the others."""
    first = spec.objectives[0]
    pairs = [(first.metric, first.mode), *((s.metric, s.mode) for s in final.also_chosen_by)]
    return list(dict.fromkeys(pairs))


def final_trials(trials: pd.DataFrame, objectives: list[tuple[str, str]], top: int) -> pd.DataFrame:
    """The search trials to retrain: each method's ``top`` best by each objective, each trial once."""
    from analysis.leaderboard import best_trials_by

    chosen = best_trials_by(trials, objectives, top)
    if chosen.empty:
        raise UsageError("no completed trial to rerun yet; see 'smoothstudy status'")
    return chosen


def run_final(study: StudyDir, spec: StudySpec, top: int | None = None, seeds: int | None = None,
              device: str | None = None, gpus: float | None = None, address: str | None = None,
              echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train the final runs not recorded yet; ``spec`` is the study as it ran (its smoke version for a smoke
    test). ``device`` defaults to the study's ``training.device``."""
    from study.rerun import rerun
    from study.state import read_results

    final = final_settings(spec, top, seeds)
    device = device or spec.training.device
    objectives = final_objectives(spec, final)
    chosen = final_trials(read_results(study, "trials"), objectives, final.top)
    by = " and by ".join(f"{metric} ({mode})" for metric, mode in objectives)
    on = " on training and validation splits together" if final.train_on == "train_val" else ""
    echo(f"final runs: the best {final.top} configuration(s) of each method by {by}, {len(chosen)} "
         f"configuration(s) in all, each trained once with {final.seeds} seeds{on}, the same seeds for every method")
    return rerun(study, top=final.top, seeds=final.seeds, device=device, parallel=True, address=address,
                 echo=echo, kind=FINAL_KIND, spec=spec, gpus=gpus, chosen=chosen, train_on=final.train_on)


def final_if_asked(study: StudyDir, spec: StudySpec, echo: Callable[[str], None] = print) -> None:
    """After ``run`` or ``resume``, in the same driver (on the search's Ray cluster): the final runs the study
    file asks for and has not recorded yet, once every trial of the search has ended: a search stopped part way
    (Ctrl-C, a lost driver) is continued by ``resume``, which then trains them."""
    from study.state import ended_trials, study_trials_asked, trial_states

    if spec.final is None:
        return
    ended, asked = ended_trials(trial_states(study)), study_trials_asked(study, spec)
    if ended < asked:
        echo(f"no final runs yet: {ended} of the search's {asked} trials have ended; "
             f"'smoothstudy resume {study.root}' continues the search, then trains them")
        return
    run_final(study, spec, echo=echo)
