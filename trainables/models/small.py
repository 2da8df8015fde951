"""Small built-in models that train in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from trainables.models.base import ModelInfo, register_model


class MLP(nn.Module):
    """Two hidden layers of ``width`` with ReLU: the Label Relaxation paper's Fashion-MNIST/MNIST model."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, width: int = 1024) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(in_chans * image_size * image_size, width), nn.ReLU(inplace=True),
            nn.Linear(width, width), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU stages (32, 64, 128 channels) with max-pooling, global average pooling, linear head."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, width: int = 32) -> None:
        super().__init__()
        w = width
        pool = nn.MaxPool2d(2) if image_size >= 16 else nn.Identity()
        self.body = nn.Sequential(
            _conv_bn(in_chans, w), pool, _conv_bn(w, 2 * w), nn.MaxPool2d(2), _conv_bn(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


register_model(ModelInfo("mlp", MLP, convolutional=False, reference="Lienen & Huellermeier, Sec. 5",
                         summary="MLP, two hidden layers of 1024, ReLU"))
register_model(ModelInfo("small_cnn", SmallCNN, convolutional=True, summary="3-stage conv-BN-ReLU CNN, ~0.1M params"))
