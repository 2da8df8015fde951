import math

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import gradcheck_loss, make_batch
from trainables.losses import build_loss

LOGITS = torch.tensor([[3.0, 1.0, -1.0], [0.0, 2.0, 1.0]])
TARGETS = torch.tensor([0, 2])


def _ce(row, y):
    return math.log(sum(math.exp(v) for v in row)) - row[y]


def test_logit_form_by_hand():
    # row 0: top logit is the target; row 1: top logit 2.0 is a wrong class
    expected = [_ce([3, 1, -1], 0) + 0.1 * (3 - 1), _ce([0, 2, 1], 2) + 0.1 * (2 - 1)]
    loss = build_loss("maxsup", 3, reduction="none", schedule="constant", alpha=0.1)
    assert torch.allclose(loss(LOGITS, TARGETS), torch.tensor(expected))


def test_probability_forms_by_hand():
    z = [[3.0, 1.0, -1.0], [0.0, 2.0, 1.0]]
    top_other = []
    for row, y in zip(z, [0, 2]):
        total = sum(math.exp(v) for v in row)
        top_other.append(max(math.exp(v) / total for k, v in enumerate(row) if k != y))
    ce = [_ce(z[0], 0), _ce(z[1], 2)]
    prob = build_loss("maxsup", 3, reduction="none", schedule="constant", alpha=0.3, variant="prob")
    assert torch.allclose(prob(LOGITS, TARGETS), torch.tensor([c + 0.3 * q for c, q in zip(ce, top_other)]))
    hinge = build_loss("maxsup", 3, reduction="none", schedule="constant", alpha=0.3, variant="prob_hinge",
                       hinge_margin=0.2)
    expected = [c + 0.3 * max(0.0, q - 0.2) for c, q in zip(ce, top_other)]
    assert top_other[0] < 0.2 < top_other[1]  # one sample on each side of the hinge
    assert torch.allclose(hinge(LOGITS, TARGETS), torch.tensor(expected))


def test_nothing_is_detached():
    logits = LOGITS.clone().requires_grad_()
    build_loss("maxsup", 3, reduction="sum", schedule="constant", alpha=0.5)(logits, TARGETS).backward()
    p = LOGITS.softmax(dim=1)
    onehot = F.one_hot(TARGETS, 3).float()
    top = F.one_hot(LOGITS.argmax(dim=1), 3).float()
    expected = p - onehot + 0.5 * (top - 1 / 3)
    assert torch.allclose(logits.grad, expected)


def test_ramp_goes_linearly_from_ramp_start_times_alpha_up_to_alpha():
    loss = build_loss("maxsup", 3, alpha=0.2, ramp_start=0.5)  # the official code's 0.1 -> 0.2
    assert float(loss.alpha_now) == pytest.approx(0.1)
    for epoch, expected in [(0, 0.1), (2, 0.15), (4, 0.2)]:
        loss.on_epoch_start(epoch, 5)
        assert float(loss.alpha_now) == pytest.approx(expected)
    loss.on_epoch_start(0, 1)
    assert float(loss.alpha_now) == pytest.approx(0.1)
    constant = build_loss("maxsup", 3, alpha=0.1, schedule="constant")
    constant.on_epoch_start(4, 5)
    assert float(constant.alpha_now) == pytest.approx(0.1)


def test_ramp_weight_is_used_and_restored_from_a_checkpoint():
    loss = build_loss("maxsup", 3, reduction="none", alpha=0.4, ramp_start=0.0)
    loss.on_epoch_start(1, 3)
    restored = build_loss("maxsup", 3, reduction="none", alpha=0.4, ramp_start=0.0)
    restored.load_state_dict(loss.state_dict())
    expected = F.cross_entropy(LOGITS, TARGETS, reduction="none") + 0.2 * torch.tensor([2.0, 1.0])
    assert torch.allclose(restored(LOGITS, TARGETS), expected)


@pytest.mark.parametrize(("epoch", "total"), [(5, 5), (-1, 5), (0, 0)])
def test_bad_epoch_is_rejected(epoch, total):
    with pytest.raises(ValueError, match="epoch"):
        build_loss("maxsup", 3).on_epoch_start(epoch, total)


def test_alpha_zero_gives_cross_entropy_in_every_variant():
    logits, targets = make_batch(6, 4)
    for variant in ("logit", "prob", "prob_hinge"):
        loss = build_loss("maxsup", 4, reduction="none", alpha=0.0, variant=variant).double()
        assert torch.allclose(loss(logits, targets), F.cross_entropy(logits, targets, reduction="none"))


@pytest.mark.parametrize("variant", ["prob", "prob_hinge"])
def test_gradcheck_probability_variants(variant):
    assert gradcheck_loss("maxsup", variant=variant, hinge_margin=0.05)


def test_every_searched_alpha_is_an_upward_ramp_and_unused_settings_are_not_reported():
    from analysis.core.registry import used_hparams
    from trainables.losses import get_loss_info

    for alpha in (0.0, 0.05, 0.3, 0.5):
        loss = build_loss("maxsup", 3, alpha=alpha)
        weights = []
        for epoch in range(4):
            loss.on_epoch_start(epoch, 4)
            weights.append(float(loss.alpha_now))
        assert weights == sorted(weights) and weights[-1] == pytest.approx(alpha)
    declared = get_loss_info("maxsup").hparams
    shown = used_hparams(declared, {"alpha": 0.3, "ramp_start": 0.5, "schedule": "constant", "variant": "logit",
                                    "hinge_margin": 0.1})
    assert shown == {"alpha": 0.3, "schedule": "constant", "variant": "logit"}
    assert "hinge_margin" in used_hparams(declared, {"variant": "prob_hinge", "hinge_margin": 0.1})
