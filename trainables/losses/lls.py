"""Learnable Label Smoothing: a learnable target distribution per class, symmetric KL."""

import math

import torch
from torch import nn

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss


class LearnableLabelSmoothing(SmoothingLoss):
    """Target t = (1−α)·onehot + α·softmax(Q[y]); loss ½·[KL(t‖p) + KL(p‖t)], trained into both p and Q.

    α must be > 0: with a one-hot target KL(p‖t) is infinite.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha
        self.q_logits = nn.Parameter(torch.zeros(num_classes, num_classes))

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=1)
        log_q = self.q_logits[targets].log_softmax(dim=1).to(logits.dtype)
        # log t in log space: log(α q_k) off the target, log(1−α + α q_y) at it.
        q_target = log_q.gather(1, targets[:, None]).exp()
        log_t = (log_q + math.log(self.alpha)).scatter(
            1, targets[:, None], (1 - self.alpha + self.alpha * q_target).log()
        )
        # KL(t‖p) + KL(p‖t) = Σ (t − p)(log t − log p)
        return 0.5 * ((log_t.exp() - log_p.exp()) * (log_t - log_p)).sum(dim=1)

    def target_matrix(self) -> torch.Tensor:
        with torch.no_grad():
            return self.q_logits.float().softmax(dim=1)


register_loss(
    LossInfo(
        name="lls",
        cls=LearnableLabelSmoothing,
        hparams=(
            HParam("alpha", 0.1, 0.01, 0.9, grid=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
                   help="mass of the learned class distribution (paper: 0.1; appendix C grid); > 0 (reverse KL)"),
        ),
        reference="LLS: Regulating Neural Network Training via Learnable Label Smoothing",
        summary="learnable class-wise target distributions (Q-matrix), symmetric KL",
        learnable=True,
    )
)
