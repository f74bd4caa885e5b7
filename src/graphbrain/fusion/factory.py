"""Build and load the fusion room's classifiers by name (``model=fusion`` / ``model=population``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphbrain.errors import ConfigError
from graphbrain.training.estimator import CLASSIFIER_FILE, CohortClassifier

MULTIMODAL_MODELS = ("fusion", "population")


def build_multimodal(
    model: str,
    *,
    model_params: dict[str, Any] | None = None,
    connectome: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    seed: int = 0,
) -> CohortClassifier:
    """A fresh classifier for ``fusion`` or ``population`` (same arguments as ``build_classifier``)."""
    params = dict(model_params or {})
    conn = {k: v for k, v in dict(connectome or {}).items() if k in ("kind", "estimator", "fisher_z", "cache_dir")}
    if model == "fusion":
        from graphbrain.fusion.model import FusionClassifier

        phen = params.pop("phenotypes", ("age", "sex"))
        return FusionClassifier(phenotypes=phen, connectome=conn, train=train, seed=seed, **params)
    if model == "population":
        from graphbrain.fusion.population import PopulationGraphClassifier

        if params.get("phenotypes") is None:
            params.pop("phenotypes", None)
        return PopulationGraphClassifier(connectome=conn, seed=seed, **params)
    raise ConfigError(f"{model!r} is not a multimodal model ({', '.join(MULTIMODAL_MODELS)})")


def load_multimodal(directory: str | Path) -> CohortClassifier | None:
    """Load a saved fusion / population classifier, or ``None`` if the folder holds another kind."""
    path = Path(directory) / CLASSIFIER_FILE
    if not path.exists():
        return None
    try:
        kind = json.loads(path.read_text()).get("type")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # let the generic loader report the broken file
    if kind == "fusion":
        from graphbrain.fusion.model import FusionClassifier

        return FusionClassifier.load(directory)
    if kind == "population":
        from graphbrain.fusion.population import PopulationGraphClassifier

        return PopulationGraphClassifier.load(directory)
    return None
