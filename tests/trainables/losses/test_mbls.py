import math

import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def test_value_by_hand():
    logits, targets = torch.tensor([[12.0, 0.0, 1.0]]), torch.tensor([2])
    ce = math.log(math.exp(12) + 1 + math.e) - 1.0
    penalty = (0 + (12 - 10) + (11 - 10)) / 3
    expected = ce + 0.1 * penalty
    assert math.isclose(build_loss("mbls", 3)(logits, targets).item(), expected, rel_tol=1e-6)


def test_no_penalty_inside_the_margin():
    logits, targets = make_batch(8, 5)  # gaps far below 10
    value = build_loss("mbls", 5, reduction="none", weight=1.0).double()(logits, targets)
    assert torch.allclose(value, F.cross_entropy(logits, targets, reduction="none"))
    smaller_margin = build_loss("mbls", 5, reduction="none", weight=1.0, margin=0.5).double()
    assert (smaller_margin(logits, targets) > value).all()
