"""Zipf's label smoothing (Liang et al., ECCV 2022), a baseline of Label Smoothing++ (Chhabra et al.)."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss, target_mask


def _count_greater(z: torch.Tensor) -> torch.Tensor:
    """#{j : z_j > z_k} per entry (0-based rank, ties sharing the lower one) from one sort: in descending
    order each entry's count is the position where its run of equal values starts."""
    ordered, order = z.sort(dim=1, descending=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    positions = torch.arange(z.shape[1], device=z.device).expand_as(order)
    run_start = torch.where(starts, positions, 0).cummax(dim=1).values
    return torch.empty_like(order).scatter_(1, order, run_start)


class ZipfLabelSmoothing(SmoothingLoss):
    """CE + λ·KL(zipf ‖ softmax of the non-target logits).

    As in the official code, zipf_k ∝ rank_k^(−power) with rank_k = 1 + #{j : z_j > z_k} the rank of the
    detached logit among all K classes (ties share the lower rank); the target's entry is then dropped and
    the rest renormalised.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", weight: float = 1.0, power: float = 1.0):
        super().__init__(num_classes, reduction)
        self.weight, self.power = weight, power
        ranks = torch.arange(1, num_classes + 1, dtype=torch.float64)
        self.register_buffer("rank_weights", ranks.pow(-power).float(), persistent=False)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mask = target_mask(logits, targets)
        greater = _count_greater(logits.detach())
        zipf = self.rank_weights.to(logits.dtype)[greater].masked_fill(mask, 0.0)
        zipf = zipf / zipf.sum(dim=1, keepdim=True)
        # KL(zipf‖q) = Σ w log w − Σ_k w_k·(z_k − logsumexp_{j≠y} z_j), w_y = 0
        others = logits.masked_fill(mask, float("-inf")).logsumexp(dim=1)
        kl = torch.xlogy(zipf, zipf).sum(dim=1) + others - (zipf * logits).sum(dim=1)
        return F.cross_entropy(logits, targets, reduction="none") + self.weight * kl


register_loss(
    LossInfo(
        name="zipf_ls",
        cls=ZipfLabelSmoothing,
        hparams=(
            HParam("weight", 1.0, 0.01, 10.0, log=True, help="weight of the Zipf KL term"),
            HParam("power", 1.0, 0.1, 3.0, search=False, help="Zipf exponent: zipf_k ∝ rank_k^-power"),
        ),
        reference="Liang et al., Efficient One Pass Self-distillation with Zipf's Label Smoothing, ECCV 2022",
        summary="Zipf-distributed non-target soft labels from the model's own ranking",
    )
)
