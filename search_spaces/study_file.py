"""The study file: a YAML document validated before anything starts.

Every error is one line that names the field and the allowed values (``StudyFileError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from analysis.core.catalogue import TRAIN_ON_VALUES
from search_spaces.ranges import Range, Strict, bounded, parse_param_spec
from search_spaces.samplers import SAMPLERS, sampler_info
from search_spaces.strategies import STRATEGIES, strategy_of
from search_spaces.yaml_file import read_study_yaml
from trainables.config import (
    INITS,
    MAX_EPOCHS,
    NORMALIZATIONS,
    OPTIMIZERS,
    RESAMPLING,
    SCHEDULES,
    TrialConfig,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Search trial n trains with seed + n, so trial seeds stay below seed + MAX_NUM_SAMPLES (plus a few re-asks
# after a resume); reruns start far above that (study/rerun.py).
MAX_NUM_SAMPLES = 100_000
# the training seed of search trial n: the study seed + n, or the study seed for every trial (values compared on
# the same seed, so a grid's differences are the values', not the seeds')
TRIAL_SEEDS = ("per_trial", "shared")
MAX_FINAL = 1000  # final.top and final.seeds, and rerun's --top and --seeds: more is a typo, not a plan
# A validation context of the checks that need no registry (datasets, models, losses, metrics: they import
# torch): a bad study file is refused by these within a second, before anything heavy is imported.
SHAPE_ONLY = "shape_only"
SELECTION_HINT = "{metric: <a val/ or train/ metric>, mode: max | min}, e.g. {metric: val/ece, mode: min}"


class StudyFileError(ValueError):
    """A study file that cannot be used; the message is one line naming the field."""


def _registries(info: ValidationInfo) -> bool:
    """Whether this validation checks names against the registries (not a ``SHAPE_ONLY`` one)."""
    return not (info.context or {}).get(SHAPE_ONLY)


class DataSection(Strict):
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    download: bool = False
    subset: int | None = Field(None, gt=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    split_seed: int = 0
    augment: bool = False
    normalize: Literal[NORMALIZATIONS] = "global"  # type: ignore[valid-type]
    resample: Literal[RESAMPLING] = "none"  # type: ignore[valid-type]

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str, info: ValidationInfo) -> str:
        if not _registries(info):
            return v
        from trainables.data import list_datasets

        if v not in list_datasets():
            raise ValueError(f"unknown dataset {bounded(v)}; allowed: {', '.join(list_datasets())}")
        return v

    @model_validator(mode="after")
    def _directory_used(self, info: ValidationInfo) -> DataSection:
        if not (self.data_dir or self.subset) or not _registries(info):
            return self
        from trainables.data import get_dataset_info

        dataset = get_dataset_info(self.dataset)
        size = dataset.train_size
        if self.subset and size and self.subset > size:
            raise ValueError(f"subset={self.subset}: more than the {size} training images of {self.dataset}; "
                             f"allowed: an integer in [2, {size}]")
        if self.data_dir and not dataset.reads_directory:
            raise ValueError(f"data_dir={bounded(self.data_dir)}: {self.dataset} ships with its Python package and "
                             "reads no directory; allowed: no data_dir for it")
        return self


class TrainingSection(Strict):
    optimizer: Literal[OPTIMIZERS] = "sgd"  # type: ignore[valid-type]
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal[SCHEDULES] = "cosine"  # type: ignore[valid-type]
    step_size: int = Field(30, gt=0)
    step_gamma: float = Field(0.1, gt=0, le=1)
    milestones: list[int] = []
    lr_decay: float = Field(0.0, ge=0)
    init: Literal[INITS] = "default"  # type: ignore[valid-type]
    epochs: int = Field(10, gt=0, le=MAX_EPOCHS)
    batch_size: int = Field(64, gt=0)
    eval_batch_size: int = Field(2048, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    amp_cpu: bool = False
    compile: bool = False
    seeds_per_trial: int = Field(1, gt=0, le=MAX_FINAL)  # >1: several seeds of a configuration in one trial (short trials)


class EvaluationSection(Strict):
    representation: bool = True
    probe: bool = True
    probe_max_train: int = Field(5000, gt=0)
    transfer_dataset: str | None = None
    shift_severity: int = Field(0, ge=0, le=5)


class SearchSection(Strict):
    num_samples: int = Field(8, gt=0, le=MAX_NUM_SAMPLES)
    max_concurrent: int = Field(2, gt=0, le=MAX_NUM_SAMPLES)
    sampler: Literal[tuple(SAMPLERS)] = "tpe"  # type: ignore[valid-type]
    strategy: Literal[tuple(STRATEGIES)] = "per_method"  # type: ignore[valid-type]
    seed: int | None = None
    trial_seed: Literal[TRIAL_SEEDS] = "per_trial"  # type: ignore[valid-type]
    n_startup_trials: int = Field(4, ge=0, le=MAX_NUM_SAMPLES)


class AshaSection(Strict):
    enabled: bool = True
    grace_period: int = Field(1, gt=0)
    reduction_factor: float = Field(2, gt=1)
    max_t: int | None = Field(None, gt=0)


class CheckpointSection(Strict):
    """When a trial saves its state, besides at its end and wherever ASHA may stop it: every ``every_epochs``
    epochs and/or every ``every_s`` seconds (whichever comes first; null turns one off). A worker or driver
    that dies redoes at most that much of a trial."""

    every_epochs: int | None = Field(None, gt=0)
    every_s: float | None = Field(60.0, gt=0)


class Objective(Strict):
    metric: str = "val/acc"
    mode: Literal["max", "min"] = "max"

    @field_validator("metric")
    @classmethod
    def _namespaced(cls, v: str, info: ValidationInfo) -> str:
        if not _registries(info):
            return v
        from analysis.metrics.epoch_keys import epoch_metric_keys

        if v not in epoch_metric_keys():
            raise ValueError(f"objective metric {bounded(v)} is not one a trial reports every epoch; "
                             f"allowed: {', '.join(epoch_metric_keys())}")
        return v


class Selection(Objective):
    """A further choice of the final runs' configurations: no defaults, since a forgotten ``mode`` would
    silently pick the worst."""

    metric: str
    mode: Literal["max", "min"]

    @model_validator(mode="before")
    @classmethod
    def _both_given(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"not a mapping; allowed: {SELECTION_HINT}")
        missing = [k for k in ("metric", "mode") if k not in v]
        if missing:
            raise ValueError(f"{' and '.join(missing)} missing; allowed: {SELECTION_HINT}")
        return v


class FinalSection(Strict):
    """After the search: each method's ``top`` best configurations (by the first objective on validation, and
    by each of ``also_chosen_by``) retrained with ``seeds`` new seeds, the same seeds for every method."""

    top: int = Field(1, ge=1, le=MAX_FINAL)
    seeds: int = Field(3, ge=1, le=MAX_FINAL)
    also_chosen_by: list[Selection] = []
    # train: on the training split, as the search trials; train_val: on training and validation splits together
    train_on: Literal[TRAIN_ON_VALUES] = "train"  # type: ignore[valid-type]

    @field_validator("also_chosen_by", mode="before")
    @classmethod
    def _a_list(cls, v: Any) -> Any:
        if not isinstance(v, list):
            raise ValueError(f"not a list; allowed: a list of {SELECTION_HINT}")
        return v


class Resources(Strict):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)


class StudySpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    seed: int = 0
    data: DataSection = DataSection()
    model: str = "mlp"
    training: TrainingSection = TrainingSection()
    evaluation: EvaluationSection = EvaluationSection()
    methods: dict[str, dict[str, Any]] = Field(min_length=1)
    search: SearchSection = SearchSection()
    asha: AshaSection = AshaSection()
    final: FinalSection | None = None
    objective: Objective | list[Objective] = Objective()
    resources: Resources = Resources()
    max_failures: int = Field(2, ge=0, le=MAX_FINAL)
    checkpoint: CheckpointSection = CheckpointSection()

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str, info: ValidationInfo) -> str:
        if not _registries(info):
            return v
        from trainables.models import get_model_info

        get_model_info(v)  # raises "unknown model 'x'; known: …"
        return v

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: dict[str, dict[str, Any]], info: ValidationInfo) -> dict[str, dict[str, Any]]:
        if not _registries(info):
            for name, params in v.items():
                for pname, spec in (params or {}).items():
                    Range.of(spec, f"methods.{name}.{pname}")
            return {k: dict(p or {}) for k, p in v.items()}
        from trainables.losses import get_loss_info, list_losses

        for name, params in v.items():
            if name not in list_losses():
                raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(list_losses())}")
            declared = {h.name: h for h in get_loss_info(name).hparams}
            for pname, spec in (params or {}).items():
                if pname not in declared:
                    allowed = ", ".join(declared) or "none (this method has no hyperparameters)"
                    raise ValueError(f"{name}.{pname} is not a hyperparameter of {name}; allowed: {allowed}")
                parse_param_spec(declared[pname], spec, owner=name)
        return {k: dict(p or {}) for k, p in v.items()}

    @field_validator("objective")
    @classmethod
    def _some_objective(cls, v: Objective | list[Objective]) -> Objective | list[Objective]:
        if isinstance(v, list) and not v:
            raise ValueError("an empty list; allowed: one {metric, mode} or a list of one or more")
        metrics = [o.metric for o in (v if isinstance(v, list) else [v])]
        twice = next((m for i, m in enumerate(metrics) if m in metrics[:i]), None)
        if twice is not None:
            raise ValueError(f"{bounded(twice)} is given twice; allowed: each metric once")
        return v

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> StudySpec:
        if not _registries(info):
            _check_asha(self.asha, self.training.epochs)
            return self
        from trainables.data import list_datasets

        if sampler_info(self.search.sampler).enumerates:
            _check_finite_grid(self)
        _check_asha(self.asha, self.training.epochs)
        strategy_of(self).check(self)  # e.g. per_method: num_samples gives every method its trials
        if self.evaluation.transfer_dataset and self.evaluation.transfer_dataset not in list_datasets():
            raise ValueError(f"unknown transfer_dataset {self.evaluation.transfer_dataset!r}; "
                             f"allowed: {', '.join(list_datasets())}")
        return self

    @property
    def objectives(self) -> list[Objective]:
        return self.objective if isinstance(self.objective, list) else [self.objective]

    def base_trial_config(self) -> dict[str, Any]:
        """Everything a trial needs except the method and its hyperparameters (which the search picks)."""
        cfg = {**self.data.model_dump(), "model": self.model, **self.training.model_dump(),
               **self.evaluation.model_dump(), "seed": self.seed}
        TrialConfig.from_dict(cfg)  # the same validation a trial will do
        return cfg


def _check_asha(asha: AshaSection, epochs: int) -> None:
    if asha.max_t is not None and asha.max_t > epochs:
        raise ValueError(f"asha.max_t={asha.max_t} exceeds training.epochs={epochs}; allowed: {epochs} or leave it out")
    if asha.max_t is not None and asha.max_t < epochs:
        raise ValueError(f"asha.max_t={asha.max_t} is below training.epochs={epochs}: ASHA would stop every trial "
                         f"before its last epoch and none would complete; allowed: {epochs} or leave it out")
    if asha.enabled and asha.grace_period > epochs:
        raise ValueError(f"asha.grace_period={asha.grace_period} exceeds max_t={epochs} (training.epochs); "
                         f"allowed: an integer in [1, {epochs}]")


def _check_finite_grid(spec: StudySpec) -> None:
    """A sampler that enumerates (``grid``) needs finite values of each searched hyperparameter."""
    from search_spaces.space import method_params

    for loss, params in method_params(spec).items():
        for p in params:
            if not (p.is_fixed or p.choices):
                raise ValueError(f"search.sampler=grid cannot enumerate methods.{loss}.{p.hparam.name} (a range); "
                                 "allowed for it: grid: [values], grid: paper or value: x")


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"] if not str(x)[:1].isupper()) or "study"  # no union member names
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"{loc}: unknown key; see the README's study-file reference for the allowed keys"
    if e["type"] == "literal_error":
        return f"{loc}={bounded(e.get('input'))}: {msg}"
    return f"{loc}: {msg}" + (f" (got {bounded(e['input'])})" if "input" in e and not isinstance(e["input"], dict)
                              else "")


def read_study_file(path: str | Path) -> dict[str, Any]:
    """The study file's settings, checked for what needs no registry (``SHAPE_ONLY``: types, bounds, grids,
    ranges, objectives), so a bad file is refused before torch or Ray is imported; ``StudyFileError`` with
    one line naming the field."""
    path = Path(path)
    try:
        data = read_study_yaml(path)
    except ValueError as err:
        raise StudyFileError(str(err)) from None
    if not isinstance(data, dict):
        raise StudyFileError(f"study file {path}: expected a mapping of settings at the top level")
    _validated(data, {SHAPE_ONLY: True})
    return data


def load_study(path: str | Path, registries: bool = True) -> StudySpec:
    """Read and validate a study file; raises ``StudyFileError`` with one line naming the field. ``registries``
    False: the ``SHAPE_ONLY`` checks of ``read_study_file`` alone (see ``parse_study``)."""
    return parse_study(read_study_file(path), registries)


def _validated(data: dict[str, Any], context: dict[str, Any] | None = None) -> StudySpec:
    try:
        return StudySpec.model_validate(data, context=context)
    except ValidationError as err:
        raise StudyFileError(_one_line(err)) from None
    except ValueError as err:
        raise StudyFileError(str(err)) from None


def parse_study(data: dict[str, Any], registries: bool = True) -> StudySpec:
    """The study's settings, checked against the registries too (datasets, models, losses, metrics: torch is
    imported). ``registries`` False: the ``SHAPE_ONLY`` checks alone, for a study file that already ran (its
    names were checked when it started), read back by a command that needs no registry (``status``)."""
    if not registries:
        return _validated(data, {SHAPE_ONLY: True})
    spec = _validated(data)
    try:
        spec.base_trial_config()
    except ValidationError as err:
        raise StudyFileError(_one_line(err)) from None
    except ValueError as err:
        raise StudyFileError(str(err)) from None
    return spec
