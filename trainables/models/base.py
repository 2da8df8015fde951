"""Model registry. Every model exposes ``features(x)`` (penultimate layer) and ``head`` so that
representation metrics see exactly what the classifier sees: ``forward(x) == head(features(x))``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from trainables.registry import Registry


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., nn.Module]  # build(in_chans=, num_classes=, image_size=) -> nn.Module
    convolutional: bool  # channels_last helps on GPU
    reference: str = ""
    summary: str = ""


MODELS: Registry[ModelInfo] = Registry("model")
TIMM_PREFIX = "timm/"


def register_model(info: ModelInfo) -> ModelInfo:
    return MODELS.register(info)


def list_models() -> list[str]:
    return MODELS.names() + [TIMM_PREFIX + "<any timm model name>"]


def get_model_info(name: str) -> ModelInfo:
    if name.startswith(TIMM_PREFIX):
        from trainables.models.timm_models import timm_model_info

        return timm_model_info(name[len(TIMM_PREFIX):])
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return MODELS.get(name)


def build_model(name: str, in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    return get_model_info(name).build(in_chans=in_chans, num_classes=num_classes, image_size=image_size)
