"""Model room: one model per file, chosen by name through the registry."""

from graphbrain.models import linear  # noqa: F401  (registers logreg, svm)
from graphbrain.models.base import ModelOutput
from graphbrain.models.registry import ModelSpec, available_models, get_model_spec, register_model

__all__ = ["ModelOutput", "ModelSpec", "available_models", "get_model_spec", "register_model"]
