"""The loss interface and registry every method plugs into.

A method is one module that subclasses :class:`SmoothingLoss`, implements ``per_sample`` and registers a
:class:`LossInfo`. The training loop only ever calls ``build_loss``, ``forward``, the two epoch hooks and
``parameters()`` (learnable targets join the optimizer with the network's learning rate and weight decay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from analysis.core.registry import HParam, Registry, check_hparams

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class LossInfo:
    name: str
    cls: type[SmoothingLoss]
    hparams: tuple[HParam, ...] = ()
    reference: str = ""
    summary: str = ""
    learnable: bool = False  # has parameters that the optimizer must train


LOSSES: Registry[LossInfo] = Registry("loss")


def register_loss(info: LossInfo) -> LossInfo:
    return LOSSES.register(info)


def list_losses() -> list[str]:
    return LOSSES.names()


def get_loss_info(name: str) -> LossInfo:
    return LOSSES.get(name)


def loss_hparams(name: str) -> tuple[HParam, ...]:
    """The hyperparameters loss ``name`` declares (what reports need to hide the ones it did not use)."""
    return LOSSES.get(name).hparams


def check_loss_hparams(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """Validate a method's hyperparameters (unknown names, ranges) and fill in paper defaults."""
    return check_hparams(name, get_loss_info(name).hparams, hparams)


def build_loss(name: str, num_classes: int, reduction: str = "mean", **hparams: Any) -> SmoothingLoss:
    info = get_loss_info(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} is not allowed; allowed: an integer >= 2")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed; allowed: {', '.join(REDUCTIONS)}")
    return info.cls(num_classes=num_classes, reduction=reduction, **check_hparams(name, info.hparams, hparams))


class SmoothingLoss(nn.Module):
    """Base class: validates inputs, computes in float32 and applies the reduction.

    Subclasses implement ``per_sample(logits, targets) -> (B,)`` on float32 logits. ``forward`` with
    ``reduction="none"`` returns exactly that vector, so its sum equals ``reduction="sum"``.
    """

    def __init__(self, num_classes: int, reduction: str = "mean") -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reduction = reduction

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits has shape {tuple(logits.shape)}; expected (batch, {self.num_classes})"
            )
        if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
            raise ValueError(f"targets has shape {tuple(targets.shape)}; expected ({logits.shape[0]},)")
        if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
            raise ValueError(f"targets has dtype {targets.dtype}; expected integer class indices")
        # Checked on CPU only: on CUDA reading min/max would sync the device every step; the training loop's
        # labels are checked once when the dataset is loaded (trainables.data.load_dataset).
        if targets.device.type == "cpu" and targets.numel() and (
            int(targets.min()) < 0 or int(targets.max()) >= self.num_classes
        ):
            raise ValueError(f"targets must lie in [0, {self.num_classes}); got values outside it")
        # bf16 autocast: the loss is always computed in float32 (float64 is kept for gradcheck).
        if logits.dtype not in (torch.float32, torch.float64):
            logits = logits.float()
        with torch.autocast(device_type=logits.device.type, enabled=False):
            losses = self.per_sample(logits, targets.long())
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        return losses.mean()

    # Hooks the training loop calls; stateless methods ignore them.
    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:  # noqa: B027
        pass

    def on_epoch_end(self) -> None:  # noqa: B027
        pass

    def target_matrix(self) -> torch.Tensor | None:
        """The learned K×K soft-label matrix (rows sum to 1) for methods that learn one, else None."""
        return None


# Shared pieces of the per-sample formulas (all take float32/float64 logits of shape (B, K)).
def target_mask(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Boolean (B, K) mask that is True at each sample's target class."""
    return torch.zeros_like(logits, dtype=torch.bool).scatter_(1, targets[:, None], True)


def log_target_and_rest(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p_y`` and ``log(1 - p_y)``, both from logsumexps so that confident logits stay finite.

    ``1 - p_y`` is computed as the softmax mass of the non-target classes, never as a difference, so it
    neither cancels to 0 nor gives an infinite gradient when ``p_y`` rounds to 1.
    """
    log_p = logits.log_softmax(dim=1)
    log_p_target = log_p.gather(1, targets[:, None]).squeeze(1)
    log_rest = log_p.masked_fill(target_mask(logits, targets), float("-inf")).logsumexp(dim=1)
    return log_p_target, log_rest


def soft_cross_entropy(log_probs: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """``H(t, p) = -sum_k t_k log p_k`` per sample."""
    return -(soft_targets * log_probs).sum(dim=1)
