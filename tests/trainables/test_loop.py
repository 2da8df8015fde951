"""The training loop on digits with the MLP: a few small epochs each, so the whole file runs in seconds."""

import math
import random

import numpy as np
import pytest
import torch

from analysis.metrics.representation import centre_distance_spread
from tests.conftest import digits_config, untimed
from trainables import trainer as trainer_module
from trainables.config import TrialConfig
from trainables.data import RawData, TensorDataset, get_dataset_info
from trainables.loop import run_local
from trainables.losses import LOSSES
from trainables.trainer import Trainer, TrainingDiverged

EPOCHS = 3


def small_config(**overrides) -> TrialConfig:
    return digits_config(**{"epochs": EPOCHS, **overrides})


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, exact: bool = True) -> None:
    """Bit for bit, or (``exact=False``) within ``torch.testing.assert_close``'s float32 tolerance."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if exact:
            assert torch.equal(sa[key], sb[key]), key
        else:
            torch.testing.assert_close(sa[key], sb[key], msg=key)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def reference(one_thread):
    """One uninterrupted run: (trainer after the last epoch, epoch metrics)."""
    trainer = Trainer(small_config())
    history = [trainer.train_epoch() for _ in range(EPOCHS)]
    return trainer, history


def test_learns_digits(reference):
    trainer, history = reference
    assert [m["epoch"] for m in history] == [1, 2, 3] and trainer.done
    for key in ("train/loss", "train/acc", "train/lr", "val/acc", "val/nll", "val/ece", "val/aurc"):
        assert all(math.isfinite(m[key]) for m in history), key
    losses = [m["train/loss"] for m in history]
    assert losses[0] > losses[1] > losses[2]
    assert losses[2] < 0.5 * losses[0]
    assert history[-1]["val/acc"] > 0.8  # chance is 0.1
    assert history[-1]["val/nll"] < history[0]["val/nll"]


def test_cosine_schedule_reaches_zero(reference):
    trainer, history = reference
    steps = trainer.steps_per_epoch
    assert steps == 480 // 64  # 600 images, 120 for validation, full batches only
    # lr after epoch e of E: 0.1 · ½(1 + cos(π e / E))
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in (1, 2, 3)]
    assert [m["train/lr"] for m in history] == pytest.approx(expected, abs=1e-12)


def test_deterministic_on_cpu(reference):
    ref_trainer, ref_history = reference
    trainer = Trainer(small_config())
    history = [trainer.train_epoch() for _ in range(EPOCHS)]
    assert [untimed(m) for m in history] == [untimed(m) for m in ref_history]
    assert_same_weights(trainer.model, ref_trainer.model)


def test_resume_continues_exactly(reference, tmp_path):
    ref_trainer, ref_history = reference
    first = Trainer(small_config())
    first.train_epoch()
    path = tmp_path / "checkpoint.pt"
    torch.save(first.state_dict(), path)
    saved_rng = torch.get_rng_state()
    del first

    resumed = Trainer(small_config())
    torch.manual_seed(999), np.random.seed(999), random.seed(999)  # the restore must undo these
    resumed.load_state_dict(torch.load(path, weights_only=True))
    assert resumed.epoch == 1 and not resumed.done
    assert torch.equal(torch.get_rng_state(), saved_rng)
    history = [resumed.train_epoch() for _ in range(EPOCHS - 1)]
    assert [untimed(m) for m in history] == [untimed(m) for m in ref_history[1:]]
    assert_same_weights(resumed.model, ref_trainer.model)
    assert resumed.done


def test_final_evaluation(reference):
    trainer, _ = reference
    final = trainer.final_evaluation()
    for key in ("val/acc", "val/nll", "test/acc", "test/nll", "test/ece", "test/aurc"):
        assert math.isfinite(final.metrics[key]), key
    assert final.metrics["test/acc"] > 0.8
    assert final.per_sample["label"].shape == (297,)  # digits' fixed test set, untouched by the split
    assert final.class_names == tuple(str(i) for i in range(10))
    assert final.matrices == {}  # CE learns no target matrix


def test_run_local_reports_each_epoch():
    seen = []
    history, final = run_local(small_config(epochs=1, subset=200), on_epoch=seen.append)
    assert seen == history and len(history) == 1 and "test/acc" in final.metrics


def test_nan_learning_rate_diverges():
    trainer = Trainer(small_config(subset=200))
    trainer.scheduler.base_lrs = [float("nan")] * len(trainer.optimizer.param_groups)
    for group in trainer.optimizer.param_groups:
        group["lr"] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"train/loss became nan in epoch 1"):
        trainer.train_epoch()


def test_huge_learning_rate_diverges():
    trainer = Trainer(small_config(subset=200, lr=1e9))
    with pytest.raises(TrainingDiverged, match="became NaN or inf|became nan|became inf"):
        for _ in range(EPOCHS):
            trainer.train_epoch()


def test_optimizer_and_step_schedule():
    trainer = Trainer(small_config(subset=200, optimizer="adamw", lr=0.01, weight_decay=0.05, schedule="step",
                                   step_size=2, step_gamma=0.5))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.05
    steps = trainer.steps_per_epoch
    assert [trainer._lr_factor(s) for s in (0, 2 * steps - 1, 2 * steps, 4 * steps)] == [1.0, 1.0, 0.5, 0.25]
    sgd = Trainer(small_config(subset=200, momentum=0.0))
    assert isinstance(sgd.optimizer, torch.optim.SGD)
    assert sgd.optimizer.param_groups[0]["nesterov"] is False  # Nesterov needs momentum


@pytest.mark.parametrize("momentum, nesterov, weight_decay", [(0.9, True, 0.0), (0.9, False, 0.0), (0.0, False, 0.0),
                                                               (0.9, True, 5e-4)])
def test_fused_sgd_step_is_the_default_step_but_for_a_tensor_s_scalar_tail(momentum, nesterov, weight_decay):
    # The fused CPU kernel runs whole SIMD vectors as the default step does; the last numel % width elements go
    # through scalar code, which may round a few ulps apart (seen on an AVX2 CPU, not on an AVX-512 one).
    gen = torch.Generator().manual_seed(0)
    bulk, tail = 4096, 5  # 4096: a multiple of every vector width (8 or 16 floats)
    start = torch.randn(bulk + tail, generator=gen)
    grads = [torch.randn(bulk + tail, generator=gen) for _ in range(6)]

    def trajectory(**impl) -> torch.Tensor:
        param = torch.nn.Parameter(start.clone())
        opt = torch.optim.SGD([param], lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                              **impl)
        for step, grad in enumerate(grads):
            opt.param_groups[0]["lr"] = 0.1 / (1 + 0.37 * step)  # the schedule changes lr every step
            param.grad = grad.clone()
            opt.step()
        return param.detach()

    fused, default = trajectory(fused=True), trajectory(foreach=False)
    assert torch.equal(fused[:bulk], default[:bulk])
    torch.testing.assert_close(fused[bulk:], default[bulk:])
    assert not torch.allclose(fused, start)  # the steps moved it


@pytest.mark.parametrize("momentum, nesterov", [(0.9, True), (0.9, False), (0.0, False)])
def test_trainer_uses_fused_sgd_on_cpu_without_weight_decay_and_trains_as_the_default(momentum, nesterov):
    config = small_config(subset=300, epochs=2, momentum=momentum, nesterov=nesterov)
    fused = Trainer(config)
    assert fused.optimizer.defaults["fused"]
    assert not Trainer(small_config(subset=200, weight_decay=5e-4)).optimizer.defaults["fused"]
    plain = Trainer(config)
    group = plain.optimizer.defaults
    plain.optimizer = torch.optim.SGD(plain.model.parameters(), lr=group["lr"], momentum=momentum,
                                      nesterov=group["nesterov"], foreach=False)
    plain.scheduler = torch.optim.lr_scheduler.LambdaLR(plain.optimizer, plain._lr_factor)
    for _ in range(2):
        ours, theirs = untimed(fused.train_epoch()), untimed(plain.train_epoch())
        assert ours.keys() == theirs.keys()
        for key in ours:  # float32 rounding in a few tail elements per step, nothing more
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), key
    assert_same_weights(fused.model, plain.model, exact=False)


def test_cpu_autocast_only_when_asked():
    assert not Trainer(small_config(subset=200)).amp  # amp: true by default, for CUDA only
    assert not Trainer(small_config(subset=200, amp=False, amp_cpu=True)).amp
    bf16 = Trainer(small_config(subset=200, amp_cpu=True))
    assert bf16.amp and bf16._logits(bf16.val_data.images[:4]).dtype == torch.bfloat16
    assert math.isfinite(bf16.train_epoch()["train/loss"])


def test_resume_continues_exactly_with_cpu_autocast(tmp_path):
    config = small_config(subset=300, epochs=2, amp_cpu=True)
    straight = Trainer(config)
    history = [straight.train_epoch() for _ in range(2)]
    first = Trainer(config)
    first.train_epoch()
    torch.save(first.state_dict(), tmp_path / "checkpoint.pt")
    resumed = Trainer(config)
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    assert untimed(resumed.train_epoch()) == untimed(history[1])
    assert_same_weights(resumed.model, straight.model)


@pytest.mark.skipif("lspp" not in LOSSES, reason="lspp is not registered")
def test_learnable_loss_parameters_are_trained():
    trainer = Trainer(small_config(subset=200, epochs=1, loss="lspp", loss_params={"alpha": 0.2}))
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    loss_params = list(trainer.loss_fn.parameters())
    assert loss_params and all(id(p) in optimised for p in loss_params)
    before = [p.detach().clone() for p in loss_params]
    trainer.train_epoch()
    assert any(not torch.equal(b, p) for b, p in zip(before, loss_params))
    matrix = trainer.final_evaluation().matrices["lspp_targets"]
    assert matrix.shape == (10, 10)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)


REPRESENTATION_KEYS = ("d_within", "d_total", "r2", "centre_dist_spread")


@pytest.mark.parametrize("representation", [False, True])
def test_final_evaluation_reports_only_what_was_asked(representation):
    trainer = Trainer(small_config(subset=300, epochs=1, representation=representation, probe=True,
                                   probe_max_train=150))
    trainer.train_epoch()
    final = trainer.final_evaluation()
    assert "test/probe_acc" in final.metrics
    reported = [k for k in final.metrics if k.rsplit("/", 1)[-1] in REPRESENTATION_KEYS]
    if not representation:
        assert reported == [] and final.matrices == {}
        return
    assert {"test/r2", "train/r2", "test/centre_dist_spread"} <= set(reported)
    matrix = final.matrices["centre_distances"]  # the LLS paper's class-centre distances, K×K
    assert matrix.shape == (10, 10)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert final.metrics["test/centre_dist_spread"] == centre_distance_spread(matrix)


def test_transfer_dataset_is_read_from_its_own_directory(monkeypatch, tmp_path):
    """``data_dir`` names the main dataset's files: another transfer dataset resolves its own directory. The
    probe's training images are a seeded sample, not the first ones of a file sorted by label."""
    main_dir = str(tmp_path / "main")
    calls, probe_labels = [], []

    def fake_load(name, data_dir=None, download=False):
        calls.append((name, data_dir, download))
        images, labels = torch.zeros(60, 1, 28, 28, dtype=torch.uint8), torch.arange(60) // 6  # sorted
        images[:, 0, 0, :10] = (labels[:, None] * 20).to(torch.uint8)  # something for the probe to see
        return RawData(TensorDataset(images, labels), TensorDataset(images[::3], labels[::3]))

    def recording_results(*args, **kwargs):
        probe_labels.append(kwargs["transfer_train"].labels)
        return final_results(*args, **kwargs)

    final_results = trainer_module.final_results
    for transfer, expected_dir in (("fashion_mnist", None), ("mnist5k", main_dir)):
        trainer = Trainer(small_config(dataset="mnist5k", subset=200, epochs=1, data_dir=main_dir, download=True,
                                       probe=True, probe_max_train=40, transfer_dataset=transfer))
        monkeypatch.setattr(trainer_module, "load_dataset", fake_load)
        monkeypatch.setattr(trainer_module, "final_results", recording_results)
        trainer.train_epoch()
        assert "transfer/probe_acc" in trainer.final_evaluation().metrics
        assert calls[-1] == (transfer, expected_dir, True)
        assert len(probe_labels[-1]) == 40 and set(probe_labels[-1].tolist()) == set(range(10))
        monkeypatch.undo()
    monkeypatch.setenv("SMOOTHSTUDY_FASHION_MNIST_DIR", str(tmp_path / "fmnist"))
    assert get_dataset_info("fashion_mnist").resolve_dir(None) == tmp_path / "fmnist"  # what None leads to


@pytest.mark.parametrize("loss, params", [
    ("ols", {"alpha": 0.5}),  # S matrix updated at each epoch's end
    ("lspp", {"alpha": 0.3}),  # learnable C in the optimizer
    ("maxsup", {"alpha": 0.3, "ramp_start": 0.3, "schedule": "ramp"}),  # α follows the epoch
])
def test_stateful_losses_resume_exactly(loss, params, tmp_path):
    """Loss state (matrices, schedules, learnable targets and their optimizer state) survives a checkpoint."""
    cfg = small_config(loss=loss, loss_params=params)
    straight = Trainer(cfg)
    reference = [untimed(straight.train_epoch()) for _ in range(EPOCHS)]

    first = Trainer(cfg)
    first.train_epoch()
    torch.save(first.state_dict(), tmp_path / "checkpoint.pt")
    resumed = Trainer(cfg)
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    history = [untimed(resumed.train_epoch()) for _ in range(EPOCHS - 1)]
    assert history == reference[1:]
    for key, value in straight.loss_fn.state_dict().items():
        assert torch.equal(value, resumed.loss_fn.state_dict()[key]), key
