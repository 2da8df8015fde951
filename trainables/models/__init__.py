from trainables.models import small  # noqa: F401  (registers the built-ins)
from trainables.models.base import MODELS, ModelInfo, build_model, get_model_info, list_models, register_model

__all__ = ["MODELS", "ModelInfo", "build_model", "get_model_info", "list_models", "register_model"]
