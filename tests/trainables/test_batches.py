import pytest
import torch

from trainables.data import TensorDataset
from trainables.data.batches import Normalizer, augment, eval_batches, train_batches


def numbered(n: int, size: int = 4) -> TensorDataset:
    values = torch.arange(n)
    return TensorDataset(values.to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, size, size).clone(), values)


def random_images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, c, h, w), generator=gen, dtype=torch.uint8)


def test_every_index_once_per_epoch():
    data = numbered(24)
    gen = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(2):
        seen = []
        for images, labels, idx in train_batches(data, 8, gen):
            assert images.shape == (8, 1, 4, 4) and images.dtype == torch.uint8
            assert torch.equal(labels, idx) and torch.equal(images[:, 0, 0, 0].long(), idx)
            seen += idx.tolist()
        assert sorted(seen) == list(range(24))
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # a fresh permutation each epoch
    assert epochs[0] != list(range(24))


def test_drop_last_and_short_dataset():
    gen = torch.Generator().manual_seed(0)
    sizes = [len(b[1]) for b in train_batches(numbered(10), 4, gen)]
    assert sizes == [4, 4]
    sizes = [len(b[1]) for b in train_batches(numbered(10), 4, gen, drop_last=False)]
    assert sizes == [4, 4, 2]
    sizes = [len(b[1]) for b in train_batches(numbered(3), 8, gen)]  # fewer images than one batch
    assert sizes == [3]


def test_seeded_order():
    def order(seed):
        return [b[2].tolist() for b in train_batches(numbered(16), 4, torch.Generator().manual_seed(seed))]
    assert order(5) == order(5) and order(5) != order(6)


def test_eval_batches_in_order():
    data = numbered(10)
    batches = list(eval_batches(data, 4))
    assert [len(lab) for _, lab in batches] == [4, 4, 2]
    assert torch.cat([lab for _, lab in batches]).tolist() == list(range(10))


def test_augment_keeps_shape_and_dtype():
    images = random_images(16, 3, 8, 8)
    out = augment(images, crop_padding=2, hflip=True, gen=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_crop_is_a_shifted_copy():
    p, h, w = 2, 6, 7
    images = random_images(64, 2, h, w)  # no zeros inside, so the zero padding is recognisable
    out = augment(images, crop_padding=p, hflip=False, gen=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    shifts = set()
    for i in range(len(images)):
        matches = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if torch.equal(out[i], padded[i, :, dy:dy + h, dx:dx + w])]
        assert len(matches) == 1, f"image {i} is not a shifted copy"
        shifts.add(matches[0])
    assert len(shifts) > 10  # shifts vary from image to image (25 possible)


def test_hflip_mirrors_about_half():
    images = random_images(200, 1, 5, 5)
    out = augment(images, crop_padding=0, hflip=True, gen=torch.Generator().manual_seed(2))
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, images)])
    mirrored = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, images)])
    assert (same ^ mirrored).all()
    assert 70 < int(mirrored.sum()) < 130


def test_no_augmentation_is_identity():
    images = random_images(4, 1, 5, 5)
    assert torch.equal(augment(images, 0, False, torch.Generator()), images)


def test_train_batches_augment_applies_to_batch():
    data = TensorDataset(random_images(32, 1, 6, 6), torch.zeros(32, dtype=torch.long))
    gen = torch.Generator().manual_seed(3)
    changed = 0
    for images, _, idx in train_batches(data, 8, gen, crop_padding=1, hflip=True):
        changed += sum(not torch.equal(a, b) for a, b in zip(images, data.images[idx]))
    assert changed > 16


@pytest.mark.parametrize("channels", [1, 3])
def test_normalizer(channels):
    mean, std = (0.5, 0.25, 0.0)[:channels], (0.5, 0.25, 1.0)[:channels]
    norm = Normalizer(mean, std, torch.device("cpu"))
    images = torch.full((2, channels, 3, 3), 255, dtype=torch.uint8)
    images[1] = 0
    out = norm(images)
    assert out.dtype == torch.float32
    expected_white = [(1.0 - m) / s for m, s in zip(mean, std)]  # 1.0, 3.0, 1.0
    expected_black = [-m / s for m, s in zip(mean, std)]  # -1.0, -1.0, 0.0
    torch.testing.assert_close(out[0, :, 1, 1], torch.tensor(expected_white))
    torch.testing.assert_close(out[1, :, 0, 2], torch.tensor(expected_black))


def test_crop_and_flip_together_give_a_shifted_copy_or_its_mirror():
    p, h, w = 2, 6, 7
    images = random_images(64, 3, h, w)
    out = augment(images, crop_padding=p, hflip=True, gen=torch.Generator().manual_seed(4))
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    mirrored = 0
    for i in range(len(images)):
        crops = [padded[i, :, dy:dy + h, dx:dx + w] for dy in range(2 * p + 1) for dx in range(2 * p + 1)]
        plain = any(torch.equal(out[i], c) for c in crops)
        flipped = any(torch.equal(out[i], c.flip(2)) for c in crops)
        assert plain or flipped, f"image {i}"
        mirrored += flipped and not plain
    assert 15 < mirrored < 50


def test_train_batches_augment_as_augment_on_each_batch():
    """The epoch pads its images once and gathers each batch; the draws and images are those of augment()."""
    data = TensorDataset(random_images(40, 2, 6, 5), torch.arange(40))
    got = list(train_batches(data, 8, torch.Generator().manual_seed(5), crop_padding=2, hflip=True))
    gen = torch.Generator().manual_seed(5)
    order = torch.randperm(40, generator=gen)
    for k, (images, labels, idx) in enumerate(got):
        assert torch.equal(idx, order[8 * k:8 * k + 8]) and torch.equal(labels, idx)
        assert torch.equal(images, augment(data.images[idx], 2, True, gen))
