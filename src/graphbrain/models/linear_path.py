"""A linear path next to every deep model (switch: ``model.linear_path``, default on).

On small cohorts a linear model on the vectorised, standardised connectome is hard to
beat (ABIDE-PCP: logreg 0.75 AUROC, the deep models 0.50-0.68). So every deep model can
be wrapped as

    logits = W vec(FC) + b  +  g * deep(batch).logits

with ``vec(FC)`` the ``R(R-1)/2`` upper-triangle entries of ``batch["fc"]`` ``(B, R, R)``
(the static FC z-scored per edge with training-fold statistics, from the same in-fold
fitted connectivity transformer as the static models: correlation, Fisher-z or tangent
space, ``connectome.kind`` / ``connectome.fisher_z``), ``W`` initialised to 0 and the
gate ``g`` a learnt scalar initialised small (``linear_gate``, default 0.1), so training
starts from a logistic regression and lets the deep branch in as far as it helps.
``linear_init="logreg"`` starts ``W, b`` from an L2 logistic regression (C = 1, as the
``logreg`` baseline) that :class:`~graphbrain.training.torch_estimator.TorchClassifier`
fits on the fitting part of the training fold before training (default ``"zeros"``).
``linear_init="logreg_frozen"`` keeps that logistic regression fixed: the optimiser trains
only the deep branch and the gate (the deep branch learns the residual of the baseline,
the LM-GAT design), early stopping judges the combination on the inner validation split,
and after training the linear path is refitted on the whole training fold, so it is
exactly the ``logreg`` baseline's fit (same data, same C; float32 weights).
``linear_l2`` adds ``l2 * ||W||^2`` to the loss (an explicit ridge on the linear path, as
logistic regression has; AdamW's decoupled weight decay is weak at lr 1e-3); ``"auto"``
(with ``linear_init="logreg"``) uses the logistic regression's own ridge, so the path is
not pushed away from the regression's solution by the data term alone.

The deep model's attention record is passed through unchanged; its auxiliary loss is
kept. The wrapped model is ``.deep``.
"""

from __future__ import annotations

import torch
from torch import nn

from graphbrain.errors import ConfigError
from graphbrain.models.base import ModelOutput

LINEAR_INITS = ("zeros", "logreg", "logreg_frozen")


class LinearPath(nn.Module):
    """``Linear(vec(batch["fc"])) + gate * deep(batch).logits``; see the module docstring."""

    def __init__(
        self,
        deep: nn.Module,
        n_rois: int,
        n_classes: int = 2,
        *,
        gate_init: float = 0.1,
        l2: float | str = 0.0,
        init: str = "zeros",
    ) -> None:
        super().__init__()
        if init not in LINEAR_INITS:
            raise ConfigError(f"linear_init must be one of {LINEAR_INITS}, got {init!r}")
        self.linear_init = init
        self.deep = deep
        self.l2_auto = isinstance(l2, str)
        if self.l2_auto and l2 != "auto":
            raise ConfigError(f"linear_l2 must be a number >= 0 or 'auto', got {l2!r}")
        if not self.l2_auto and float(l2) < 0:
            raise ConfigError(f"linear_l2 must be a number >= 0 or 'auto', got {l2!r}")
        # "auto": set when the path is started from the logistic regression, to that
        # regression's own ridge (see ``match_logreg_ridge``); 0 until then
        self.n_rois, self.gate_init = n_rois, float(gate_init)
        self.l2 = 0.0 if self.l2_auto else float(l2)
        self.linear = nn.Linear(n_rois * (n_rois - 1) // 2, n_classes)
        if init == "logreg_frozen":  # no gradient, so neither AdamW nor its weight decay moves it
            self.linear.requires_grad_(False)
        self.gate = nn.Parameter(torch.empty(()))
        # Adam moves every weight by ~lr per step; with P standardised inputs the logits would
        # move by ~lr * P (ABIDE: P = 5995) and the path over-fits within a few steps. Inputs
        # scaled by 1 / sqrt(P) make a step move the logits by ~lr * sqrt(P) * E|x| instead.
        self.input_scale = 1.0 / float(max(1, self.linear.in_features)) ** 0.5
        iu = torch.triu_indices(n_rois, n_rois, offset=1)
        self.register_buffer("triu_flat", iu[0] * n_rois + iu[1], persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        with torch.no_grad():
            self.gate.fill_(self.gate_init)
        if hasattr(self.deep, "reset_parameters"):
            self.deep.reset_parameters()

    def match_logreg_ridge(self, n_samples: int, c: float = 1.0) -> None:
        """``linear_l2="auto"``: the ridge that makes this path's loss the logistic
        regression's (``C``, balanced classes, ``n_samples``) objective per sample.

        scikit-learn minimises ``||w||^2 / 2 + C sum_i w_i loss_i``; with balanced class
        weights ``sum_i w_i = n``, so per sample that is ``mean loss + ||w||^2 / (2 C n)``.
        Here the margin weights are ``D = W_1 - W_0`` on inputs scaled by ``1/sqrt(P)``
        (``w = D / sqrt(P)``) and the penalty ``l2 (||W_0||^2 + ||W_1||^2)`` is smallest at
        ``W_1 = -W_0 = D / 2``, where it is ``l2 P ||w||^2 / 2``: equal for
        ``l2 = 1 / (P C n)``. The regression's solution is then a stationary point of the
        path's loss (with the deep branch off), so training does not drift away from it
        to over-fit the fitting set, which plain Adam steps on separable data do.
        """
        if self.l2_auto:
            self.l2 = 1.0 / (self.linear.in_features * float(c) * max(int(n_samples), 1))

    def vectorise(self, fc: torch.Tensor) -> torch.Tensor:
        """``(B, R, R)`` -> ``(B, R(R-1)/2)`` upper triangle (row-major)."""
        return fc.reshape(fc.shape[0], -1).index_select(1, self.triu_flat)

    def linear_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fc = batch.get("fc")
        if fc is None:
            raise ConfigError(
                "the linear path needs the static FC batch['fc'] (B, R, R); build the model with "
                "linear_path=False to use the deep branch alone"
            )
        if fc.shape[-1] != self.n_rois:
            raise ConfigError(f"linear path built for {self.n_rois} ROIs, got fc of shape {tuple(fc.shape)}")
        return self.linear(self.vectorise(fc) * self.input_scale)

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        out = self.deep(batch)
        logits = self.linear_logits(batch) + self.gate * out.logits
        aux = out.aux_loss
        if self.l2 > 0 and self.training and self.linear.weight.requires_grad:
            pen = self.l2 * self.linear.weight.pow(2).sum()
            aux = pen if aux is None else aux + pen
        return ModelOutput(logits=logits, attention=out.attention, aux_loss=aux)


def maybe_linear_path(
    deep: nn.Module,
    n_rois: int,
    n_classes: int,
    linear_path: bool,
    linear_gate: float,
    linear_l2: float | str,
    linear_init: str = "zeros",
) -> nn.Module:
    """``deep`` wrapped in :class:`LinearPath` when ``linear_path`` is true."""
    if not linear_path:
        return deep
    return LinearPath(deep, n_rois, n_classes, gate_init=linear_gate, l2=linear_l2, init=linear_init)
