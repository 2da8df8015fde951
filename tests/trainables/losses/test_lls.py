import math

import torch

from tests.trainables.losses.helpers import gradcheck_loss, make_batch
from trainables.losses import build_loss


def _plain(logits, targets, q_logits, alpha):
    k = logits.shape[1]
    t = (1 - alpha) * torch.eye(k, dtype=logits.dtype)[targets] + alpha * q_logits.softmax(dim=1)[targets]
    p = logits.softmax(dim=1)
    forward_kl = (t * (t / p).log()).sum(dim=1)
    reverse_kl = (p * (p / t).log()).sum(dim=1)
    return 0.5 * (forward_kl + reverse_kl)


def test_value_by_hand_at_initialisation():
    # Q starts uniform: t = (1-α)·onehot + α/K
    logits, targets, alpha = torch.tensor([[0.0, 1.0]]), torch.tensor([1]), 0.2
    p = [1 / (1 + math.e), math.e / (1 + math.e)]
    t = [0.1, 0.9]
    expected = 0.5 * sum(a * math.log(a / b) + b * math.log(b / a) for a, b in zip(t, p))
    assert math.isclose(build_loss("lls", 2, alpha=alpha)(logits, targets).item(), expected, rel_tol=1e-6)


def test_value_and_gradients_with_a_learned_matrix():
    loss = build_loss("lls", 5, reduction="none", alpha=0.3).double()
    with torch.no_grad():
        loss.q_logits.normal_(generator=torch.Generator().manual_seed(2))
    logits, targets = make_batch(7, 5)
    logits.requires_grad_()
    q_ref = loss.q_logits.detach().clone().requires_grad_()
    z_ref = logits.detach().clone().requires_grad_()
    value, expected = loss(logits, targets), _plain(z_ref, targets, q_ref, 0.3)
    assert torch.allclose(value, expected)
    value.sum().backward()
    expected.sum().backward()
    assert torch.allclose(logits.grad, z_ref.grad)
    assert torch.allclose(loss.q_logits.grad, q_ref.grad)
    assert loss.q_logits.grad.abs().sum() > 0  # both the network and Q learn


def test_gradcheck_includes_q():
    assert gradcheck_loss("lls", num_classes=3, alpha=0.3)


def test_q_rows_of_unused_classes_get_no_gradient():
    loss = build_loss("lls", 4)
    loss(torch.randn(3, 4), torch.tensor([0, 0, 2])).backward()
    assert torch.equal(loss.q_logits.grad[[1, 3]], torch.zeros(2, 4))
    assert loss.q_logits.grad[[0, 2]].abs().sum() > 0
