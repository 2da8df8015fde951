"""Confidence penalty (Pereyra et al., 2017), a calibration baseline of the label relaxation paper (Lienen & Hüllermeier)."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss


class ConfidencePenalty(SmoothingLoss):
    """CE − β·H(p) with H(p) = −Σ_k p_k log p_k."""

    def __init__(self, num_classes: int, reduction: str = "mean", beta: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.beta = beta

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=1)
        neg_entropy = (log_p.exp() * log_p).sum(dim=1)
        return F.nll_loss(log_p, targets, reduction="none") + self.beta * neg_entropy


register_loss(
    LossInfo(
        name="confidence_penalty",
        cls=ConfidencePenalty,
        hparams=(
            HParam("beta", 0.1, 0.01, 10.0, log=True, grid=(0.1, 0.3, 0.5, 1, 2, 4, 8),
                   help="weight of the entropy bonus"),
        ),
        reference="Pereyra et al., Regularizing Neural Networks by Penalizing Confident Output "
                  "Distributions, 2017; grid from Lienen & Hüllermeier",
        summary="confidence penalty (entropy regularisation)",
    )
)
