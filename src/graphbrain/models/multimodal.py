"""Registry entries for the multimodal models built in the fusion room.

``fusion`` (connectome + image embeddings + phenotypes + KG ROI features) and
``population`` (Parisot-style population graph) combine more than a connectome, so their
classifiers live in :mod:`graphbrain.fusion` (above this room in the layering). They are
listed here so that ``graphbrain models`` shows them and the configuration checks know
their parameters; the pipeline builds them through ``graphbrain.fusion.factory``.
"""

from __future__ import annotations

from typing import Any

from graphbrain.errors import ConfigError
from graphbrain.models.registry import register_model


def _built_elsewhere(name: str) -> Any:
    raise ConfigError(f"model {name!r} is built by graphbrain.fusion.factory.build_multimodal (or run_pipeline)")


@register_model("fusion", kind="fusion", input="multimodal",  # type: ignore[arg-type]
                description="Connectome + image embeddings + phenotypes + KG ROI features "
                            "(strategy=concat|gated|cross_attention; missing modalities masked)")
def fusion(
    strategy: str = "gated",
    branch: str = "logreg",
    branch_params: dict[str, Any] | None = None,
    image: str | None = None,
    phenotypes: list[str] | None = None,
    kg_roi: dict[str, Any] | None = None,
    modality_dropout: float = 0.3,
    hidden: int = 32,
) -> Any:
    """Connectome + image embeddings + phenotypes + KG ROI features."""
    return _built_elsewhere("fusion")


@register_model("population", kind="fusion", input="multimodal",  # type: ignore[arg-type]
                description="Population graph (Parisot): subjects as nodes, phenotype x imaging "
                            "similarity edges, Chebyshev GCN; inductive by default")
def population(
    mode: str = "inductive",
    phenotypes: list[str] | None = None,
    n_features: int = 500,
    k: int = 10,
    age_tolerance: float = 2.0,
    hidden: int = 32,
    dropout: float = 0.3,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    patience: int = 30,
) -> Any:
    """Population graph over subjects (inductive by default)."""
    return _built_elsewhere("population")
