"""STAGIN: spatio-temporal attention graph isomorphism network (Kim et al., NeurIPS 2021).

Input ``batch["dfc"]`` ``(B, W, R, R)``: sliding-window FC of ``B`` subjects, ``W``
windows, ``R`` ROIs, and ``batch["mask"]`` ``(B, W)`` bool (True = real window; scans of
different lengths are zero-padded to ``W``; default all True). Every real window is a
graph; all ``G`` real graphs of a batch go through each step at once (dense batched
tensors, no Python loop over graphs; padded windows never enter the GIN or its
BatchNorm statistics):

    A_g      = topk(FC_g, p %)  binary, symmetric, zero diagonal         (G, R, R)
    H^0_g    = [x_i , e(w_g)] Theta_0                                    (G, R, C)
               x_i = onehot(ROI i) (the paper, ``node_features="onehot"``), row i of
               the window's FC (``"window_fc"``, the default) or of the static FC
               ``batch["fc"]`` (``"static_fc"``); e(w) a learned embedding of the window's
               position w in the crop (STAGIN used a GRU over the time series up to each
               window end; the embedding is cheaper); positions past the trained window
               count share the last embedding, so any scan length is accepted
    H^l      = MLP_l((1 + eps_l) H^{l-1} + A H^{l-1})        (GIN, dense bmm)
    readout  SERO: s = sigmoid(W_2 GELU(BN(W_1 mean_i H^l_i)))           (G, R)
             GARO: s = sigmoid(K(H^l) q(mean_i H^l_i) / sqrt(D))          (G, R)
             h_g = mean_i s_i H^l_i                                       (G, C)
    temporal Z^l, T^l = TransformerEncoder([h_(b,1) ... h_(b,W)])         (B, W, C), (B, W, W)
               with the key-padding mask: no window attends to padding
    logits   = sum_l Linear_l(dropout(mean_{real w} Z^l_w))               (B, n_classes)
    aux      = lambda * sum_l mean_g || triu(H H^T / rowmax - I) ||_F   (orthogonal readout reg.)

Output :class:`~graphbrain.models.base.ModelOutput` with ``logits`` ``(B, n_classes)``,
``aux_loss`` (scalar) and attention ``"spatial"`` ``(B, W, R)`` (readout attention s,
mean over layers, in [0, 1]), ``"temporal"`` ``(B, W)`` (attention each window
receives, mean over real queries and layers; sums to 1 over real windows, 0 on padding)
and ``"temporal_matrix"`` ``(B, W, W)`` (rows of real windows sum to 1, mean over layers
and heads; padded rows and columns 0).

The registered builder wraps the model in :class:`~graphbrain.models.linear_path.LinearPath`
(``linear_path=True``, the default): logits = linear(vec static FC) + g * STAGIN.

``gnn="sparse"`` runs the same GIN layers (same parameters) through torch_geometric's
``GINConv`` message passing instead of dense matmuls -- for benchmarks and checks.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from graphbrain.connectome.graphs import dense_to_pyg, topk_sparsify
from graphbrain.errors import ConfigError
from graphbrain.models.base import ModelOutput
from graphbrain.models.layers import AttentionEncoderLayer, DenseGIN, orthogonality_penalty
from graphbrain.models.linear_path import maybe_linear_path
from graphbrain.models.registry import register_model

NODE_FEATURES = ("onehot", "static_fc", "window_fc")


class _WeightedSum(torch.autograd.Function):
    """``sum_i s_i h_i``: ``(G, R, C)``, ``(G, R)`` -> ``(G, C)``, one batched matmul forward;
    backward ``dh = s dY^T`` as a broadcast product (autograd's ``bmm`` backward runs it as a
    batched rank-1 matmul, three times slower here) and ``ds = h dY`` (one bmm)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(h, s)
        return torch.bmm(s.unsqueeze(1), h).squeeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        h, s = ctx.saved_tensors
        dh = s.unsqueeze(2) * grad.unsqueeze(1) if ctx.needs_input_grad[0] else None
        ds = torch.bmm(h, grad.unsqueeze(2)).squeeze(2) if ctx.needs_input_grad[1] else None
        return dh, ds


def _weighted_node_mean(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``mean_i s_i h_i``: ``(G, R, C)``, ``(G, R)`` -> ``(G, C)`` as one batched matmul
    ``s^T h / R`` (same maths as ``(h * s[..., None]).mean(1)`` without the ``(G, R, C)``
    product, forward or backward)."""
    if torch.is_autocast_enabled(h.device.type):
        return torch.bmm(s.unsqueeze(1), h).squeeze(1) / h.shape[1]
    return _WeightedSum.apply(h, s) / h.shape[1]


def _node_mean(h: torch.Tensor) -> torch.Tensor:
    """``mean_i h_i`` ``(G, R, C)`` -> ``(G, C)`` as a sum then a division of the small result:
    the sum's backward is a broadcast view, the mean's a ``(G, R, C)`` division pass."""
    return h.sum(1) / h.shape[1]


class SERO(nn.Module):
    """Squeeze-excitation readout: ``(G, R, C)`` -> (``(G, C)``, attention ``(G, R)``)."""

    def __init__(self, dim: int, n_rois: int, upscale: float = 1.0, dropout: float = 0.1) -> None:
        super().__init__()
        hid = round(upscale * dim)
        self.embed = nn.Sequential(nn.Linear(dim, hid), nn.BatchNorm1d(hid), nn.GELU())
        self.attend = nn.Linear(hid, n_rois)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.embed[0].reset_parameters()
        self.embed[1].reset_parameters()
        self.attend.reset_parameters()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.sigmoid(self.attend(self.embed(_node_mean(h))))
        return _weighted_node_mean(h, self.dropout(s)), s


class GARO(nn.Module):
    """Graph-attention readout: ``(G, R, C)`` -> (``(G, C)``, attention ``(G, R)``)."""

    def __init__(self, dim: int, n_rois: int, upscale: float = 1.0, dropout: float = 0.1) -> None:
        super().__init__()
        hid = round(upscale * dim)
        self.query = nn.Linear(dim, hid)
        self.key = nn.Linear(dim, hid)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.query.reset_parameters()
        self.key.reset_parameters()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.query(_node_mean(h))  # (G, D)
        k = self.key(h)  # (G, R, D)
        s = torch.sigmoid(torch.einsum("grd,gd->gr", k, q) / math.sqrt(q.shape[-1]))
        return _weighted_node_mean(h, self.dropout(s)), s


class STAGIN(nn.Module):
    """STAGIN, dense and batched. See the module docstring for the equations."""

    #: attention records with window axes (axis numbers after the batch axis)
    window_axes = {"spatial": (0,), "temporal": (0,), "temporal_matrix": (0, 1)}

    def __init__(
        self,
        n_rois: int,
        n_windows: int,
        n_classes: int = 2,
        *,
        hidden: int = 128,
        n_layers: int = 4,
        heads: int = 1,
        readout: Literal["sero", "garo"] = "sero",
        top_percent: float = 30.0,
        dropout: float = 0.5,
        attn_dropout: float = 0.1,
        reg_lambda: float = 1e-5,
        gnn: Literal["dense", "sparse"] = "dense",
        node_features: Literal["onehot", "static_fc", "window_fc"] = "onehot",
    ) -> None:
        super().__init__()
        if readout not in ("sero", "garo"):
            raise ConfigError(f"STAGIN readout must be 'sero' or 'garo', got {readout!r}")
        if gnn not in ("dense", "sparse"):
            raise ConfigError(f"STAGIN gnn must be 'dense' or 'sparse', got {gnn!r}")
        if node_features not in NODE_FEATURES:
            raise ConfigError(f"STAGIN node_features must be one of {NODE_FEATURES}, got {node_features!r}")
        if n_windows < 1:
            raise ConfigError(f"STAGIN needs n_windows >= 1, got {n_windows}")
        self.n_rois, self.n_windows, self.hidden = n_rois, n_windows, hidden
        self.top_percent, self.reg_lambda, self.gnn = top_percent, reg_lambda, gnn
        self.node_features = node_features
        self.time_embed = nn.Embedding(n_windows, hidden)
        # Theta_0 acting on [x_i, e(w)], x_i = onehot(ROI i) (a row lookup) or an FC row.
        self.initial = nn.Linear(n_rois + hidden, hidden)
        self.gin = nn.ModuleList(DenseGIN(hidden, hidden) for _ in range(n_layers))
        ro = SERO if readout == "sero" else GARO
        self.readouts = nn.ModuleList(ro(hidden, n_rois, dropout=attn_dropout) for _ in range(n_layers))
        self.temporal = nn.ModuleList(
            AttentionEncoderLayer(hidden, heads, 2 * hidden, dropout=attn_dropout) for _ in range(n_layers)
        )
        self.heads_out = nn.ModuleList(nn.Linear(hidden, n_classes) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)
        # Sparse twins share the dense layers' parameters (plain list: not registered twice).
        self._pyg = [layer.as_pyg() for layer in self.gin] if gnn == "sparse" else []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.time_embed.reset_parameters()
        self.initial.reset_parameters()
        for group in (self.gin, self.readouts, self.temporal, self.heads_out):
            for m in group:
                m.reset_parameters()

    def adjacency(self, dfc: torch.Tensor) -> torch.Tensor:
        """Binary top-``p`` % graphs ``(..., R, R)`` from window FC ``(..., R, R)``."""
        return topk_sparsify(dfc, self.top_percent)

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        dfc = batch["dfc"]
        b, w, r, _ = dfc.shape
        if r != self.n_rois:
            raise ConfigError(f"STAGIN was built for {self.n_rois} ROIs, got dfc of shape {tuple(dfc.shape)}")
        mask = batch.get("mask")
        if mask is None:
            mask = torch.ones(b, w, dtype=torch.bool, device=dfc.device)
        elif mask.shape != (b, w):
            raise ConfigError(f"batch['mask'] must be (B, W) = {(b, w)}, got {tuple(mask.shape)}")
        mask = mask.to(torch.bool)
        # Only real windows become graphs (padding would bias BatchNorm statistics).
        sel = mask.reshape(-1).nonzero().squeeze(1)  # (G,)
        g = int(sel.numel())
        dfc_g = dfc.reshape(b * w, r, r).index_select(0, sel)  # (G, R, R)
        adj = self.adjacency(dfc_g)
        wt = self.initial.weight  # (C, R + C)
        # window position in the crop; windows past the trained length share the last embedding
        pos = torch.arange(w, device=dfc.device).clamp(max=self.n_windows - 1)
        t = self.time_embed(pos) @ wt[:, r:].T + self.initial.bias  # (W, C)
        t_g = t.repeat(b, 1).index_select(0, sel)  # (G, C)
        # H^0 = X Theta_x + t_g. The dense path never forms H^0: the first GIN layer's first
        # Linear W commutes with the aggregation, so it gets P = H^0 W^T = X (Theta_x W^T) +
        # t_g W^T, made from an (R, C) and a (G, C) product instead of a (G R, C) x (C, C) one.
        proj = self.gnn == "dense"
        wx = wt[:, :r].T  # (R, C)
        if proj:
            w0 = self.gin[0].mlp[0].weight
            wx, t_g = wx @ w0.T, t_g @ w0.T
        if self.node_features == "onehot":
            x0 = wx.unsqueeze(0)  # (1, R, C)
        elif self.node_features == "window_fc":
            x0 = torch.matmul(dfc_g, wx)  # (G, R, C)
        else:
            fc = batch.get("fc")
            if fc is None:
                raise ConfigError("STAGIN node_features='static_fc' needs batch['fc'] (B, R, R)")
            x0 = torch.matmul(fc, wx).index_select(0, torch.div(sel, w, rounding_mode="floor"))
        h = x0 + t_g.unsqueeze(1)  # (G, R, C): H^0, or P on the dense path
        edge_index = None
        if self.gnn == "sparse":
            edge_index = dense_to_pyg(adj, h.detach(), edge_weight=False).edge_index

        logits = 0.0
        reg = dfc.new_zeros(())
        spatial, temporal = [], []
        pad = ~mask
        keep = mask.to(dfc.dtype)
        n_real = keep.sum(1, keepdim=True).clamp_min(1.0)  # (B, 1)
        for layer, (gin, ro, tf, lin) in enumerate(zip(self.gin, self.readouts, self.temporal, self.heads_out)):
            if edge_index is None:
                h = gin.forward_projected(h, adj) if layer == 0 else gin(h, adj)
            else:
                h = self._pyg[layer](h.reshape(g * r, -1), edge_index).reshape(g, r, -1)
            pooled, s = ro(h)  # (G, C), (G, R)
            if self.reg_lambda > 0 and self.training:
                reg = reg + orthogonality_penalty(h)
            seq = pooled.new_zeros(b * w, pooled.shape[-1]).index_copy(0, sel, pooled).reshape(b, w, -1)
            z, att = tf(seq, key_padding_mask=pad)  # (B, W, C), (B, W, W)
            z_mean = (z * keep.unsqueeze(-1)).sum(1) / n_real  # mean over real windows
            logits = logits + lin(self.dropout(z_mean))
            spatial.append(s.new_zeros(b * w, r).index_copy(0, sel, s).reshape(b, w, r))
            temporal.append(att * keep.unsqueeze(-1))  # rows of padded queries zeroed
        tmat = torch.stack(temporal).mean(0)
        attention = {
            "spatial": torch.stack(spatial).mean(0),
            "temporal": tmat.sum(1) / n_real,  # attention each window receives, mean over real queries
            "temporal_matrix": tmat,
        }
        return ModelOutput(logits=logits, attention=attention, aux_loss=self.reg_lambda * reg)


@register_model("stagin", kind="torch", input="dynamic_fc", description="STAGIN spatio-temporal attention GIN (dense, batched)")
def build_stagin(
    n_rois: int,
    n_windows: int,
    n_classes: int = 2,
    hidden: int = 64,
    n_layers: int = 2,
    heads: int = 1,
    readout: str = "sero",
    top_percent: float = 30.0,
    dropout: float = 0.5,
    attn_dropout: float = 0.1,
    reg_lambda: float = 1e-5,
    gnn: str = "dense",
    node_features: str = "window_fc",
    linear_path: bool = True,
    linear_gate: float = 0.1,
    linear_l2: float | str = 0.0,
    linear_init: str = "zeros",
) -> nn.Module:
    deep = STAGIN(
        n_rois,
        n_windows,
        n_classes,
        hidden=hidden,
        n_layers=n_layers,
        heads=heads,
        readout=readout,  # type: ignore[arg-type]
        top_percent=top_percent,
        dropout=dropout,
        attn_dropout=attn_dropout,
        reg_lambda=reg_lambda,
        gnn=gnn,  # type: ignore[arg-type]
        node_features=node_features,  # type: ignore[arg-type]
    )
    return maybe_linear_path(deep, n_rois, n_classes, linear_path, linear_gate, linear_l2, linear_init)
