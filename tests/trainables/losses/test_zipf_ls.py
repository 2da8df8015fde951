import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss


def _plain(logits, targets, weight, power):
    """Rank the detached logits among all classes (ties share the lower rank), Zipf weights, drop the target,
    renormalise, KL to the softmax of the non-target logits, sample by sample."""
    rows = []
    for z, y in zip(logits, targets.tolist()):
        d = z.detach()
        ranks = torch.stack([1 + (d > v).sum() for v in d]).to(logits.dtype)
        zipf = torch.cat([ranks[:y], ranks[y + 1:]]) ** -power
        zipf = zipf / zipf.sum()
        others = torch.cat([z[:y], z[y + 1:]])
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
    # y = 0 ranks 2nd of all logits: non-target ranks 1 and 2 (class 2 ties with y), zipf = (2/3, 1/3)
    logits, targets = torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0])
    q = torch.tensor([1.0, 0.0]).softmax(dim=0)
    zipf = torch.tensor([2 / 3, 1 / 3])
    expected = F.cross_entropy(logits, targets) + (zipf * (zipf / q).log()).sum()
    assert torch.allclose(build_loss("zipf_ls", 3)(logits, targets), expected)


def test_ranks_count_the_target():
    # y = 0 is the top logit, so the others rank 2 and 3 among all classes: zipf ∝ (1/2, 1/3) = (0.6, 0.4)
    logits, targets = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
    q = torch.tensor([1.0, 0.0]).softmax(dim=0)
    zipf = torch.tensor([0.6, 0.4])
    expected = F.cross_entropy(logits, targets) + (zipf * (zipf / q).log()).sum()
    assert torch.allclose(build_loss("zipf_ls", 3)(logits, targets), expected)


def test_two_classes_reduce_to_cross_entropy():
    logits, targets = make_batch(5, 2)
    value = build_loss("zipf_ls", 2, reduction="none").double()(logits, targets)
    assert torch.allclose(value, F.cross_entropy(logits, targets, reduction="none"))
