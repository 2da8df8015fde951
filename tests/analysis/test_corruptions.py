import pytest
import torch

from trainables.data.corruptions import BLUR_SIGMA, NOISE_SIGMA, corrupt, list_corruptions


def _images(n=4, c=1, size=28, seed=0):
    return torch.randint(
        0, 256, (n, c, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_registry_and_default():
    assert list_corruptions() == ["blur_noise", "gaussian_blur", "gaussian_noise"]
    x = _images()
    assert torch.equal(corrupt(x, severity=2, seed=3), corrupt(x, 2, 3, corruption="blur_noise"))


@pytest.mark.parametrize("name", ["gaussian_noise", "gaussian_blur", "blur_noise"])
def test_shape_dtype_and_input_untouched(name):
    x = _images(c=3, size=32)
    before = x.clone()
    out = corrupt(x, severity=3, seed=1, corruption=name)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(x, before)
    assert not torch.equal(out, x)


def test_noise_is_seeded():
    x = _images()
    a = corrupt(x, 2, seed=5, corruption="gaussian_noise")
    assert torch.equal(a, corrupt(x, 2, seed=5, corruption="gaussian_noise"))
    assert not torch.equal(a, corrupt(x, 2, seed=6, corruption="gaussian_noise"))


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_noise_level_matches_severity(severity):
    grey = torch.full((64, 1, 28, 28), 128, dtype=torch.uint8)
    diff = corrupt(grey, severity, seed=0, corruption="gaussian_noise").float() - 128
    assert diff.mean().abs() < 0.5
    assert diff.std().item() == pytest.approx(NOISE_SIGMA[severity - 1] * 255, rel=0.05)


def test_blur_keeps_constant_images_and_smooths_more_with_severity():
    flat = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(corrupt(flat, 5, corruption="gaussian_blur"), flat)
    impulse = torch.zeros(1, 1, 15, 15, dtype=torch.uint8)
    impulse[0, 0, 7, 7] = 255
    peaks = [corrupt(impulse, s, corruption="gaussian_blur")[0, 0, 7, 7].item() for s in range(1, 6)]
    assert 255 > peaks[0] and all(a > b for a, b in zip(peaks, peaks[1:]))
    assert len(BLUR_SIGMA) == 5


def test_blur_is_deterministic_and_preserves_mass():
    x = _images(size=20)
    a, b = (
        corrupt(x, 4, seed=0, corruption="gaussian_blur"),
        corrupt(x, 4, seed=9, corruption="gaussian_blur"),
    )
    assert torch.equal(a, b)
    assert a.float().mean().item() == pytest.approx(x.float().mean().item(), rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"images": torch.zeros(2, 1, 8, 8), "corruption": "gaussian_noise", "severity": 1}, "images"),
        (
            {
                "images": torch.zeros(1, 8, 8, dtype=torch.uint8),
                "corruption": "gaussian_noise",
                "severity": 1,
            },
            "images",
        ),
        (
            {
                "images": torch.zeros(0, 1, 8, 8, dtype=torch.uint8),
                "corruption": "gaussian_noise",
                "severity": 1,
            },
            "images",
        ),
        ({"images": _images(), "corruption": "gaussian_noise", "severity": 0}, "severity"),
        ({"images": _images(), "corruption": "gaussian_noise", "severity": 6}, "severity"),
        ({"images": _images(), "corruption": "gaussian_noise", "severity": True}, "severity"),
        ({"images": _images(), "corruption": "fog", "severity": 1}, "unknown corruption 'fog'"),
        ({"images": _images(), "corruption": "gaussian_noise", "severity": 1, "seed": -1}, "seed"),
    ],
)
def test_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        corrupt(**kwargs)
