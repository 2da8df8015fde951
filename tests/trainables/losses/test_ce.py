import math

import torch

from trainables.losses import build_loss


def test_value_by_hand():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.5, 0.5]])
    targets = torch.tensor([1, 2])
    first = -(2.0 - math.log(math.exp(1) + math.exp(2) + 1))
    second = math.log(3)
    value = build_loss("ce", 3, reduction="none")(logits, targets)
    assert torch.allclose(value, torch.tensor([first, second]))
