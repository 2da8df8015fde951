import torch

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss


class LabelSmoothing(SmoothingLoss):
    """Cross-entropy with targets (1 - alpha) * onehot + alpha / K (Szegedy et al., 2016)."""

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = logits.log_softmax(dim=1)
        nll = -logp.gather(1, targets[:, None]).squeeze(1)
        return (1 - self.alpha) * nll - self.alpha * logp.mean(dim=1)


register_loss(
    LossInfo(
        name="ls",
        cls=LabelSmoothing,
        hparams=(
            HParam("alpha", 0.1, 0.0, 0.9, grid=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4),
                   help="smoothing mass spread uniformly over all classes"),
        ),
        reference="Szegedy et al. 2016; Lienen & Huellermeier alpha grid",
        summary="label smoothing",
    )
)
