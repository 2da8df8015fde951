"""The switches that reproduce a paper's own training code: schedule, inputs, init, splits, what is trained on."""

import math

import numpy as np
import pytest
import torch

from analysis.metrics.calibration import TEMPERATURE_GRID, ece_from_logits, temperature_by_ece
from tests.conftest import digits_config
from trainables import trainer as trainer_module
from trainables.config import TrialConfig, config_from_flat, flatten
from trainables.data import RawData, TensorDataset
from trainables.data.batches import Normalizer
from trainables.data.splits import make_splits
from trainables.trainer import Trainer


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


def numbered(n_train: int, n_test: int) -> RawData:
    """Images whose first two pixels spell their index (0 … n_train + n_test - 1), so every image is traceable."""
    def part(start: int, n: int) -> TensorDataset:
        ids = torch.arange(start, start + n)
        images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
        images[:, 0, 0, 0], images[:, 0, 0, 1] = (ids // 256).to(torch.uint8), (ids % 256).to(torch.uint8)
        return TensorDataset(images, ids % 10)
    return RawData(train=part(0, n_train), test=part(n_train, n_test))


def ids(data: TensorDataset) -> set[int]:
    return set((data.images[:, 0, 0, 0].long() * 256 + data.images[:, 0, 0, 1].long()).tolist())


def test_per_seed_resampling_draws_disjoint_official_sizes_from_the_seed():
    raw = numbered(600, 100)
    a = make_splits(raw, 0.25, seed=3, resample=True)
    train, val, test = ids(a.train), ids(a.val), ids(a.test)
    assert (len(a.train) + len(a.val), len(a.test)) == (600, 100)
    assert len(val) == 150 and not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(700))
    assert test != set(range(600, 700))  # redrawn, not the official test set
    again = make_splits(raw, 0.25, seed=3, resample=True)
    assert (ids(again.train), ids(again.val), ids(again.test)) == (train, val, test)
    assert ids(make_splits(raw, 0.25, seed=4, resample=True).test) != test


def test_without_resampling_the_test_set_is_the_official_one():
    raw = numbered(600, 100)
    assert ids(make_splits(raw, 0.25, seed=3).test) == set(range(600, 700))


def test_multistep_schedule_with_keras_decay_per_step():
    cfg = digits_config(schedule="multistep", milestones=[1, 3], step_gamma=0.5, lr_decay=0.01, epochs=4, lr=0.1)
    t = Trainer(cfg)
    n = t.steps_per_epoch
    for step in (0, n - 1, n, 3 * n - 1, 3 * n, 4 * n - 1):
        gamma = 0.5 ** ((step >= n) + (step >= 3 * n))
        assert math.isclose(t._lr_factor(step), gamma / (1 + 0.01 * step))
    seen = [t.train_epoch()["train/lr"] for _ in range(4)]  # the rate after each epoch's last step
    expected = [0.1 * 0.5 ** ((e * n >= n) + (e * n >= 3 * n)) / (1 + 0.01 * e * n) for e in (1, 2, 3, 4)]
    assert np.allclose(seen, expected)


def test_multistep_needs_increasing_milestones():
    with pytest.raises(ValueError, match="milestones"):
        TrialConfig(schedule="multistep")
    with pytest.raises(ValueError, match=r"milestones=\[3, 2\]"):
        TrialConfig(schedule="multistep", milestones=[3, 2])


def test_milestones_survive_a_table_row():
    cfg = TrialConfig(schedule="multistep", milestones=[20, 40])
    flat = flatten(cfg.to_dict())
    assert flat["milestones"] == "20,40"
    assert config_from_flat(flat).milestones == (20, 40)


def test_augmentation_off_trains_on_the_images_as_they_are(monkeypatch):
    calls = []
    original = trainer_module.train_batches

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_batches", spy)
    Trainer(digits_config(augment=False, epochs=1)).train_epoch()
    assert calls == [{"crop_padding": 0, "hflip": False}]


def test_train_val_trains_on_every_training_row():
    plain = Trainer(digits_config())
    both = Trainer(digits_config(train_on="train_val"))
    assert len(both.train_data) == len(plain.train_data) + len(plain.val_data)
    assert torch.equal(both.val_data.labels, plain.val_data.labels)
    rows = torch.cat([plain.train_data.images, plain.val_data.images]).flatten(1)
    assert torch.equal(both.train_data.images.flatten(1), rows)


def test_pixel_mean_inputs_are_centred_per_pixel_and_scaled_by_255():
    t = Trainer(digits_config(normalize="pixel_mean"))
    x = t.normalize(t.train_data.images)
    assert torch.allclose(x.mean(dim=0), torch.zeros_like(x[0]), atol=1e-5)
    diff = t.normalize(t.train_data.images[:1]) - t.normalize(torch.zeros_like(t.train_data.images[:1]))
    assert torch.allclose(diff, t.train_data.images[:1].float() / 255.0, atol=1e-6)


def test_normalizer_pixel_mean_by_hand():
    images = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)
    out = Normalizer.pixel_mean(images)(images)
    assert torch.allclose(out, torch.tensor([[[[-0.5, 0.0]]], [[[0.5, 0.0]]]]))


def test_glorot_init_zero_biases_and_bounded_weights():
    t = Trainer(digits_config(init="glorot"))
    default = Trainer(digits_config())
    for module in t.model.modules():
        if isinstance(module, torch.nn.Linear):
            bound = math.sqrt(6.0 / (module.in_features + module.out_features))
            assert torch.all(module.bias == 0)
            assert module.weight.abs().max() <= bound and module.weight.abs().max() > 0.9 * bound
    assert not torch.equal(t.model.head.weight, default.model.head.weight)


def test_temperature_by_ece_takes_the_grid_value_with_the_lowest_ece_first_on_ties():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 5)) * 3
    labels = rng.integers(0, 5, size=400)
    errors = [ece_from_logits(logits / t, labels) for t in TEMPERATURE_GRID]
    assert temperature_by_ece(logits, labels) == TEMPERATURE_GRID[int(np.argmin(errors))]
    assert len(TEMPERATURE_GRID) == 16 and TEMPERATURE_GRID[3:14] == tuple(round(1 + 0.1 * i, 1) for i in range(11))
    # two temperatures with the same ECE: the first of the grid wins
    same = np.zeros((10, 3))
    assert temperature_by_ece(same, np.zeros(10, dtype=int), grid=(2.0, 1.0)) == 2.0
