import math

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def test_value_by_hand():
    logits, targets = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    p = math.exp(2) / (math.exp(2) + 1)
    expected = -((1 - p) ** 2) * math.log(p)
    assert math.isclose(build_loss("focal", 2, gamma=2.0)(logits, targets).item(), expected, rel_tol=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 3.5])
def test_equals_plain_formula(gamma):
    logits, targets = make_batch(8, 6)
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    expected = -((1 - log_p.exp()) ** gamma) * log_p
    value = build_loss("focal", 6, reduction="none", gamma=gamma).double()(logits, targets)
    assert torch.allclose(value, expected)


def test_gradient_is_finite_when_the_target_probability_rounds_to_one():
    # naive (1 - p_y) ** 0.5 has an infinite derivative at p_y = 1 and gives NaN here
    logits = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)
    build_loss("focal", 3, gamma=0.5)(logits, torch.tensor([0])).backward()
    assert torch.isfinite(logits.grad).all()
