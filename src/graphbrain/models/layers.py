"""Building blocks shared by the torch models.

* :class:`DenseGIN`  (Xu et al. 2019) on a dense batch of graphs::

      H' = MLP((1 + eps) H + A H)         A: (G, R, R),  H: (G, R, C_in) -> (G, R, C_out)

  with ``MLP = Linear -> BatchNorm -> ReLU -> Linear -> BatchNorm -> ReLU`` (STAGIN's
  ``LayerGIN``). ``A H`` is one batched matmul over all ``G`` graphs; this is the same
  function as torch_geometric's ``GINConv(mlp, train_eps=True)`` on the same graphs.
* :class:`AttentionEncoderLayer`  a post-norm Transformer encoder layer that also
  returns its head-averaged attention weights ``(B, L, L)``::

      Z = LayerNorm(X + MHSA(X)),   Y = LayerNorm(Z + FFN(Z))

* :func:`orthogonality_penalty`  STAGIN's readout regulariser, for node embeddings
  ``H`` ``(G, R, C)``: ``mean_g || triu(H H^T / rowmax(H H^T) - I) ||_F``.
"""

from __future__ import annotations

import torch
from torch import nn


def _autocast_on(t: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(t.device.type)


class _GINAggregate(torch.autograd.Function):
    """``A h + (1 + eps) h`` ``(G, R, C)`` with a hand-written backward (same maths as
    autograd's on ``baddbmm((1 + eps) h, A, h)``, fewer passes over the activations):

        dh = A^T dY + (1 + eps) dY       (one bmm, one in-place addcmul)
        deps = <dY, h>                   (one dot product, no temporary)

    autograd's version materialises ``(1 + eps) h`` and ``dY * h`` and adds the two
    gradients of ``h`` in a third pass. ``A`` gets no gradient (callers check).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, adj: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(h, adj, eps)
        return torch.bmm(adj, h).addcmul_(h, 1.0 + eps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        h, adj, eps = ctx.saved_tensors
        dh = deps = None
        if ctx.needs_input_grad[0]:
            dh = torch.bmm(adj.transpose(1, 2), grad).addcmul_(grad, 1.0 + eps)
        if ctx.needs_input_grad[2]:
            deps = torch.dot(grad.reshape(-1), h.reshape(-1)).reshape(eps.shape)
        return dh, None, deps


class MLP2(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU -> Linear -> BatchNorm1d -> ReLU on ``(N, C)`` rows.

    :meth:`forward_projected` starts from ``x W_0^T`` computed by the caller.
    """

    def __init__(self, c_in: int, c_out: int, c_hidden: int | None = None) -> None:
        c_hidden = c_hidden or c_out
        super().__init__(
            nn.Linear(c_in, c_hidden),
            nn.BatchNorm1d(c_hidden),
            nn.ReLU(inplace=True),  # on BatchNorm's fresh output (BatchNorm's backward keeps its input)
            nn.Linear(c_hidden, c_out),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
        )

    def reset_parameters(self) -> None:
        for m in self:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward_projected(self, p: torch.Tensor) -> torch.Tensor:
        """The MLP given ``p = x W_0^T`` ``(N, C_hidden)`` (the first Linear without its bias).
        ``p`` is overwritten (its bias is added in place)."""
        z = p.add_(self[0].bias)
        for m in list(self)[1:]:
            z = m(z)
        return z


class DenseGIN(nn.Module):
    """GIN on dense batched graphs: ``H' = MLP((1 + eps) H + A H)``.

    Shapes: ``h`` ``(G, R, C_in)``, ``adj`` ``(G, R, R)`` (row ``i`` aggregates the
    neighbours ``j`` with ``A_ij``) -> ``(G, R, C_out)``.
    """

    def __init__(self, c_in: int, c_out: int, *, train_eps: bool = True) -> None:
        super().__init__()
        self.mlp = MLP2(c_in, c_out)
        self.initial_eps = 0.0
        if train_eps:
            self.eps = nn.Parameter(torch.zeros(1))
        else:
            self.register_buffer("eps", torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def _aggregate(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        if adj.dim() == 3 and not adj.requires_grad and not _autocast_on(h):
            return _GINAggregate.apply(h, adj, self.eps)  # A h + (1 + eps) h, fewer passes
        if adj.dim() == 3:
            return torch.baddbmm((1.0 + self.eps) * h, adj, h)
        return torch.matmul(adj, h) + (1.0 + self.eps) * h

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        agg = self._aggregate(h, adj)
        g, r, c = agg.shape
        return self.mlp(agg.reshape(g * r, c)).reshape(g, r, -1)

    def forward_projected(self, p: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """``forward(h, adj)`` given ``p = h W_0^T`` ``(G, R, C_hidden)``, ``W_0`` the MLP's first
        Linear weight (``self.mlp[0].weight``). The first Linear commutes with the aggregation,
        ``W_0 (A h + (1 + eps) h) = A (h W_0^T) + (1 + eps) h W_0^T``, so a caller whose ``h``
        has structure (STAGIN's first layer: ROI term + window term) computes ``p`` for far
        fewer rows than ``G R``."""
        agg = self._aggregate(p, adj)
        g, r, c = agg.shape
        return self.mlp.forward_projected(agg.reshape(g * r, c)).reshape(g, r, -1)

    def as_pyg(self) -> nn.Module:
        """A torch_geometric ``GINConv`` sharing this layer's MLP and ``eps`` (same function,
        sparse message passing on ``(x (G*R, C), edge_index)``)."""
        from torch_geometric.nn import GINConv

        conv = GINConv(nn.Identity(), train_eps=True)  # GINConv would re-initialise a given MLP
        conv.nn = self.mlp
        del conv.eps
        conv.eps = self.eps  # shared parameter object, not a copy
        return conv


class AttentionEncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer returning head-averaged attention.

    ``x`` ``(B, L, C)`` -> (``(B, L, C)``, attention ``(B, L, L)``, rows sum to 1), with an
    optional key-padding mask for batches of sequences of different lengths.
    """

    def __init__(self, dim: int, heads: int = 1, ff_dim: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim or 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim or 2 * dim, dim)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.attn._reset_parameters()
        self.attn.out_proj.reset_parameters()
        for m in (self.ff[0], self.ff[3], self.norm1, self.norm2):
            m.reset_parameters()

    def forward(
        self, x: torch.Tensor, *, per_head: bool = False, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``key_padding_mask`` ``(B, L)`` bool, True = padding: no query attends to those keys
        (their attention weight is 0); padded positions' own outputs are meaningless."""
        z, w = self.attn(
            x, x, x, need_weights=True, average_attn_weights=not per_head, key_padding_mask=key_padding_mask
        )
        x = self.norm1(x + self.drop(z))
        x = self.norm2(x + self.drop(self.ff(x)))
        return x, w


class _BatchedGram(torch.autograd.Function):
    """``H H^T`` ``(G, R, R)`` with a one-matmul backward: ``dH = (dY + dY^T) H``.

    autograd's ``bmm`` backward runs two matmuls (one per operand); the Gram's operands are
    the same tensor, so one suffices. In STAGIN's training step the regulariser's Gram was
    the largest FLOP consumer (as large as the GIN aggregation), so this saves about a
    sixth of the step's matmul FLOPs.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(h)
        return torch.bmm(h, h.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (h,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), h)


class _OrthoPenalty(torch.autograd.Function):
    """``mean_g || triu(H H^T / rowmax(H H^T) - I) ||_F`` in one pass chain, with a
    hand-written backward equal to autograd's on that formula (``amax``'s gradient split
    evenly between ties, ``clamp_min(1e-8)``'s gradient only where the max is >= 1e-8, the
    norm's gradient 0 at 0). With ``X = inner / s`` (``s`` the clamped row max) and
    ``U = triu(X) - I``::

        dX    = (g / (G f_g)) U                          (upper triangle)
        ds_i  = -(1 / s_i) sum_j dX_ij X_ij = -(g / (G f_g s_i)) (sum_j U_ij^2 + U_ii)
        dinner = dX / s + [inner_ij == max_i] ds_i / n_ties_i
        dH    = (dinner + dinner^T) H                    (one bmm)

    autograd stores and walks ``inner / s``, ``- I``, ``triu`` and the norm as separate
    (G, R, R) tensors (about a dozen passes, forward and backward); this keeps ``U`` and the
    argmax mask only.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        inner = torch.bmm(h, h.transpose(1, 2))  # (G, R, R)
        m = inner.amax(dim=-1, keepdim=True)  # (G, R, 1)
        eq = inner == m
        s = m.clamp_min(1e-8)
        u = inner.triu_().div_(s)  # in place: triu(X)
        u.diagonal(0, 1, 2).sub_(1.0)  # U = triu(X) - I
        f = torch.linalg.vector_norm(u, dim=(1, 2))  # (G,)
        ctx.save_for_backward(h, u, eq, m, s, f)
        return f.mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h, u, eq, m, s, f = ctx.saved_tensors
        c = torch.where(f > 0, grad / (h.shape[0] * f), torch.zeros_like(f))  # (G,)
        cs = c[:, None] / s[..., 0]  # (G, R)
        d = u * cs.unsqueeze(-1)  # dX / s
        ds = -cs * (torch.linalg.vector_norm(u, dim=-1).square() + u.diagonal(0, 1, 2))
        dm = torch.where(m[..., 0] >= 1e-8, ds, torch.zeros_like(ds)) / eq.sum(-1, dtype=torch.int32)  # ties share
        d.addcmul_(eq, dm.unsqueeze(-1))
        return torch.bmm(d + d.transpose(1, 2), h)


def orthogonality_penalty(h: torch.Tensor) -> torch.Tensor:
    """STAGIN's orthogonal regulariser on node embeddings ``h`` ``(G, R, C)`` -> scalar."""
    if h.requires_grad and not _autocast_on(h):
        return _OrthoPenalty.apply(h)
    inner = _BatchedGram.apply(h) if h.requires_grad else torch.bmm(h, h.transpose(1, 2))  # (G, R, R)
    scale = inner.amax(dim=-1, keepdim=True).clamp_min(1e-8)
    eye = torch.eye(h.shape[1], dtype=h.dtype, device=h.device)
    return torch.triu(inner / scale - eye).norm(dim=(1, 2)).mean()


def reset_all(module: nn.Module) -> None:
    """Call ``reset_parameters`` on every direct and nested sub-module that has one."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
