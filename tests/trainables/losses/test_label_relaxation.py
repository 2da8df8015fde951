import math

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def _relaxed_target(p: torch.Tensor, targets: torch.Tensor, alpha: float) -> torch.Tensor:
    onehot = F.one_hot(targets, p.shape[1]).to(p.dtype)
    others = p * (1 - onehot)
    return (1 - alpha) * onehot + alpha * others / others.sum(dim=1, keepdim=True)


def test_closed_form_by_hand():
    logits, targets, alpha = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([0]), 0.1
    p_y = 1 / (1 + math.e + math.e**2)
    expected = 0.9 * math.log(0.9 / p_y) + 0.1 * math.log(0.1 / (1 - p_y))
    value = build_loss("label_relaxation", 3, alpha=alpha)(logits, targets).item()
    assert math.isclose(value, expected, rel_tol=1e-6)


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_equals_kl_to_the_relaxed_target_and_zero_inside_the_set(alpha):
    logits, targets = make_batch(40, 4, scale=3.0)
    p = logits.softmax(dim=1)
    r = _relaxed_target(p, targets, alpha)
    kl = (r * (r.log() - p.log())).sum(dim=1)
    inside = p.gather(1, targets[:, None]).squeeze(1) >= 1 - alpha
    assert inside.any() and (~inside).any()
    expected = torch.where(inside, torch.zeros_like(kl), kl)
    value = build_loss("label_relaxation", 4, reduction="none", alpha=alpha).double()(logits, targets)
    assert torch.allclose(value, expected)


def test_gradient_treats_the_relaxed_target_as_constant():
    logits, targets = make_batch(40, 4, scale=3.0)
    logits.requires_grad_()
    build_loss("label_relaxation", 4, reduction="sum", alpha=0.1).double()(logits, targets).backward()
    p = logits.detach().softmax(dim=1)
    r = _relaxed_target(p, targets, 0.1)
    inside = p.gather(1, targets[:, None]) >= 0.9
    expected = torch.where(inside, torch.zeros_like(p), p - r)  # d KL(r‖p)/dz with r constant
    assert torch.allclose(logits.grad, expected)


def test_confident_logits_stay_finite_in_both_directions():
    logits = torch.tensor([[100.0, -100.0, -100.0], [100.0, -100.0, -100.0]], requires_grad=True)
    value = build_loss("label_relaxation", 3, reduction="none")(logits, torch.tensor([0, 1]))
    value.sum().backward()
    assert value[0] == 0
    assert math.isclose(value[1].item(), 0.9 * (math.log(0.9) + 200) + 0.1 * math.log(0.1), rel_tol=1e-5)
    assert torch.isfinite(logits.grad).all()
