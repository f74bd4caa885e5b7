"""BrainNetCNN (Kawahara et al., NeuroImage 2017): convolutions shaped for connectomes.

Input ``batch["fc"]`` ``(B, R, R)`` viewed as a 1-channel image ``(B, 1, R, R)``.

    E2E   Y[f, i, j] = sum_c ( sum_k A[c, i, k] r_fc[k]  +  sum_k A[c, k, j] k_fc[k] )
          (a 1 x R row filter plus an R x 1 column filter, broadcast)   (B, F, R, R)
    E2N   Y[f, i]    = sum_c sum_k A[c, i, k] w_fc[k]                   (B, F, R)
    N2G   Y[f]       = sum_c sum_i N[c, i] v_fc[i]                      (B, F)
    logits = Linear(LReLU(Linear(LReLU(Linear(Y)))))                    (B, n_classes)

with leaky ReLU (slope 0.33) after each filter and dropout before the dense layers.
Output attention ``"node"`` ``(B, R)``: the E2N response energy per ROI,
``sum_f E2N[f, i]^2`` normalised to sum to 1 (a saliency of the node filters, not a
learned attention).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from graphbrain.models.base import ModelOutput
from graphbrain.models.linear_path import maybe_linear_path
from graphbrain.models.registry import register_model


class E2E(nn.Module):
    """Edge-to-edge filter ``(B, C, R, R)`` -> ``(B, F, R, R)``."""

    def __init__(self, c_in: int, c_out: int, n_rois: int) -> None:
        super().__init__()
        self.row = nn.Conv2d(c_in, c_out, (1, n_rois))
        self.col = nn.Conv2d(c_in, c_out, (n_rois, 1))

    def reset_parameters(self) -> None:
        self.row.reset_parameters()
        self.col.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.row(x) + self.col(x)  # (B,F,R,1) + (B,F,1,R) -> (B,F,R,R)


class BrainNetCNN(nn.Module):
    def __init__(
        self,
        n_rois: int,
        n_classes: int = 2,
        *,
        e2e_channels: tuple[int, ...] = (32, 32),
        e2n_channels: int = 64,
        n2g_channels: int = 128,
        fc_hidden: tuple[int, ...] = (64, 16),
        dropout: float = 0.5,
        slope: float = 0.33,
    ) -> None:
        super().__init__()
        self.slope = slope
        chans = (1, *e2e_channels)
        self.e2e = nn.ModuleList(E2E(chans[i], chans[i + 1], n_rois) for i in range(len(e2e_channels)))
        self.e2n = nn.Conv2d(chans[-1], e2n_channels, (1, n_rois))
        self.n2g = nn.Conv2d(e2n_channels, n2g_channels, (n_rois, 1))
        dims = (n2g_channels, *fc_hidden)
        self.fc = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(fc_hidden)))
        self.out = nn.Linear(dims[-1], n_classes)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in [*self.e2e, self.e2n, self.n2g, *self.fc, self.out]:
            m.reset_parameters()

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        x = batch["fc"].unsqueeze(1)  # (B, 1, R, R)
        for layer in self.e2e:
            x = F.leaky_relu(layer(x), self.slope)
        nodes = F.leaky_relu(self.e2n(x), self.slope)  # (B, F, R, 1)
        g = F.leaky_relu(self.n2g(self.dropout(nodes)), self.slope).flatten(1)  # (B, F')
        for layer in self.fc:
            g = F.leaky_relu(layer(self.dropout(g)), self.slope)
        logits = self.out(g)
        energy = nodes.squeeze(-1).pow(2).sum(1)  # (B, R)
        node = energy / energy.sum(-1, keepdim=True).clamp_min(1e-12)
        return ModelOutput(logits=logits, attention={"node": node})


@register_model("brainnetcnn", kind="torch", input="static_fc", description="BrainNetCNN (E2E, E2N, N2G filters)")
def build_brainnetcnn(
    n_rois: int,
    n_windows: int | None = None,
    n_classes: int = 2,
    e2e_channels: tuple[int, ...] | list[int] = (32, 32),
    e2n_channels: int = 64,
    n2g_channels: int = 128,
    fc_hidden: tuple[int, ...] | list[int] = (64, 16),
    dropout: float = 0.5,
    slope: float = 0.33,
    linear_path: bool = True,
    linear_gate: float = 0.1,
    linear_l2: float | str = 0.0,
    linear_init: str = "zeros",
) -> nn.Module:
    deep = BrainNetCNN(
        n_rois,
        n_classes,
        e2e_channels=tuple(e2e_channels),
        e2n_channels=e2n_channels,
        n2g_channels=n2g_channels,
        fc_hidden=tuple(fc_hidden),
        dropout=dropout,
        slope=slope,
    )
    return maybe_linear_path(deep, n_rois, n_classes, linear_path, linear_gate, linear_l2, linear_init)
