import math

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def test_value_by_hand():
    logits, targets, alpha = torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([0]), 0.3
    log_z = math.log(math.exp(2) + 1 + math.exp(1))
    log_p = [2 - log_z, -log_z, 1 - log_z]
    soft = [1 - alpha + alpha / 3, alpha / 3, alpha / 3]
    expected = -sum(s * lp for s, lp in zip(soft, log_p))
    assert math.isclose(float(build_loss("ls", 3, alpha=alpha)(logits, targets)), expected, rel_tol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.4])
def test_equals_torch_label_smoothing(alpha):
    logits, targets = make_batch(9, 7)
    expected = F.cross_entropy(logits, targets, label_smoothing=alpha)
    assert torch.allclose(build_loss("ls", 7, alpha=alpha).double()(logits, targets), expected)
