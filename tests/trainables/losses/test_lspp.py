import math

import torch

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


def test_split_gradients_match_finite_differences():
    loss = _with_random_c()
    logits, targets = make_batch(3, 4)
    logits.requires_grad_()
    loss(logits, targets).backward()
    c = loss.c_logits.detach()

    def numeric(f, x, h=1e-6):
        grad = torch.zeros_like(x)
        for i in range(x.numel()):
            step = torch.zeros_like(x).view(-1)
            step[i] = h
            grad.view(-1)[i] = (f(x + step.view_as(x)) - f(x - step.view_as(x))) / (2 * h)
        return grad

    z = logits.detach()
    t_fixed = (0.8 * torch.eye(4, dtype=z.dtype)[targets] + 0.2 * _plain_matrix(c)[targets])
    first = numeric(lambda x: 0.5 * -(t_fixed * (x.softmax(1) + EPS).log()).sum(), z)
    second = numeric(lambda x: _terms(z, targets, x, 0.2)[1].sum(), c)
    assert torch.allclose(logits.grad, first, atol=1e-6)
    assert torch.allclose(loss.c_logits.grad, second, atol=1e-6)


def test_target_matrix_has_zero_diagonal_and_unit_rows():
    loss = _with_random_c(k=5)
    matrix = loss.target_matrix()
    assert torch.equal(matrix.diagonal(), torch.zeros(5))
    assert torch.allclose(matrix.sum(dim=1), torch.ones(5))
    assert torch.allclose(matrix, _plain_matrix(loss.c_logits.detach()).float())
    assert torch.allclose(build_loss("lspp", 3).target_matrix(), (torch.ones(3, 3) - torch.eye(3)) / 2)
