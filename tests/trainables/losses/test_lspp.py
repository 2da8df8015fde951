import math

import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss

EPS = 1e-6


def _plain_matrix(c_logits: torch.Tensor) -> torch.Tensor:
    k = c_logits.shape[0]
    matrix = torch.zeros(k, k, dtype=c_logits.dtype)
    for row in range(k):
        probs = c_logits[row].softmax(dim=0)
        others = [col for col in range(k) if col != row]
        for j, col in enumerate(others):
            matrix[row, col] = probs[j]
    return matrix


def _terms(logits, targets, c_logits, alpha):
    """The two halves ½H(t, p) and ½H(p, t), each with nothing detached."""
    k = logits.shape[1]
    t = (1 - alpha) * torch.eye(k, dtype=logits.dtype)[targets] + alpha * _plain_matrix(c_logits)[targets]
    p = logits.softmax(dim=1)
    return 0.5 * -(t * (p + EPS).log()).sum(dim=1), 0.5 * -(p * (t + EPS).log()).sum(dim=1)


def _with_random_c(alpha=0.2, k=4):
    loss = build_loss("lspp", k, reduction="sum", alpha=alpha).double()
    with torch.no_grad():
        loss.c_logits.copy_(torch.randn(k, k - 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    return loss


def test_value_by_hand_at_initialisation():
    # C starts uniform over the K-1 other classes: t = [0.9, 0.05, 0.05] for y = 0
    logits, targets = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([0])
    z = math.exp(1) + 1 + math.exp(-1)
    p = [math.exp(1) / z, 1 / z, math.exp(-1) / z]
    t = [0.9, 0.05, 0.05]
    expected = 0.5 * (-sum(a * math.log(b + EPS) for a, b in zip(t, p))
                      - sum(a * math.log(b + EPS) for a, b in zip(p, t)))
    assert math.isclose(build_loss("lspp", 3)(logits, targets).item(), expected, rel_tol=1e-6)


def test_value_with_a_learned_matrix():
    loss = _with_random_c()
    logits, targets = make_batch(6, 4)
    first, second = _terms(logits, targets, loss.c_logits.detach(), 0.2)
    assert torch.allclose(loss(logits, targets), (first + second).sum())


def test_split_gradients_network_from_first_term_c_from_second():
    loss = _with_random_c()
    logits, targets = make_batch(6, 4)
    logits.requires_grad_()
    loss(logits, targets).backward()

    c_ref = loss.c_logits.detach().clone().requires_grad_()
    z_ref = logits.detach().clone().requires_grad_()
    first, _ = _terms(z_ref, targets, c_ref.detach(), 0.2)
    first.sum().backward()
    _, second = _terms(z_ref.detach(), targets, c_ref, 0.2)
    second.sum().backward()
    assert torch.allclose(logits.grad, z_ref.grad)
    assert torch.allclose(loss.c_logits.grad, c_ref.grad)
    # and the reverse term's own gradient w.r.t. the logits is not what the network receives
    z_other = logits.detach().clone().requires_grad_()
    _terms(z_other, targets, c_ref.detach(), 0.2)[1].sum().backward()
    assert not torch.allclose(z_other.grad, torch.zeros_like(z_other.grad))


def test_split_gradients_pass_gradcheck():
    # Subtracting the other half's detached value leaves the analytical gradient as it is but removes that half
    # from the numerical one: gradcheck then holds only if each input learns from its own half alone.
    loss = _with_random_c()
    logits, targets = make_batch(3, 4)
    c = loss.c_logits.detach().clone()

    def network_side(z):
        return loss(z, targets) - _terms(z, targets, c, 0.2)[1].sum().detach()

    def target_side(c_logits):
        value = functional_call(loss, {"c_logits": c_logits}, (logits, targets))
        return value - _terms(logits, targets, c_logits, 0.2)[0].sum().detach()

    assert gradcheck(network_side, (logits.clone().requires_grad_(),))
    assert gradcheck(target_side, (c.requires_grad_(),))


def test_target_matrix_has_zero_diagonal_and_unit_rows():
    loss = _with_random_c(k=5)
    matrix = loss.target_matrix()
    assert torch.equal(matrix.diagonal(), torch.zeros(5))
    assert torch.allclose(matrix.sum(dim=1), torch.ones(5))
    assert torch.allclose(matrix, _plain_matrix(loss.c_logits.detach()).float())
    assert torch.allclose(build_loss("lspp", 3).target_matrix(), (torch.ones(3, 3) - torch.eye(3)) / 2)
