"""Online label smoothing (Zhang et al., 2021), a baseline of Label Smoothing++ (Chhabra et al.)."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss, soft_cross_entropy


class OnlineLabelSmoothing(SmoothingLoss):
    """(1−α)·CE + α·H(S[y], p); S[c] is the mean softmax of last epoch's correct training samples of c.

    S starts uniform. While training (``self.training`` and grad enabled) each forward adds the detached
    softmax of correctly classified samples to per-class sums; ``on_epoch_end`` turns them into the new S
    (a class with no correct sample keeps its row). S and the sums are buffers, so checkpoints hold them;
    the module must live on the logits' device (``loss.to(device)``).
    """

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.5) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha
        k = num_classes
        self.register_buffer("soft_labels", torch.full((k, k), 1.0 / k))
        self.register_buffer("prob_sums", torch.zeros(k, k))
        self.register_buffer("correct_counts", torch.zeros(k))

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=1)
        if self.training and torch.is_grad_enabled():
            self._accumulate(log_p.detach(), targets)
        smooth = soft_cross_entropy(log_p, self.soft_labels[targets].to(log_p.dtype))
        return (1 - self.alpha) * F.nll_loss(log_p, targets, reduction="none") + self.alpha * smooth

    @torch.no_grad()
    def _accumulate(self, log_p: torch.Tensor, targets: torch.Tensor) -> None:
        correct = log_p.argmax(dim=1) == targets
        classes = targets[correct]
        self.prob_sums.index_add_(0, classes, log_p[correct].exp().to(self.prob_sums.dtype))
        self.correct_counts.index_add_(0, classes, torch.ones_like(classes, dtype=self.correct_counts.dtype))

    @torch.no_grad()
    def on_epoch_end(self) -> None:
        seen = self.correct_counts > 0
        self.soft_labels[seen] = self.prob_sums[seen] / self.correct_counts[seen, None]
        self.prob_sums.zero_()
        self.correct_counts.zero_()

    def target_matrix(self) -> torch.Tensor:
        return self.soft_labels.detach().float().clone()


register_loss(
    LossInfo(
        name="ols",
        cls=OnlineLabelSmoothing,
        hparams=(
            HParam("alpha", 0.5, 0.0, 1.0,
                   help="weight of the online soft-label term (paper: 0.5)"),
        ),
        reference="Zhang et al., Delving Deep into Label Smoothing, IEEE TIP 2021",
        summary="online label smoothing (class-wise mean predictions as soft labels)",
    )
)
