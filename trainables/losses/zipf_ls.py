"""Zipf's label smoothing (Liang et al., ECCV 2022), a baseline of seed 002."""

import torch
import torch.nn.functional as F

from trainables.losses.base import LossInfo, SmoothingLoss, register_loss, target_mask
from trainables.registry import HParam


class ZipfLabelSmoothing(SmoothingLoss):
    """CE + λ·KL(zipf ‖ softmax of the non-target logits), zipf_r ∝ r^(−power) at the logits' rank r.

    Ranks come from the sorted non-target logits (largest = rank 1); sorting the logits themselves and
    pairing the r-th largest with zipf_r gives the same value and gradient as ranking detached logits.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", weight: float = 1.0, power: float = 1.0):
        super().__init__(num_classes, reduction)
        self.weight, self.power = weight, power
        ranks = torch.arange(1, num_classes, dtype=torch.float64)
        zipf = ranks.pow(-power) / ranks.pow(-power).sum()
        self.register_buffer("zipf", zipf.float(), persistent=False)
        self.zipf_neg_entropy = float((zipf * zipf.log()).sum())

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        others = logits.masked_fill(target_mask(logits, targets), float("-inf"))
        ranked = others.sort(dim=1, descending=True).values[:, :-1]  # the target (−inf) sorts last
        # KL(zipf‖q) = Σ w log w − Σ_r w_r·(z_(r) − logsumexp_{k≠y} z_k)
        kl = self.zipf_neg_entropy + others.logsumexp(dim=1) - ranked @ self.zipf.to(logits.dtype)
        return F.cross_entropy(logits, targets, reduction="none") + self.weight * kl


register_loss(
    LossInfo(
        name="zipf_ls",
        cls=ZipfLabelSmoothing,
        hparams=(
            HParam("weight", 1.0, 0.01, 10.0, log=True, help="weight of the Zipf KL term"),
            HParam("power", 1.0, 0.1, 3.0, search=False, help="Zipf exponent: zipf_r ∝ r^-power"),
        ),
        reference="Liang et al., Efficient One Pass Self-distillation with Zipf's Label Smoothing, ECCV 2022",
        summary="Zipf-distributed non-target soft labels from the model's own ranking",
    )
)
