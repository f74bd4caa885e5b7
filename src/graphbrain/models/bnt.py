"""Brain Network Transformer (Kan et al., NeurIPS 2022).

Input ``batch["fc"]`` ``(B, R, R)``: each ROI is a token whose features are its FC row.

    X^0       = FC W_in                                  (B, R, D)   (D = R by default, as BNT)
    X^l, P^l  = TransformerEncoderLayer(X^{l-1})          (B, R, D), attention (B, heads, R, R)
    Q         = softmax_k(X^L E^T)                        (B, R, K)   orthonormal-clustering
                readout: E (K, D) cluster centres with orthonormal rows, fixed after init
                (BNT's ``freeze_center``)
    Z         = Q^T X^L                                   (B, K, D)
    logits    = MLP(flatten(LeakyReLU(Z W_r)))            (B, n_classes)

Output attention: ``"attention"`` ``(B, heads, R, R)`` (last layer, rows sum to 1),
``"node"`` ``(B, R)`` (attention received per ROI, mean over layers, heads and queries;
sums to 1) and ``"cluster"`` ``(B, R, K)`` (soft assignments, rows sum to 1).
"""

from __future__ import annotations

import torch
from torch import nn

from graphbrain.models.base import ModelOutput
from graphbrain.models.layers import AttentionEncoderLayer
from graphbrain.models.linear_path import maybe_linear_path
from graphbrain.models.registry import register_model


class OCRead(nn.Module):
    """Orthonormal-clustering readout: ``(B, R, D)`` -> (``(B, K, D)``, assignment ``(B, R, K)``)."""

    def __init__(self, dim: int, n_clusters: int) -> None:
        super().__init__()
        self.dim, self.n_clusters = dim, n_clusters
        self.register_buffer("centres", torch.empty(n_clusters, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # orthonormal rows when K <= D (orthogonal_ on (K, D)); Xavier-like scale otherwise
        nn.init.orthogonal_(self.centres)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.softmax(x @ self.centres.T, dim=-1)  # (B, R, K)
        return q.transpose(1, 2) @ x, q


class BrainNetworkTransformer(nn.Module):
    def __init__(
        self,
        n_rois: int,
        n_classes: int = 2,
        *,
        dim: int | None = None,
        n_layers: int = 2,
        heads: int = 4,
        ff_dim: int = 256,
        n_clusters: int = 10,
        reduce_dim: int = 8,
        mlp_hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        dim = dim or n_rois
        if dim % heads:
            dim = heads * -(-dim // heads)  # round up to a multiple of heads
        self.n_rois, self.dim = n_rois, dim
        self.input = nn.Linear(n_rois, dim)
        self.layers = nn.ModuleList(AttentionEncoderLayer(dim, heads, ff_dim, dropout) for _ in range(n_layers))
        self.readout = OCRead(dim, n_clusters)
        self.reduce = nn.Sequential(nn.Linear(dim, reduce_dim), nn.LeakyReLU())
        self.head = nn.Sequential(
            nn.Linear(reduce_dim * n_clusters, mlp_hidden),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_hidden, n_classes),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for m in self.layers:
            m.reset_parameters()
        self.readout.reset_parameters()
        self.reduce[0].reset_parameters()
        self.head[0].reset_parameters()
        self.head[3].reset_parameters()

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        x = self.input(batch["fc"])  # (B, R, D)
        received = []
        att = None
        for layer in self.layers:
            x, att = layer(x, per_head=True)  # att (B, heads, R, R)
            received.append(att.mean(dim=(1, 2)))  # (B, R)
        z, q = self.readout(x)
        logits = self.head(self.reduce(z).flatten(1))
        attention = {"attention": att, "node": torch.stack(received).mean(0), "cluster": q}
        return ModelOutput(logits=logits, attention=attention)


@register_model("bnt", kind="torch", input="static_fc", description="Brain Network Transformer (ROI tokens, OCRead)")
def build_bnt(
    n_rois: int,
    n_windows: int | None = None,
    n_classes: int = 2,
    dim: int | None = None,
    n_layers: int = 2,
    heads: int = 4,
    ff_dim: int = 256,
    n_clusters: int = 10,
    reduce_dim: int = 8,
    mlp_hidden: int = 64,
    dropout: float = 0.1,
    linear_path: bool = True,
    linear_gate: float = 0.1,
    linear_l2: float | str = 0.0,
    linear_init: str = "zeros",
) -> nn.Module:
    deep = BrainNetworkTransformer(
        n_rois,
        n_classes,
        dim=dim,
        n_layers=n_layers,
        heads=heads,
        ff_dim=ff_dim,
        n_clusters=n_clusters,
        reduce_dim=reduce_dim,
        mlp_hidden=mlp_hidden,
        dropout=dropout,
    )
    return maybe_linear_path(deep, n_rois, n_classes, linear_path, linear_gate, linear_l2, linear_init)
