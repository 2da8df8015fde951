import torch
import torch.nn.functional as F

from trainables.losses.base import LossInfo, SmoothingLoss, register_loss


class CrossEntropy(SmoothingLoss):
    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, reduction="none")


register_loss(LossInfo(name="ce", cls=CrossEntropy, reference="", summary="cross-entropy"))
