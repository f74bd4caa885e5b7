"""Model registry: every classifier is chosen by name (``model=NAME``).

A :class:`ModelSpec` says what a model eats and how to build it:

* ``kind="sklearn"``: ``builder(**params)`` returns a scikit-learn estimator trained on
  vectorised connectomes (``input="static_fc"``);
* ``kind="torch"``: ``builder(n_rois=..., n_windows=..., n_classes=..., **params)``
  returns a ``torch.nn.Module`` whose ``forward(batch)`` takes a dict of tensors
  (``"fc"`` ``(B, R, R)`` for ``input="static_fc"``; ``"dfc"`` ``(B, W, R, R)`` for
  ``input="dynamic_fc"``, plus ``"timeseries"`` ``(B, T, R)``) and returns a
  :class:`graphbrain.models.base.ModelOutput`.

Model files register themselves with :func:`register_model`; importing
``graphbrain.models`` imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from graphbrain.errors import ConfigError

ModelKind = Literal["sklearn", "torch", "ensemble"]
ModelInput = Literal["static_fc", "dynamic_fc", "members"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model."""

    name: str
    kind: ModelKind
    input: ModelInput
    builder: Callable[..., Any]
    description: str = ""


_MODELS: dict[str, ModelSpec] = {}


def register_model(
    name: str, *, kind: ModelKind, input: ModelInput, description: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``builder`` under ``name``."""

    def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MODELS:
            raise ConfigError(f"model name {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, kind, input, builder, description or (builder.__doc__ or "").strip())
        return builder

    return deco


def available_models() -> list[str]:
    """Names of all registered models."""
    _ensure_loaded()
    return sorted(_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under ``name``; a clear error lists the valid names."""
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}") from None


def _ensemble_builder(**params: Any) -> Any:
    """Ensemble of registered models (members=[...], seeds, combine=mean|stack)."""
    raise ConfigError(
        "model 'ensemble' is built by graphbrain.training.build_classifier (it combines fitted "
        "classifiers, not torch modules); the registry only lists it"
    )


# kind "ensemble": combines other registered models; built in the training room
# (graphbrain.training.ensemble), listed here so that `graphbrain models` and the config
# checks know the name.
_MODELS["ensemble"] = ModelSpec(
    "ensemble", "ensemble", "members", _ensemble_builder,
    "Ensemble of registered models: members=[...], seeds per member, combine=mean|stack",
)


def _ensure_loaded() -> None:
    import graphbrain.models  # noqa: F401  (imports every model file, which registers it)
