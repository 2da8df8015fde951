"""The configuration of one training run (one trial, or one local rerun). Plain data, no Ray."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from analysis.core.catalogue import TRAIN_ON_VALUES

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "multistep", "constant")
# how pixels become inputs: z-scored by the dataset's global mean and std, or /255 minus the training split's
# per-pixel mean (no division)
NORMALIZATIONS = ("global", "pixel_mean")
# none: the dataset's official train/test; per_seed: both merged and redrawn from split_seed at the official sizes
RESAMPLING = ("none", "per_seed")
# weights of linear and convolutional layers: PyTorch's defaults, or Glorot-uniform with zero biases
INITS = ("default", "glorot")
DEVICES = ("auto", "cpu", "cuda")
# Bounds for integer settings. Trial seeds grow from the study's (seed·seeds_per_trial + k, plus offsets below
# 2**24), so integers up to MAX_INT keep every seed below 2**63: torch, NumPy and Parquet store int64.
MAX_INT = 2**31 - 1
MAX_SEED = 2**63 - 1
MAX_EPOCHS = 10_000


@dataclass
class TrialConfig:
    # data
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    download: bool = False
    subset: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0  # the split is fixed across trials so they are compared on the same data
    augment: bool = False
    normalize: str = "global"
    resample: str = "none"
    train_on: str = "train"
    # model and method
    model: str = "mlp"
    init: str = "default"
    loss: str = "ce"
    loss_params: dict[str, Any] = field(default_factory=dict)
    # optimisation
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_size: int = 30  # epochs between decays for the step schedule
    step_gamma: float = 0.1
    milestones: tuple[int, ...] = ()  # multistep: the epochs after which the rate is multiplied by step_gamma
    # inverse-time decay per optimiser step on top of the schedule, lr / (1 + lr_decay · step), as Keras' SGD
    # ``decay`` argument applies it
    lr_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 2048
    seed: int = 0
    # n > 1: seeds seed·n … seed·n+n−1 of this configuration trained one epoch each in turn inside the trial
    # (trainables.seed_group.SeedGroup); results are their means plus per-seed final metrics ``seed<i>/<key>``
    seeds_per_trial: int = 1
    # hardware
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    # with amp: bf16 autocast on CPU too. Changes the numerics; faster only where the CPU has bf16 instructions
    # (AVX512-BF16, AMX), and there less than the matmuls alone suggest (BENCHMARKS.md)
    amp_cpu: bool = False
    compile: bool = False
    # end-of-trial evaluation
    representation: bool = True
    probe: bool = True
    probe_max_train: int = 5000
    transfer_dataset: str | None = None
    shift_severity: int = 0  # 0: no shifted test set; 1..5: noise+blur copy merged with the test set

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not allowed; allowed: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not allowed; allowed: {', '.join(SCHEDULES)}")
        for name, allowed in (("device", DEVICES), ("normalize", NORMALIZATIONS), ("resample", RESAMPLING),
                              ("train_on", TRAIN_ON_VALUES), ("init", INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: {', '.join(allowed)}")
        if isinstance(self.milestones, list):
            self.milestones = tuple(self.milestones)
        if not isinstance(self.milestones, tuple):
            raise ValueError(f"milestones={self.milestones!r} is not allowed; allowed: a list of epochs")
        for m in self.milestones:
            _check_int("milestones", m, low=1, high=MAX_EPOCHS)
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones={list(self.milestones)!r} is not allowed; allowed: increasing epochs")
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("milestones=[] is not allowed with schedule=multistep; allowed: one or more epochs")
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size", "probe_max_train", "seeds_per_trial"):
            _check_int(name, getattr(self, name), low=1, high=MAX_EPOCHS if name == "epochs" else None)
        _check_int("seed", self.seed, low=0, high=MAX_SEED)
        _check_int("split_seed", self.split_seed, low=0, high=MAX_SEED)
        _check_int("shift_severity", self.shift_severity, low=0, high=5)
        if self.subset is not None:
            _check_int("subset", self.subset, low=2)
        _check_number("lr", self.lr, "a finite number > 0", lambda v: 0 < v < math.inf)
        _check_number("val_fraction", self.val_fraction, "a number in (0, 1)", lambda v: 0 < v < 1)
        _check_number("momentum", self.momentum, "a number in [0, 1)", lambda v: 0 <= v < 1)
        _check_number("weight_decay", self.weight_decay, "a finite number >= 0", lambda v: 0 <= v < math.inf)
        _check_number("step_gamma", self.step_gamma, "a number in (0, 1]", lambda v: 0 < v <= 1)
        _check_number("lr_decay", self.lr_decay, "a finite number >= 0", lambda v: 0 <= v < math.inf)
        for name in ("download", "augment", "nesterov", "amp", "amp_cpu", "compile", "representation", "probe"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: true or false")
        if not isinstance(self.loss_params, dict):
            raise ValueError(
                f"loss_params={self.loss_params!r} is not allowed; allowed: a mapping name -> value"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{unknown[0]} is not a training setting; allowed: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_trial_config(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """Merge a study's fixed settings with what the search sampled for one trial.

    ``sampled`` is ``{"loss": "ls", "ls": {"alpha": 0.1}}`` (the method's hyperparameters under its own
    name, so that each method has its own parameters in the search) and may override base settings such as
    ``lr`` or ``seed``.
    """
    loss = sampled["loss"]
    overrides = {k: v for k, v in sampled.items() if k != loss and not isinstance(v, dict)}
    return {**base, **overrides, "loss": loss, "loss_params": dict(sampled.get(loss) or {})}


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"loss_params": {"alpha": 0.1}} → {"loss_params.alpha": 0.1}."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (tuple, list)):  # a table cell holds one scalar: epochs as text, "20,40"
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}")


def _check_number(name: str, value: Any, allowed: str, ok: Callable[[float], bool]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}")


def config_from_flat(flat: dict[str, Any]) -> TrialConfig:
    """Rebuild a TrialConfig from flat columns as stored in Parquet (``loss_params.alpha`` …).

    Table columns are unions over trials: another method's parameters are missing (NaN/None) here and are
    dropped; integer settings that a column stored as float come back as int.
    """
    kinds = {f.name: str(f.type) for f in fields(TrialConfig)}
    loss = flat["loss"]
    clean: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None or (isinstance(value, float) and value != value):
            continue
        if hasattr(value, "item"):
            value = value.item()  # numpy scalar
        top = key.split(".")[0]
        if top == "loss_params":
            clean[key] = value
        elif top in kinds:
            if kinds[top].startswith("tuple[int") and isinstance(value, str):
                value = tuple(int(v) for v in value.split(",") if v)
            elif kinds[top].startswith("tuple[int") and isinstance(value, (int, float)):
                value = (int(value),)
            elif "int" in kinds[top] and isinstance(value, float) and value.is_integer():
                value = int(value)
            clean[key] = value
    nested = unflatten(clean)
    nested["loss"] = loss
    params = nested.get("loss_params", {})
    nested["loss_params"] = {k: int(v) if isinstance(v, float) and v.is_integer() and _int_hparam(loss, k) else v
                             for k, v in params.items()}
    return TrialConfig.from_dict(nested)


def _int_hparam(loss: str, name: str) -> bool:
    from trainables.losses import get_loss_info

    return any(h.name == name and h.kind == "int" for h in get_loss_info(loss).hparams)
