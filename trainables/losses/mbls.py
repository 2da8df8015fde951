"""Margin-based label smoothing (Liu et al., CVPR 2022), a baseline of Label Smoothing++ (Chhabra et al.)."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss


class MarginLabelSmoothing(SmoothingLoss):
    """CE + λ·mean_k relu(max_j z_j − z_k − m): only logit gaps wider than the margin are penalised."""

    def __init__(self, num_classes: int, reduction: str = "mean", weight: float = 0.1, margin: float = 10.0):
        super().__init__(num_classes, reduction)
        self.weight, self.margin = weight, margin

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        gaps = logits.max(dim=1, keepdim=True).values - logits
        return F.cross_entropy(logits, targets, reduction="none") + self.weight * F.relu(
            gaps - self.margin
        ).mean(dim=1)


register_loss(
    LossInfo(
        name="mbls",
        cls=MarginLabelSmoothing,
        hparams=(
            HParam("weight", 0.1, 0.001, 1.0, log=True, help="weight of the margin penalty"),
            HParam("margin", 10.0, 0.0, 50.0, search=False, help="allowed logit gap to the top logit"),
        ),
        reference="Liu et al., The Devil is in the Margin: Margin-based Label Smoothing for Network "
                  "Calibration, CVPR 2022",
        summary="margin-based label smoothing",
    )
)
