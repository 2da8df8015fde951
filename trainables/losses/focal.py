"""Focal loss (Lin et al., 2020), a calibration baseline of the label relaxation paper (Lienen & Hüllermeier)."""

import torch

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, log_target_and_rest, register_loss


class FocalLoss(SmoothingLoss):
    """−(1−p_y)^γ · log p_y, with (1−p_y)^γ = exp(γ·log(1−p_y)) so that p_y → 1 keeps finite gradients."""

    def __init__(self, num_classes: int, reduction: str = "mean", gamma: float = 2.0) -> None:
        super().__init__(num_classes, reduction)
        self.gamma = gamma

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p_target, log_rest = log_target_and_rest(logits, targets)
        return -(self.gamma * log_rest).exp() * log_p_target


register_loss(
    LossInfo(
        name="focal",
        cls=FocalLoss,
        hparams=(
            HParam("gamma", 2.0, 0.0, 5.0, grid=(0.1, 0.2, 0.5, 1, 2, 3.5, 5),
                   help="focusing exponent; 0 gives cross-entropy"),
        ),
        reference="Lin et al., Focal Loss for Dense Object Detection, TPAMI 2020; grid from Lienen & Hüllermeier",
        summary="focal loss",
    )
)
