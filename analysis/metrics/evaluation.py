"""What the training loop calls: cheap per-epoch metrics and the full end-of-trial evaluation.

PLACEHOLDER until the metrics issue lands: only accuracy and NLL. The signatures are the contract.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def epoch_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Cheap metrics, un-prefixed keys (acc, nll, ...); the loop prefixes them with ``val/``."""
    logits = logits.float()
    return {
        "acc": (logits.argmax(1) == labels).float().mean().item(),
        "nll": F.cross_entropy(logits, labels).item(),
    }


def final_metrics(
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    test_logits: torch.Tensor,
    test_labels: torch.Tensor,
) -> dict[str, float]:
    """Full evaluation at the end of a trial; keys are namespaced (``val/…``, ``test/…``)."""
    out = {f"val/{k}": v for k, v in epoch_metrics(val_logits, val_labels).items()}
    out.update({f"test/{k}": v for k, v in epoch_metrics(test_logits, test_labels).items()})
    return out
