"""The Tune side of a study's search: its searcher (Optuna, told the truth by ``study.optuna_bridge``), its
scheduler (ASHA on the first objective) and when a trial saves a checkpoint. How they are put together is the
study's search strategy's decision (``search_spaces.strategies``); this module hands it the Ray classes."""

from __future__ import annotations

from functools import partial

from analysis.core.layout import StudyDir
from search_spaces.space import define_by_run
from search_spaces.strategies import strategy_of
from search_spaces.study_file import StudySpec


def build_searcher(spec: StudySpec, study: StudyDir):
    """The strategy's searcher(s), each an Optuna study in ``study``'s storage, behind Tune's concurrency
    limit; ``n_startup_trials`` random trials of each space before TPE models it."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from search_spaces.samplers import make_sampler
    from study.optuna_bridge import TruthfulOptunaSearch
    from study.per_method import PerMethodSearch
    from study.quiet import quiet_optuna
    from study.sqlite_cache import make_parent_folder

    quiet_optuna()
    seed = spec.search.seed if spec.search.seed is not None else spec.seed
    objectives = spec.objectives
    multi = len(objectives) > 1
    metric = [o.metric for o in objectives] if multi else objectives[0].metric
    mode = [o.mode for o in objectives] if multi else objectives[0].mode
    make_parent_folder(study.optuna_storage)

    def one(name: str, method: str | None) -> TruthfulOptunaSearch:
        return TruthfulOptunaSearch(
            epochs=spec.training.epochs, space=define_by_run(spec, method), metric=metric, mode=mode,
            sampler=make_sampler(spec.search.sampler, seed, spec.search.n_startup_trials), study_name=name,
            storage=optuna.storages.RDBStorage(study.optuna_storage),
        )

    per_method = partial(PerMethodSearch, metric=metric, mode=mode, seed=spec.seed, trial_seeds=spec.search.trial_seed)
    return ConcurrencyLimiter(strategy_of(spec).searcher(spec, one, per_method),
                              max_concurrent=spec.search.max_concurrent)


def build_scheduler(spec: StudySpec):
    """ASHA on the first objective, over the trials the strategy compares (its own method's, or every one)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from study.per_method import PerMethodASHA

    if not spec.asha.enabled:
        return FIFOScheduler()
    first = spec.objectives[0]
    make = partial(ASHAScheduler, time_attr="epoch", metric=first.metric, mode=first.mode,
                   max_t=spec.asha.max_t or spec.training.epochs, grace_period=spec.asha.grace_period,
                   reduction_factor=spec.asha.reduction_factor)
    return strategy_of(spec).scheduler(make, PerMethodASHA)


def checkpoint_policy(spec: StudySpec):
    """The study's ``checkpoint`` settings, and a checkpoint at every epoch where ASHA may stop a trial."""
    from trainables.tune_reporting import CheckpointPolicy

    return CheckpointPolicy(every_epochs=spec.checkpoint.every_epochs, every_s=spec.checkpoint.every_s,
                            decision_epochs=frozenset(strategy_of(spec).rungs(spec)))
