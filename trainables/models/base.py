"""Model registry. Every model exposes ``features(x)`` (penultimate layer) and ``head`` so that
representation metrics see exactly what the classifier sees: ``forward(x) == head(features(x))``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from analysis.core.registry import Registry


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., nn.Module]  # build(in_chans=, num_classes=, image_size=) -> nn.Module
    convolutional: bool  # channels_last helps on GPU
    reference: str = ""
    summary: str = ""


MODELS: Registry[ModelInfo] = Registry("model")
TIMM_PREFIX = "timm/"
# Families of models named by a prefix ("timm/<arch>"): prefix -> (arch -> its record, what follows the prefix)
FAMILIES: dict[str, tuple[Callable[[str], ModelInfo], str]] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    return MODELS.register(info)


def register_family(prefix: str, info_of: Callable[[str], ModelInfo], names: str) -> None:
    FAMILIES[prefix] = (info_of, names)


def list_models() -> list[str]:
    return MODELS.names() + [f"{prefix}<{names}>" for prefix, (_, names) in FAMILIES.items()]


def get_model_info(name: str) -> ModelInfo:
    for prefix, (info_of, _) in FAMILIES.items():
        if name.startswith(prefix):
            return info_of(name[len(prefix):])
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return MODELS.get(name)


def build_model(name: str, in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return get_model_info(name).build(in_chans=in_chans, num_classes=num_classes, image_size=image_size)
