"""`smoothstudy status`: trials by state, the best so far, and whether the study can be resumed.

It reads the study back from its own files and imports neither torch nor Ray (BENCHMARKS.md §17): the study
file is checked for shape only (its names were checked against the registries when it ran), the trials asked
for are study.json's record, Optuna is imported only to read the study's Optuna storage, and Ray only to ask
whether an unfinished study can be resumed."""

from __future__ import annotations

from analysis.core.layout import StudyDir
from search_spaces.study_file import StudySpec
from study.ray_storage import ray_experiment_path
from study.state import (
    check_sqlite_file,
    ended_trials,
    read_results,
    run_spec,
    study_trials_asked,
    trial_states,
)


def study_status(study: StudyDir, spec: StudySpec | None = None) -> dict:
    spec = spec or run_spec(study, registries=False)
    states = trial_states(study)
    first = spec.objectives[0]
    best = None
    if (study.parquet / "epochs").exists():
        epochs = read_results(study, "epochs")
        if first.metric in epochs and epochs[first.metric].notna().any():
            idx = epochs[first.metric].idxmax() if first.mode == "max" else epochs[first.metric].idxmin()
            row = epochs.loc[idx]
            best = {"trial_id": str(row["trial_id"]), "epoch": int(row["epoch"]),
                    first.metric: float(row[first.metric]), "loss": row.get("config/loss")}
    asked = study_trials_asked(study, spec)
    unfinished = ended_trials(states) < asked
    check_sqlite_file(study.optuna_db)
    return {
        "study": spec.name, "trials_asked": asked, "states": dict(states), "best": best,
        "resumable": unfinished and _can_restore(study), "finished": not unfinished,
        **_optuna_states(study, spec.name),
    }


def _can_restore(study: StudyDir) -> bool:
    """Whether Tune finds the study's experiment state (the one question of ``status`` that needs Ray)."""
    from ray import tune

    return bool(tune.Tuner.can_restore(ray_experiment_path(study, study.meta().get("ray_storage"))))


def _optuna_states(study: StudyDir, name: str) -> dict:
    """``optuna``: its trials by state; ``optuna_problem``: why there are none to show (None when it was read)."""
    url = study.optuna_storage
    if url == study.optuna_uri and not study.optuna_db.exists():
        started = study.meta_file.exists()  # before its start a study has no storage yet
        return {"optuna": {}, "optuna_problem": f"{study.optuna_db} is missing" if started else None}
    try:
        from study.optuna_store import optuna_trial_states

        return {"optuna": optuna_trial_states(url, name), "optuna_problem": None}
    except Exception as err:  # noqa: BLE001 - a database that is unreachable from here: status shows the rest
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        return {"optuna": {}, "optuna_problem": f"cannot read {url} ({first})"}


def study_answer_of(study: StudyDir, spec: StudySpec | None = None):
    """The study's answer from its Parquet files (None before any is written); no loss registry is imported,
    so every recorded hyperparameter of a chosen configuration is shown."""
    from analysis.core.tables import TRIALS_FILE

    if not (study.parquet / TRIALS_FILE).exists():
        return None
    from analysis.terminal_table import build_answer

    spec = spec or run_spec(study, registries=False)
    return build_answer(study.root, [(o.metric, o.mode) for o in spec.objectives])


def status_json(study: StudyDir) -> str:
    """``status --json``: the status and the answer (``analysis.terminal_table.answer_dict``) as JSON."""
    import json

    from analysis.terminal_table import answer_dict

    spec = run_spec(study, registries=False)
    s = study_status(study, spec)
    answer = study_answer_of(study, spec)
    s["answer"] = None if answer is None else answer_dict(answer)
    return json.dumps(s, indent=2, default=str, allow_nan=False)


def print_status(study: StudyDir, echo=print) -> None:
    from analysis.terminal_table import format_answer

    spec = run_spec(study, registries=False)
    s = study_status(study, spec)
    answer = study_answer_of(study, spec)
    if answer is not None:
        echo(format_answer(answer))
        echo("")
    echo(f"study {s['study']}: {s['trials_asked']} trials asked for")
    for state, count in sorted(s["states"].items()):
        echo(f"  {state:<10} {count}")
    if s["optuna"]:
        echo("optuna sees: " + ", ".join(f"{n} {state}" for state, n in sorted(s["optuna"].items())))
    elif s["optuna_problem"]:
        echo(f"optuna: {s['optuna_problem']}")
    if s["best"]:
        b = s["best"]
        metric = next(k for k in b if "/" in k)
        echo(f"best epoch so far (any trial, any epoch; the tables use each trial's last): {b['trial_id']} "
             f"({b['loss']}) {metric}={b[metric]:.4f} at epoch {b['epoch']}")
    if s["finished"]:
        echo("finished: every trial has ended")
    else:
        echo("can be resumed: smoothstudy resume " + str(study.root) if s["resumable"]
             else "not resumable: no Ray experiment state found")


def watch_status(study: StudyDir, interval_s: float = 5.0, echo_final=print, **kw) -> None:
    """``smoothstudy status --watch``: the progress line of a study running elsewhere (read from its Parquet
    files every ``interval_s``) until every trial has ended; then the full status."""
    import pandas as pd

    from analysis.results import read_epochs, read_trials
    from study.progress import progress_from_files, watch

    spec = run_spec(study, registries=False)
    first = spec.objectives[0]

    def read():
        if not study.parquet.is_dir():  # the driver has not written anything yet
            return progress_from_files(pd.DataFrame(), pd.DataFrame(), spec.search.num_samples, first.metric,
                                       first.mode)
        return progress_from_files(read_trials(study.root), read_epochs(study.root), spec.search.num_samples,
                                   first.metric, first.mode)

    watch(read, study.meta().get("started"), interval_s, **kw)
    print_status(study, echo=echo_final)
