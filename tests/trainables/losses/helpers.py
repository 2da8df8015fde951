"""Shared helpers for the loss tests: plain reference pieces and a gradcheck over logits and parameters."""

import torch
from torch.func import functional_call

from trainables.losses import build_loss


def make_batch(batch: int, num_classes: int, scale: float = 2.0, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, generator=gen, dtype=dtype) * scale
    targets = torch.randint(0, num_classes, (batch,), generator=gen)
    return logits, targets


def gradcheck_loss(name: str, num_classes: int = 4, batch: int = 3, scale: float = 2.0, **hparams) -> bool:
    """gradcheck in float64 w.r.t. the logits and every learnable parameter of the loss."""
    loss = build_loss(name, num_classes, **hparams).double().eval()
    logits, targets = make_batch(batch, num_classes, scale)
    gen = torch.Generator().manual_seed(1)
    params = {n: (torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5).requires_grad_()
              for n, p in loss.named_parameters()}
    names = list(params)

    def f(z, *ps):
        return functional_call(loss, dict(zip(names, ps)), (z, targets))

    return torch.autograd.gradcheck(f, (logits.requires_grad_(), *params.values()))


def plain_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    shifted = logits - logits.max(dim=1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()
