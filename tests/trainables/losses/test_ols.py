import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import make_batch
from trainables.losses import build_loss

# 4 samples, 3 classes: samples 0, 1 (class 0) and 3 (class 1) are right, sample 2 (class 2) is wrong
LOGITS = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [3.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
TARGETS = torch.tensor([0, 0, 2, 1])


def test_starts_as_label_smoothing():
    logits, targets = make_batch(6, 5)
    value = build_loss("ols", 5, alpha=0.4).double()(logits, targets)
    assert torch.allclose(value, F.cross_entropy(logits, targets, label_smoothing=0.4))


def test_soft_labels_become_mean_softmax_of_correct_samples_at_epoch_end():
    loss = build_loss("ols", 3)
    loss(LOGITS, TARGETS)
    before = loss.target_matrix()
    loss.on_epoch_end()
    p = LOGITS.softmax(dim=1)
    expected = torch.stack([(p[0] + p[1]) / 2, p[3], torch.full((3,), 1 / 3)])  # class 2 keeps its row
    assert torch.allclose(before, torch.full((3, 3), 1 / 3))
    assert torch.allclose(loss.target_matrix(), expected)
    assert loss.correct_counts.sum() == 0 and loss.prob_sums.abs().sum() == 0

    per_sample = build_loss("ols", 3, reduction="none")
    per_sample.load_state_dict(loss.state_dict())
    log_p = LOGITS.log_softmax(dim=1)
    manual = 0.5 * F.nll_loss(log_p, TARGETS, reduction="none") - 0.5 * (expected[TARGETS] * log_p).sum(dim=1)
    assert torch.allclose(per_sample.eval()(LOGITS, TARGETS), manual)


@pytest.mark.parametrize("mode", ["eval", "no_grad"])
def test_evaluation_does_not_accumulate(mode):
    loss = build_loss("ols", 3)
    if mode == "eval":
        loss.eval()
        loss(LOGITS, TARGETS)
    else:
        with torch.no_grad():
            loss(LOGITS, TARGETS)
    loss.on_epoch_end()
    assert torch.allclose(loss.target_matrix(), torch.full((3, 3), 1 / 3))


def test_gradient_flows_only_to_the_logits():
    logits = LOGITS.clone().requires_grad_()
    loss = build_loss("ols", 3)
    loss(logits, TARGETS).backward()
    assert logits.grad is not None and not loss.soft_labels.requires_grad
    assert list(loss.parameters()) == []
