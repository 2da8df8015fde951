"""The contract every registered loss keeps: reductions, bad input, stability, dtypes, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.losses.helpers import gradcheck_loss, make_batch
from trainables.losses import build_loss, get_loss_info, list_losses

METHODS = ["ce", "ls", "maxsup", "lspp", "lls", "label_relaxation", "focal", "confidence_penalty", "ols",
           "zipf_ls", "mbls"]


def test_every_method_of_the_issue_is_registered():
    assert sorted(list_losses()) == sorted(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_declared_hparams_are_consistent(name):
    info = get_loss_info(name)
    assert info.name == name and info.summary
    for h in info.hparams:
        assert h.check(h.default, name) == h.default
        for value in h.grid:
            h.check(value, name)
        if h.log:
            assert h.low is not None and h.low > 0
    learnable = [n for n, _ in build_loss(name, 3).named_parameters()]
    assert bool(learnable) == info.learnable


@pytest.mark.parametrize("name", METHODS)
def test_reductions_agree(name):
    logits, targets = make_batch(6, 5, dtype=torch.float32)
    per_sample = build_loss(name, 5, reduction="none").eval()(logits, targets)
    total = build_loss(name, 5, reduction="sum").eval()(logits, targets)
    mean = build_loss(name, 5).eval()(logits, targets)
    assert per_sample.shape == (6,)
    assert torch.allclose(per_sample.sum(), total, rtol=1e-6)
    assert torch.allclose(mean, total / 6, rtol=1e-6)
    assert mean.dtype == torch.float32


@pytest.mark.parametrize("name", METHODS)
def test_invariant_to_a_constant_added_to_all_logits(name):
    logits, targets = make_batch(5, 6)
    loss = build_loss(name, 6, reduction="none").double().eval()
    assert torch.allclose(loss(logits, targets), loss(logits + 7.5, targets), atol=1e-9)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "lspp"])  # lspp: split gradients, see its test
def test_gradcheck_float64(name):
    assert gradcheck_loss(name)


def _extreme_cases(num_classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    signs = torch.randint(0, 2, (8, num_classes), generator=gen) * 2.0 - 1.0
    targets = torch.randint(0, num_classes, (8,), generator=gen)
    confident_right = torch.full((2, num_classes), -100.0)
    confident_right[:, 0] = 100.0
    tied = torch.zeros(3, num_classes)
    tied[:, :2] = 50.0  # two tied maxima, target among them or not
    return [
        (100.0 * signs, targets),
        (confident_right, torch.tensor([0, 1])),  # right and confidently wrong
        (torch.zeros(4, num_classes), targets[:4]),  # all logits equal
        (tied, torch.tensor([0, 1, num_classes - 1])),
    ]


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("num_classes", [2, 10, 1000])
@pytest.mark.parametrize("name", METHODS)
def test_finite_values_and_gradients_on_extreme_logits(name, num_classes, bf16):
    loss = build_loss(name, num_classes, reduction="none")
    for logits, targets in _extreme_cases(num_classes):
        logits = logits.to(torch.bfloat16 if bf16 else torch.float32).requires_grad_()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
            values = loss(logits, targets)
        values.sum().backward()
        assert values.dtype == torch.float32
        assert torch.isfinite(values).all(), (name, values)
        assert torch.isfinite(logits.grad).all(), name
        for p in loss.parameters():
            assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("name", METHODS)
def test_bf16_autocast_computes_in_float32(name):
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 10)
    x, targets = torch.randn(16, 8) * 30, torch.randint(0, 10, (16,))
    loss = build_loss(name, 10)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = layer(x)
        value = loss(logits, targets)
    assert logits.dtype == torch.bfloat16
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(layer.weight.grad).all()
    reference = build_loss(name, 10)(logits.detach().float(), targets)
    assert torch.allclose(value, reference)


def test_unknown_method_lists_the_registered_names():
    with pytest.raises(ValueError, match="unknown loss 'nope'; known: ce, confidence_penalty"):
        build_loss("nope", 3)


@pytest.mark.parametrize(
    ("name", "hparams", "field"),
    [
        ("ls", {"gamma": 2.0}, "ls.gamma"),
        ("ce", {"alpha": 0.1}, "ce.alpha"),
        ("ls", {"alpha": 1.5}, "ls.alpha"),
        ("focal", {"gamma": -1.0}, "focal.gamma"),
        ("maxsup", {"variant": "logits"}, "maxsup.variant"),
        ("lls", {"alpha": 0.0}, "lls.alpha"),
        ("mbls", {"margin": "10"}, "mbls.margin"),
    ],
)
def test_bad_hyperparameters_name_the_field(name, hparams, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        build_loss(name, 3, **hparams)


@pytest.mark.parametrize("num_classes", [1, 0, 2.0, True])
def test_num_classes_below_two_is_rejected(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        build_loss("ls", num_classes)


@pytest.mark.parametrize("name", METHODS)
def test_bad_targets_and_shapes_are_rejected(name):
    loss = build_loss(name, 3)
    with pytest.raises(ValueError, match="targets"):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="targets"):
        loss(torch.zeros(2, 3), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="targets has dtype"):
        loss(torch.zeros(2, 3), torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match="logits"):
        loss(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        build_loss(name, 3, reduction="avg")


@pytest.mark.parametrize("name", METHODS)
def test_target_matrix_rows_are_distributions_or_absent(name):
    loss = build_loss(name, 4)
    for p in loss.parameters():
        torch.nn.init.normal_(p, std=2.0)
    matrix = loss.target_matrix()
    if name in ("lspp", "lls", "ols"):
        assert matrix.shape == (4, 4) and (matrix >= 0).all()
        assert torch.allclose(matrix.sum(dim=1), torch.ones(4))
    else:
        assert matrix is None


@pytest.mark.parametrize("name", METHODS)
def test_state_dict_round_trip_restores_the_loss(name):
    logits, targets = make_batch(8, 5, dtype=torch.float32)
    trained = build_loss(name, 5, reduction="none")
    for p in trained.parameters():
        torch.nn.init.normal_(p)
    trained.on_epoch_start(3, 10)
    trained(logits, targets)
    trained.on_epoch_end()
    restored = build_loss(name, 5, reduction="none")
    restored.load_state_dict(trained.state_dict())
    trained.eval(), restored.eval()
    assert torch.equal(trained(logits, targets), restored(logits, targets))


def test_a_loss_that_has_no_smoothing_equals_cross_entropy():
    logits, targets = make_batch(7, 5)
    ce = F.cross_entropy(logits, targets, reduction="none")
    no_smoothing = {"ls": {"alpha": 0.0}, "maxsup": {"alpha": 0.0, "schedule": "constant"},
                    "label_relaxation": {"alpha": 0.0}, "focal": {"gamma": 0.0}}
    for name, hparams in no_smoothing.items():
        value = build_loss(name, 5, reduction="none", **hparams).double()(logits, targets)
        assert torch.allclose(value, ce), name
    assert math.isclose(float(build_loss("ce", 5).double()(logits, targets)), float(ce.mean()), rel_tol=1e-12)
