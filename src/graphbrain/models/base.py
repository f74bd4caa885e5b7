"""What every torch model returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelOutput:
    """Output of a torch model's ``forward``.

    Attributes:
        logits: ``(B, C)`` class scores.
        attention: named attention / attribution tensors, e.g. ``"spatial"`` ``(B, W, R)``,
            ``"temporal"`` ``(B, W)`` or ``(B, heads, W, W)``, ``"node"`` ``(B, R)``.
        aux_loss: a scalar added to the training loss (e.g. orthogonal regularisation);
            ``None`` when the model has none.
    """

    logits: Any
    attention: dict[str, Any] = field(default_factory=dict)
    aux_loss: Any = None
