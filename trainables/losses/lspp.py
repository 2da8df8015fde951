"""Label Smoothing++ (Chhabra et al.): a learnable non-target distribution per class."""

import torch
import torch.nn.functional as F
from torch import nn

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss, target_mask

EPS = 1e-6  # inside the logs, as in the official code


class LabelSmoothingPP(SmoothingLoss):
    """Target t = (1−α)·onehot + α·C[y], C rows a softmax over the K−1 non-target classes (zero diagonal).

    Loss ½·[H(t.detach(), p) + H(p.detach(), t)] with H(a, b) = −Σ a·log(b + ε): the network learns only
    from the first term, C only from the second.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", alpha: float = 0.1) -> None:
        super().__init__(num_classes, reduction)
        self.alpha = alpha
        self.c_logits = nn.Parameter(torch.zeros(num_classes, num_classes - 1))
        # placement[y, j]: the column of C's row y that holds class j (j < y: j; j > y: j − 1; j = y: the 0 pad)
        cols = torch.arange(num_classes)
        placement = torch.where(cols[None, :] < cols[:, None], cols, cols - 1)
        placement.fill_diagonal_(num_classes - 1)
        self.register_buffer("placement", placement, persistent=False)

    def _spread(self, rows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The C rows of classes ``rows`` as (len(rows), K) distributions with 0 at the class itself."""
        probs = F.pad(self.c_logits[rows].softmax(dim=1).to(dtype), (0, 1))  # K−1 other classes, then a 0
        return probs.gather(1, self.placement[rows])

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1)
        t = (self.alpha * self._spread(targets, logits.dtype)).masked_fill(
            target_mask(logits, targets), 1 - self.alpha
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
            HParam("alpha", 0.1, 0.0, 0.9,
                   help="mass given to the learned non-target distribution (paper: 0.1 throughout)"),
        ),
        reference="Chhabra et al., Label Smoothing++; github.com/s-choh/LSPP",
        summary="learnable class-wise non-target distributions (C-matrix)",
        learnable=True,
    )
)
