"""graphbrain: fMRI connectomes -> spatio-temporal graph models -> explained predictions.

The heavy entry points are imported lazily so that ``import graphbrain.kg`` stays
light (no torch) and ``import graphbrain`` is fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphbrain._version import __version__

__all__ = ["run_pipeline", "PipelineResult", "Cohort", "Subject", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from graphbrain.data import Cohort, Subject
    from graphbrain.pipeline import PipelineResult, run_pipeline


def __getattr__(name: str) -> Any:
    if name in {"run_pipeline", "PipelineResult"}:
        from graphbrain import pipeline

        return getattr(pipeline, name)
    if name in {"Cohort", "Subject"}:
        from graphbrain import data

        return getattr(data, name)
    raise AttributeError(f"module 'graphbrain' has no attribute {name!r}")
