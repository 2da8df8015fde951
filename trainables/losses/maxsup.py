"""MaxSup (Zhou et al.): suppress the top logit instead of the target logit."""

import torch
import torch.nn.functional as F

from analysis.core.registry import HParam
from trainables.losses.base import LossInfo, SmoothingLoss, register_loss, target_mask

SCHEDULES = ("constant", "ramp")
VARIANTS = ("logit", "prob", "prob_hinge")


class MaxSup(SmoothingLoss):
    """CE + a·(z_max − mean_k z_k) (official code form; z_max over all classes, nothing detached).

    ``variant="prob"``/``"prob_hinge"`` is the slides' form CE + a·φ(max_{k≠y} p_k) with φ the identity or
    the hinge max(0, x − hinge_margin). ``alpha`` is the weight a at the end of training: with
    ``schedule="ramp"`` it rises linearly from ``ramp_start · alpha`` (first epoch) to ``alpha`` (last epoch),
    as in the official code (0.1 → 0.2: alpha 0.2, ramp_start 0.5); with ``"constant"`` it is ``alpha``
    throughout. Searching ``alpha`` therefore always searches an upward ramp of that shape.
    """

    def __init__(
        self,
        num_classes: int,
        reduction: str = "mean",
        alpha: float = 0.2,
        ramp_start: float = 0.5,
        schedule: str = "ramp",
        variant: str = "logit",
        hinge_margin: float = 0.1,
    ) -> None:
        super().__init__(num_classes, reduction)
        if schedule not in SCHEDULES:
            raise ValueError(f"maxsup.schedule={schedule!r} is not allowed; allowed: {', '.join(SCHEDULES)}")
        if variant not in VARIANTS:
            raise ValueError(f"maxsup.variant={variant!r} is not allowed; allowed: {', '.join(VARIANTS)}")
        self.alpha, self.ramp_start, self.schedule = alpha, ramp_start, schedule
        self.variant, self.hinge_margin = variant, hinge_margin
        # The weight in use now; a buffer so that a checkpoint restores the ramp position.
        self.register_buffer("alpha_now", torch.tensor(float(self.start_weight())))

    def start_weight(self) -> float:
        return self.alpha * self.ramp_start if self.schedule == "ramp" else self.alpha

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        if total_epochs < 1 or not 0 <= epoch < total_epochs:
            raise ValueError(
                f"epoch={epoch!r}, total_epochs={total_epochs!r}: need total_epochs >= 1 and "
                "0 <= epoch < total_epochs"
            )
        start = self.start_weight()
        self.alpha_now.fill_(start + (self.alpha - start) * epoch / max(1, total_epochs - 1))

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, targets, reduction="none")
        if self.variant == "logit":
            penalty = logits.max(dim=1).values - logits.mean(dim=1)
        else:
            log_p = logits.log_softmax(dim=1)
            penalty = log_p.masked_fill(target_mask(logits, targets), float("-inf")).max(dim=1).values.exp()
            if self.variant == "prob_hinge":
                penalty = F.relu(penalty - self.hinge_margin)
        return ce + self.alpha_now * penalty


register_loss(
    LossInfo(
        name="maxsup",
        cls=MaxSup,
        hparams=(
            HParam("alpha", 0.2, 0.0, 0.5, help="penalty weight at the end of training (the ramp's top)"),
            HParam("ramp_start", 0.5, 0.0, 1.0, search=False, when=("schedule", ("ramp",)),
                   help="ramp only: the first epoch's weight as a fraction of alpha (official code: 0.1 -> 0.2)"),
            HParam("schedule", "ramp", choices=SCHEDULES, kind="categorical", search=False,
                   help="ramp: linear from ramp_start*alpha to alpha over training (official code)"),
            HParam("variant", "logit", choices=VARIANTS, kind="categorical", search=False,
                   help="logit: z_max - mean z (official code); prob/prob_hinge: the slides' max_{k!=y} p_k"),
            HParam("hinge_margin", 0.1, 0.0, 1.0, search=False, when=("variant", ("prob_hinge",)),
                   help="prob_hinge only: phi(x)=max(0, x-m)"),
        ),
        reference="Zhou et al., MaxSup; github.com/ZhouYuxuanYX/Maximum-Suppression-Regularization",
        summary="max suppression: penalise the top logit",
    )
)
