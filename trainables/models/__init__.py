from trainables.models import small, timm_models  # noqa: F401  (register the built-ins and timm/)
from trainables.models.base import MODELS, ModelInfo, build_model, get_model_info, list_models, register_model

__all__ = ["MODELS", "ModelInfo", "build_model", "get_model_info", "list_models", "register_model"]
