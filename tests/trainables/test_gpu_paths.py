"""The Trainer's CUDA code paths: bf16 autocast, channels_last, torch.compile, checkpoints with CUDA RNG state,
seed groups. Skipped without a CUDA device (they run on the GPU machine through benchmarks/gpu/run.py); the
same behaviours on CPU are covered by test_loop.py and test_seed_group.py."""

import math

import pytest
import torch

from trainables.config import TrialConfig
from trainables.peak_memory import peak_memory_mb, reset_peak_memory
from trainables.seed_group import SeedGroup
from trainables.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def gpu_config(**overrides) -> TrialConfig:
    values = dict(dataset="digits", model="small_cnn", subset=600, val_fraction=0.2, epochs=2, batch_size=64,
                  lr=0.05, device="cuda", representation=True, probe=True, probe_max_train=300, seed=3)
    values.update(overrides)
    return TrialConfig(**values)


def test_amp_forward_is_bf16_and_training_finite():
    trainer = Trainer(gpu_config())
    assert trainer.amp and trainer.device.type == "cuda"
    images = trainer.train_data.images[:8]
    assert trainer._logits(images).dtype == torch.bfloat16
    metrics = trainer.train_epoch()
    assert math.isfinite(metrics["train/loss"]) and 0.0 <= metrics["val/acc"] <= 1.0
    assert next(trainer.model.parameters()).dtype == torch.float32  # autocast keeps fp32 master weights


def test_amp_off_gives_fp32_logits():
    trainer = Trainer(gpu_config(amp=False))
    assert trainer._logits(trainer.train_data.images[:8]).dtype == torch.float32


def test_convolutional_model_is_channels_last_mlp_is_not():
    conv = Trainer(gpu_config())
    weight = next(p for p in conv.model.parameters() if p.dim() == 4)
    assert conv.channels_last and weight.is_contiguous(memory_format=torch.channels_last)
    assert not Trainer(gpu_config(model="mlp")).channels_last


def test_data_lives_on_the_gpu():
    trainer = Trainer(gpu_config())
    assert trainer.train_data.images.is_cuda and trainer.test_data.labels.is_cuda


def test_final_evaluation_on_gpu():
    trainer = Trainer(gpu_config(epochs=1, shift_severity=2))
    trainer.train_epoch()
    final = trainer.final_evaluation()
    for key in ("test/acc", "test/ece", "test/aurc", "test/r2"):
        assert math.isfinite(final.metrics[key]), key


def test_checkpoint_resumes_on_gpu():
    """Two epochs straight vs one, a checkpoint through CPU memory, one more: the same weights up to the
    GPU's non-deterministic reductions."""
    straight = Trainer(gpu_config(model="mlp"))
    for _ in range(2):
        straight.train_epoch()
    first = Trainer(gpu_config(model="mlp"))
    first.train_epoch()
    state = {k: v for k, v in first.state_dict().items()}
    state["model"] = {k: v.cpu() for k, v in state["model"].items()}
    resumed = Trainer(gpu_config(model="mlp"))
    resumed.load_state_dict(state)
    resumed.train_epoch()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-3, atol=1e-3)


def test_seed_group_on_gpu_keeps_cuda_rng_per_seed():
    group = SeedGroup(gpu_config(model="mlp", seeds_per_trial=2, representation=False, probe=False))
    assert all("cuda" in state for state in group.rng_states)
    metrics = group.train_epoch()
    assert math.isfinite(metrics["train/loss"])
    a, b = (t.model.state_dict() for t in group.trainers)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_peak_memory_counts_cuda_tensors():
    device = torch.device("cuda")
    reset_peak_memory(device)
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    assert peak_memory_mb(device) >= 64
    del block


def test_compile_on_gpu_trains_like_eager():
    eager = Trainer(gpu_config(model="mlp", amp=False, representation=False, probe=False))
    compiled = Trainer(gpu_config(model="mlp", amp=False, compile=True, representation=False, probe=False))
    assert compiled.forward is not compiled.model
    e = [eager.train_epoch()["val/acc"] for _ in range(2)]
    c = [compiled.train_epoch()["val/acc"] for _ in range(2)]
    assert c[-1] == pytest.approx(e[-1], abs=0.05)
