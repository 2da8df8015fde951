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


def test_paper_sign_value_and_gradient_by_hand():
    # p = softmax([0, log 3]) = [1/4, 3/4], label 0: CE = log 4, H = -(1/4 log 1/4 + 3/4 log 3/4)
    logits = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    p = torch.tensor([0.25, 0.75])
    entropy = float(-(p * p.log()).sum())
    loss = build_loss("confidence_penalty", 2, beta=2.0, sign="paper")(logits, torch.tensor([0]))
    assert math.isclose(loss.item(), math.log(4.0) + 2.0 * entropy, rel_tol=1e-6)
    loss.backward()
    # d CE / dz = p - onehot; d H / dz_j = -p_j (log p_j + H)
    expected = (p - torch.tensor([1.0, 0.0])) + 2.0 * (-p * (p.log() + entropy))
    assert torch.allclose(logits.grad[0], expected, atol=1e-6)


def test_the_two_signs_differ_by_twice_the_entropy_term():
    logits, targets = make_batch(8, 5)
    p = logits.double().softmax(dim=1)
    entropy = -(p * p.log()).sum(dim=1)
    paper = build_loss("confidence_penalty", 5, reduction="none", beta=0.5, sign="paper").double()(logits, targets)
    pereyra = build_loss("confidence_penalty", 5, reduction="none", beta=0.5).double()(logits, targets)
    assert torch.allclose(paper - pereyra, 2 * 0.5 * entropy)


def test_unknown_sign_is_refused():
    import pytest

    with pytest.raises(ValueError, match="confidence_penalty.sign='minus'.*'pereyra', 'paper'"):
        build_loss("confidence_penalty", 5, beta=0.5, sign="minus")
