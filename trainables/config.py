"""The configuration of one training run (one trial, or one local rerun). Plain data, no Ray."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
DEVICES = ("auto", "cpu", "cuda")


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
    # model and method
    model: str = "mlp"
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
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 2048
    seed: int = 0
    # hardware
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
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
        if self.device not in DEVICES:
            raise ValueError(f"device={self.device!r} is not allowed; allowed: {', '.join(DEVICES)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer > 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is not allowed; allowed: a number > 0")
        if not 0 <= self.shift_severity <= 5:
            raise ValueError(f"shift_severity={self.shift_severity!r} is not allowed; allowed: 0..5")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{unknown[0]} is not a training setting; allowed: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
