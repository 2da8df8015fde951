"""Any timm model, built without pretrained weights (nothing can be downloaded at run time)."""

from __future__ import annotations

import torch
from torch import nn

from trainables.models.base import TIMM_PREFIX, ModelInfo, register_family


class TimmClassifier(nn.Module):
    """Wraps a timm model so ``features`` is the pooled pre-logits vector and ``head`` its classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.model.get_classifier()(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def timm_model_info(arch: str) -> ModelInfo:
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"model={TIMM_PREFIX + arch!r} is not a timm model; see timm.list_models()")

    def build(in_chans: int, num_classes: int, image_size: int) -> nn.Module:
        kwargs = {"pretrained": False, "in_chans": in_chans, "num_classes": num_classes}
        try:  # models with fixed position embeddings (ViT, Swin, ...) need the data's image size
            model = timm.create_model(arch, img_size=image_size, **kwargs)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
            model = timm.create_model(arch, **kwargs)
        return TimmClassifier(model)

    return ModelInfo(TIMM_PREFIX + arch, build, convolutional=True, reference="timm")


register_family(TIMM_PREFIX, timm_model_info, "any timm model name")
