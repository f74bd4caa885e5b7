"""Static-FC graph neural network baselines (BrainGB style) on torch_geometric layers.

Input ``batch["fc"]`` ``(B, R, R)``. Each subject's connectome becomes one graph:

    A      = topk(FC, p %)  (binary, symmetric, zero diagonal)          (B, R, R)
    X^0    = FC rows (node i's features are its connectivity profile)   (B, R, R)
    X^l    = ReLU(Conv_l(X^{l-1}, A))      Conv = GINConv  MLP((1+eps) x_i + sum_j x_j)
                                                  GCNConv  D^-1/2 (A+I) D^-1/2 X Theta
                                                  GATConv  sum_j alpha_ij Theta x_j
    h      = mean_i X^L_i  (global mean pool)                            (B, C)
    logits = Linear(Dropout(ReLU(Linear(h))))                            (B, n_classes)

Graphs are batched as one torch_geometric ``Batch`` (built without a Python loop, see
:func:`graphbrain.connectome.graphs.dense_to_pyg`). ``gat`` also returns attention
``"node"`` ``(B, R)``: the attention each ROI receives in the last layer (mean over
heads), divided by ``R`` so that it sums to 1 per subject.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from graphbrain.connectome.graphs import dense_to_pyg, topk_sparsify
from graphbrain.errors import ConfigError
from graphbrain.models.base import ModelOutput
from graphbrain.models.linear_path import maybe_linear_path
from graphbrain.models.registry import register_model

Conv = Literal["gin", "gcn", "gat"]


class StaticGNN(nn.Module):
    def __init__(
        self,
        n_rois: int,
        n_classes: int = 2,
        *,
        conv: Conv = "gin",
        hidden: int = 64,
        n_layers: int = 2,
        heads: int = 2,
        top_percent: float = 20.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if conv not in ("gin", "gcn", "gat"):
            raise ConfigError(f"conv must be 'gin', 'gcn' or 'gat', got {conv!r}")
        # imported here, not at module level: torch_geometric (and the torch._dynamo it pulls
        # in) costs about 3 s of start-up that runs of the other models need not pay
        from torch_geometric.nn import GATConv, GCNConv, GINConv

        self.conv_kind, self.top_percent, self.n_rois = conv, top_percent, n_rois
        dims = [n_rois] + [hidden] * n_layers
        convs = []
        for c_in, c_out in zip(dims[:-1], dims[1:]):
            if conv == "gin":
                mlp = nn.Sequential(nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), nn.ReLU(), nn.Linear(c_out, c_out))
                convs.append(GINConv(mlp, train_eps=True))
            elif conv == "gcn":
                convs.append(GCNConv(c_in, c_out))
            else:
                if c_out % heads:
                    raise ConfigError(f"gat hidden ({c_out}) must be a multiple of heads ({heads})")
                convs.append(GATConv(c_in, c_out // heads, heads=heads, dropout=0.0))
        self.convs = nn.ModuleList(convs)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for c in self.convs:
            c.reset_parameters()
        self.head[0].reset_parameters()
        self.head[3].reset_parameters()

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        from torch_geometric.nn import global_mean_pool
        from torch_geometric.utils import scatter

        fc = torch.nan_to_num(batch["fc"])
        b, r, _ = fc.shape
        adj = topk_sparsify(fc, self.top_percent)
        g = dense_to_pyg(adj, fc, edge_weight=False)
        x, ei = g.x, g.edge_index
        attention: dict[str, torch.Tensor] = {}
        for i, conv in enumerate(self.convs):
            if self.conv_kind == "gat" and i == len(self.convs) - 1:
                x, (ei_att, alpha) = conv(x, ei, return_attention_weights=True)
                recv = scatter(alpha.mean(-1), ei_att[0], dim=0, dim_size=b * r, reduce="sum")
                attention["node"] = recv.reshape(b, r) / r
            else:
                x = conv(x, ei)
            x = torch.relu(x)
        h = global_mean_pool(x, g.batch, size=b)
        return ModelOutput(logits=self.head(h), attention=attention)


def _builder(conv: Conv):
    def build(
        n_rois: int,
        n_windows: int | None = None,
        n_classes: int = 2,
        hidden: int = 64,
        n_layers: int = 2,
        heads: int = 2,
        top_percent: float = 20.0,
        dropout: float = 0.5,
        linear_path: bool = True,
        linear_gate: float = 0.1,
        linear_l2: float | str = 0.0,
        linear_init: str = "zeros",
    ) -> nn.Module:
        deep = StaticGNN(
            n_rois, n_classes, conv=conv, hidden=hidden, n_layers=n_layers, heads=heads,
            top_percent=top_percent, dropout=dropout,
        )
        return maybe_linear_path(deep, n_rois, n_classes, linear_path, linear_gate, linear_l2, linear_init)

    build.__name__ = f"build_{conv}"
    return build


build_gin = register_model("gin", kind="torch", input="static_fc", description="GIN on top-k static FC graphs (PyG)")(_builder("gin"))
build_gcn = register_model("gcn", kind="torch", input="static_fc", description="GCN on top-k static FC graphs (PyG)")(_builder("gcn"))
build_gat = register_model("gat", kind="torch", input="static_fc", description="GAT on top-k static FC graphs (PyG)")(_builder("gat"))
