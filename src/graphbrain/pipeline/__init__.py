"""Pipeline room: configuration in, PipelineResult out."""

from graphbrain.pipeline.config import build_config, compose_config
from graphbrain.pipeline.result import PipelineResult
from graphbrain.pipeline.run import load_data, predict, run_pipeline, train_model

__all__ = [
    "PipelineResult",
    "build_config",
    "compose_config",
    "load_data",
    "predict",
    "run_pipeline",
    "train_model",
]
