"""Label relaxation (Lienen & Hüllermeier): no loss inside the credal set p_y ≥ 1−α."""

import math

import torch

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, log_target_and_rest, register_loss


class LabelRelaxation(SmoothingLoss):
    """0 if p_y ≥ 1−α, else KL(r‖p) with r_y = 1−α, r_k = α·p_k/Σ_{j≠y} p_j and r held constant.

    Closed form (1−α)·log((1−α)/p_y) + α·log(α/(1−p_y)); its gradient equals that of the KL with r
    detached (p − r), so computing it in log space keeps the paper's stop-gradient structure.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        log_p_target, log_rest = log_target_and_rest(logits, targets)
        loss = (1 - a) * (math.log(1 - a) - log_p_target)
        if a > 0:  # α·log(α/(1−p_y)) → 0 as α → 0
            loss = loss + a * (math.log(a) - log_rest)
        inside = log_p_target >= math.log(1 - a)
        return torch.where(inside, torch.zeros_like(loss), loss)


register_loss(
    LossInfo(
        name="label_relaxation",
        cls=LabelRelaxation,
        hparams=(
            HParam("alpha", 0.1, 0.0, 0.9, grid=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4),
                   help="relaxation: predictions with p_y >= 1-alpha cost nothing"),
        ),
        reference="Lienen & Huellermeier, From Label Smoothing to Label Relaxation, AAAI 2021",
        summary="label relaxation (KL to the closest distribution of the credal set)",
    )
)
