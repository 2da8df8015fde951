import math

import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def test_value_by_hand():
    logits, targets = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([0])  # p = [1/4, 3/4]
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = -math.log(0.25) - 2.0 * entropy
    assert math.isclose(build_loss("confidence_penalty", 2, beta=2.0)(logits, targets).item(), expected,
                        rel_tol=1e-6)


def test_equals_plain_formula():
    logits, targets = make_batch(8, 5)
    p = logits.softmax(dim=1)
    expected = F.cross_entropy(logits, targets, reduction="none") + 0.5 * (p * p.log()).sum(dim=1)
    value = build_loss("confidence_penalty", 5, reduction="none", beta=0.5).double()(logits, targets)
    assert torch.allclose(value, expected)
