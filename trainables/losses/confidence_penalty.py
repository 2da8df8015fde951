"""Confidence penalty (Pereyra et al., 2017), a calibration baseline of the label relaxation paper (Lienen & Hüllermeier)."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss

# pereyra: CE − β·H(p), which penalises confident outputs (Pereyra et al.); paper: CE + β·H(p), the sign the
# label relaxation paper's public code trains with, which rewards them
SIGNS = ("pereyra", "paper")


class ConfidencePenalty(SmoothingLoss):
    """CE − β·H(p) (``sign="pereyra"``) or CE + β·H(p) (``sign="paper"``), H(p) = −Σ_k p_k log p_k."""

    def __init__(self, num_classes: int, reduction: str = "mean", beta: float = 0.1, sign: str = "pereyra") -> None:
        super().__init__(num_classes, reduction)
        if sign not in SIGNS:
            raise ValueError(f"confidence_penalty.sign={sign!r} is not allowed; allowed: {', '.join(SIGNS)}")
        self.beta = beta
        self.entropy_weight = -beta if sign == "pereyra" else beta

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=1)
        entropy = -(log_p.exp() * log_p).sum(dim=1)
        return F.nll_loss(log_p, targets, reduction="none") + self.entropy_weight * entropy


register_loss(
    LossInfo(
        name="confidence_penalty",
        cls=ConfidencePenalty,
        hparams=(
            HParam("beta", 0.1, 0.01, 10.0, log=True, grid=(0.1, 0.3, 0.5, 1, 2, 4, 8),
                   help="weight of the entropy term"),
            HParam("sign", "pereyra", choices=SIGNS, kind="categorical", search=False,
                   help="pereyra: CE − β·H (penalises confidence); paper: CE + β·H (the label relaxation "
                        "paper's code; rewards confidence)"),
        ),
        reference="Pereyra et al., Regularizing Neural Networks by Penalizing Confident Output "
                  "Distributions, 2017; grid from Lienen & Hüllermeier",
        summary="confidence penalty (entropy regularisation)",
    )
)
