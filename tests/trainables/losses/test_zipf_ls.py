import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def _plain(logits, targets, weight, power):
    """Rank the detached non-target logits, build Zipf weights, KL to their softmax, sample by sample."""
    k = logits.shape[1]
    rows = []
    for z, y in zip(logits, targets.tolist()):
        others = torch.cat([z[:y], z[y + 1:]])
        order = others.detach().argsort(descending=True)
        ranks = torch.empty(k - 1, dtype=logits.dtype)
        ranks[order] = torch.arange(1, k, dtype=logits.dtype)
        zipf = ranks ** -power / (ranks ** -power).sum()
        rows.append((zipf * (zipf.log() - others.log_softmax(dim=0))).sum())
    return F.cross_entropy(logits, targets, reduction="none") + weight * torch.stack(rows)


@pytest.mark.parametrize(("weight", "power"), [(1.0, 1.0), (0.3, 2.0)])
def test_value_and_gradient_match_plain_ranking(weight, power):
    logits, targets = make_batch(6, 7)
    logits.requires_grad_()
    z_ref = logits.detach().clone().requires_grad_()
    value = build_loss("zipf_ls", 7, reduction="none", weight=weight, power=power).double()(logits, targets)
    expected = _plain(z_ref, targets, weight, power)
    assert torch.allclose(value, expected)
    value.sum().backward()
    expected.sum().backward()
    assert torch.allclose(logits.grad, z_ref.grad)


def test_value_by_hand_with_three_classes():
    # y = 0, non-target logits (1, 0): zipf = (2/3, 1/3), q = softmax(1, 0)
    logits, targets = torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0])
    q = torch.tensor([1.0, 0.0]).softmax(dim=0)
    zipf = torch.tensor([2 / 3, 1 / 3])
    expected = F.cross_entropy(logits, targets) + (zipf * (zipf / q).log()).sum()
    assert torch.allclose(build_loss("zipf_ls", 3)(logits, targets), expected)


def test_two_classes_reduce_to_cross_entropy():
    logits, targets = make_batch(5, 2)
    value = build_loss("zipf_ls", 2, reduction="none").double()(logits, targets)
    assert torch.allclose(value, F.cross_entropy(logits, targets, reduction="none"))
