"""Label Smoothing++ (Chhabra et al., seed 002): a learnable non-target distribution per class."""

import torch
from torch import nn

from trainables.losses.base import LossInfo, SmoothingLoss, register_loss
from trainables.registry import HParam

EPS = 1e-6  # inside the logs, as in the official code


def non_target_columns(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K−1) column indices of the classes other than each target, in increasing order."""
    cols = torch.arange(num_classes - 1, device=targets.device)[None, :]
    return cols + (cols >= targets[:, None]).long()


class LabelSmoothingPP(SmoothingLoss):
    """Target t = (1−α)·onehot + α·C[y], C rows a softmax over the K−1 non-target classes (zero diagonal).

    Loss ½·[H(t.detach(), p) + H(p.detach(), t)] with H(a, b) = −Σ a·log(b + ε): the network learns only
    from the first term, C only from the second.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha
        self.c_logits = nn.Parameter(torch.zeros(num_classes, num_classes - 1))

    def _spread(self, rows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Place the softmaxed C rows of classes ``rows`` into (len(rows), K) with 0 at the class itself."""
        probs = self.c_logits[rows].softmax(dim=1).to(dtype)
        out = torch.zeros(rows.shape[0], self.num_classes, dtype=dtype, device=probs.device)
        return out.scatter(1, non_target_columns(rows, self.num_classes), probs)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1)
        t = (self.alpha * self._spread(targets, logits.dtype)).scatter_add(
            1, targets[:, None], torch.full_like(p[:, :1], 1 - self.alpha)
        )
        to_network = -(t.detach() * (p + EPS).log()).sum(dim=1)
        to_targets = -(p.detach() * (t + EPS).log()).sum(dim=1)
        return 0.5 * (to_network + to_targets)

    def target_matrix(self) -> torch.Tensor:
        with torch.no_grad():
            return self._spread(torch.arange(self.num_classes, device=self.c_logits.device), torch.float32)


register_loss(
    LossInfo(
        name="lspp",
        cls=LabelSmoothingPP,
        hparams=(
            HParam("alpha", 0.1, 0.0, 0.9, grid=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4),
                   help="mass given to the learned non-target distribution (paper: 0.1 throughout)"),
        ),
        reference="Chhabra et al., Label Smoothing++ (seed 002); github.com/s-choh/LSPP",
        summary="learnable class-wise non-target distributions (C-matrix)",
        learnable=True,
    )
)
