"""Distribution shift: corrupted copies of an image batch (uint8 (N, C, H, W) in, uint8 out), seeded.

Severities 1-5 follow the small-image (32 px) settings of CIFAR-10-C (Hendrycks & Dietterich, 2019):

- ``gaussian_noise``: add N(0, sigma^2) on the [0, 1] scale, sigma = 0.04, 0.06, 0.08, 0.09, 0.10; clip.
- ``gaussian_blur``: separable Gaussian filter per channel, sigma = 0.4, 0.6, 0.7, 0.8, 1.0 pixels, kernel
  radius ``round(4 sigma)``, borders reflected; deterministic.
- ``blur_noise`` (the default): the blur, then the noise, at the same severity.

The result is rounded to the nearest integer. The same ``seed`` gives the same corrupted batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from analysis.core.registry import Registry

SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class CorruptionInfo:
    name: str
    fn: Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]  # float [0, 1] (N, C, H, W) -> same
    levels: tuple[float, ...]  # the parameter at severities 1..5
    summary: str = ""


CORRUPTIONS: Registry[CorruptionInfo] = Registry("corruption")

NOISE_SIGMA = (0.04, 0.06, 0.08, 0.09, 0.10)
BLUR_SIGMA = (0.4, 0.6, 0.7, 0.8, 1.0)


def list_corruptions() -> list[str]:
    return CORRUPTIONS.names()


def _noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    sigma = NOISE_SIGMA[severity - 1]
    return x + sigma * torch.randn(x.shape, generator=gen, dtype=x.dtype)


def _blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    sigma = BLUR_SIGMA[severity - 1]
    radius = max(1, round(4 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    # reflect padding needs the pad smaller than the side; replicate covers tiny images
    mode = "reflect" if radius < min(h, w) else "replicate"
    # a weighted sum of shifted copies: a single-channel conv2d with a 1-D kernel is ~20x slower on a CPU
    rows = F.pad(flat, (radius, radius, 0, 0), mode=mode)
    flat = sum(k * rows[..., i:i + w] for i, k in enumerate(kernel.tolist()))
    cols = F.pad(flat, (0, 0, radius, radius), mode=mode)
    flat = sum(k * cols[..., i:i + h, :] for i, k in enumerate(kernel.tolist()))
    return flat.reshape(n, c, h, w)


def _blur_noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    return _noise(_blur(x, severity, gen), severity, gen)


CORRUPTIONS.register(CorruptionInfo("gaussian_noise", _noise, NOISE_SIGMA, "additive Gaussian noise"))
CORRUPTIONS.register(CorruptionInfo("gaussian_blur", _blur, BLUR_SIGMA, "Gaussian blur"))
CORRUPTIONS.register(CorruptionInfo("blur_noise", _blur_noise, BLUR_SIGMA, "Gaussian blur, then noise"))


DEFAULT_CORRUPTION = "blur_noise"


def corrupt(
    images: torch.Tensor, severity: int, seed: int = 0, corruption: str = DEFAULT_CORRUPTION
) -> torch.Tensor:
    """A corrupted copy of ``images`` (uint8 (N, C, H, W)) on the same device; the input is not modified."""
    info = CORRUPTIONS.get(corruption)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = (
            f"{images.dtype} {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else type(images).__name__
        )
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W); got {got}")
    if images.shape[0] == 0:
        raise ValueError("images is empty; expected at least one image")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity={severity!r} is not allowed; allowed: one of 1, 2, 3, 4, 5")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed={seed!r} is not allowed; allowed: an integer in [0, 2**63)")
    gen = torch.Generator().manual_seed(seed)
    x = images.detach().cpu().to(torch.float32) / 255.0
    out = info.fn(x, severity, gen).clamp_(0.0, 1.0)
    return torch.round(out * 255.0).to(torch.uint8).to(images.device)
