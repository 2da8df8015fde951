"""Study file → Optuna define-by-run space: a categorical ``loss`` and, conditional on it, that method's
hyperparameters (``joint``), or one method's own hyperparameters (``per_method``), derived from what the loss
declares (adding a method never touches this module)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from analysis.core.registry import HParam
from search_spaces.ranges import parse_param_spec
from trainables.losses import get_loss_info


class StudySpec(Protocol):
    """What the space reads of a study file (``search_spaces.study_file.StudySpec``, which builds on this
    module to check its methods)."""

    methods: dict[str, dict[str, Any]]
    seed: int


@dataclass(frozen=True)
class ParamSearch:
    """One method hyperparameter as it will be searched: fixed, categorical, or a numeric range."""

    key: str  # "<loss>/<name>": Ray unflattens it to config[loss][name]
    hparam: HParam
    fixed: Any = None
    is_fixed: bool = False
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False


def method_params(spec: StudySpec) -> dict[str, list[ParamSearch]]:
    """For every method of the study, how each declared hyperparameter is searched.

    Unmentioned parameters are searched over their declared range when the method marks them searchable,
    else fixed at the paper default."""
    out: dict[str, list[ParamSearch]] = {}
    for loss, given in spec.methods.items():
        params = []
        for h in get_loss_info(loss).hparams:
            key = f"{loss}/{h.name}"
            if h.name in given:
                r = parse_param_spec(h, given[h.name], owner=loss)
                if r.value is not None:
                    params.append(ParamSearch(key, h, fixed=h.check(r.value, loss), is_fixed=True))
                elif r.grid is not None:
                    grid = h.grid if r.grid == "paper" else tuple(r.grid)
                    params.append(ParamSearch(key, h, choices=tuple(grid)))
                else:
                    params.append(ParamSearch(key, h, low=h.low if r.low is None else r.low,
                                              high=h.high if r.high is None else r.high,
                                              log=h.log if r.log is None else r.log))
            elif not h.search:
                params.append(ParamSearch(key, h, fixed=h.default, is_fixed=True))
            elif h.choices or h.kind == "bool":
                params.append(ParamSearch(key, h, choices=h.choices or (False, True)))
            else:
                params.append(ParamSearch(key, h, low=h.low, high=h.high, log=h.log))
        out[loss] = params
    return out


class DefineByRun:
    """The callable Optuna runs per trial (Ray's ``OptunaSearch(space=...)``); returns the fixed values.
    A class rather than a closure because Ray pickles the searcher into its experiment state."""

    def __init__(self, methods: dict[str, list[ParamSearch]], seed: int = 0, trial_seeds: str = "per_trial") -> None:
        self.methods = methods
        self.seed = seed
        self.trial_seeds = trial_seeds

    def __call__(self, trial: Any) -> dict[str, Any]:
        fixed: dict[str, Any] = {"seed": trial_seed(self.seed, trial.number, self.trial_seeds)}
        if len(self.methods) == 1:  # one method's own space (search.strategy: per_method)
            loss = fixed["loss"] = next(iter(self.methods))
        else:
            loss = trial.suggest_categorical("loss", list(self.methods))
        for p in self.methods[loss]:
            if p.is_fixed:
                fixed[p.key] = p.fixed
            elif p.choices:
                trial.suggest_categorical(p.key, list(p.choices))
            elif p.hparam.kind == "int":
                trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
            else:
                trial.suggest_float(p.key, p.low, p.high, log=p.log)
        return fixed


def trial_seed(study_seed: int, number: int, trial_seeds: str) -> int:
    """The training seed of search trial ``number``. ``per_trial``: the study seed + n, so a method sampled twice
    with the same hyperparameters (CE has none) gives a second seed of that configuration instead of a
    bit-identical copy; ``shared``: the study seed for every trial, so configurations differ only in their
    values (a grid compared on one seed)."""
    return study_seed if trial_seeds == "shared" else study_seed + number


def define_by_run(spec: StudySpec, method: str | None = None) -> DefineByRun:
    """The joint space (the sampler also picks ``loss``), or only ``method``'s own space."""
    params = method_params(spec)
    return DefineByRun(params if method is None else {method: params[method]}, spec.seed, spec.search.trial_seed)


def configurations(spec: StudySpec) -> dict[str, int | None]:
    """Per method, how many distinct configurations its space has (None: a continuous range)."""
    out: dict[str, int | None] = {}
    for loss, params in method_params(spec).items():
        free = [p for p in params if not p.is_fixed]
        out[loss] = None if any(not p.choices for p in free) else math.prod(len(p.choices) for p in free)
    return out


def method_examples(spec: StudySpec) -> list[dict[str, Any]]:
    """One sampled configuration per method (``{"loss": m, m: {name: value}}``, as the search returns it),
    each hyper-parameter at a value of its own kind: what the study's columns will look like before a trial
    has run (the Parquet schema written at the study's start)."""
    out = []
    for loss, params in method_params(spec).items():
        values: dict[str, Any] = {}
        for p in params:
            if p.is_fixed:
                values[p.hparam.name] = p.fixed
            elif p.choices:
                values[p.hparam.name] = p.choices[0]
            else:
                values[p.hparam.name] = int(p.low) if p.hparam.kind == "int" else float(p.low)
        out.append({"loss": loss, loss: values})
    return out
