"""Model room: one model per file, chosen by name through the registry."""

# importing the model files registers them: logreg, svm, stagin, bnt, brainnetcnn, gin, gcn, gat
from graphbrain.models import bnt, brainnetcnn, gnn, linear, multimodal, stagin  # noqa: F401
from graphbrain.models.base import ModelOutput
from graphbrain.models.registry import ModelSpec, available_models, get_model_spec, register_model

__all__ = ["ModelOutput", "ModelSpec", "available_models", "get_model_spec", "register_model"]
