"""Connectomes -> graphs: sparsification, node features, dense and PyG batches.

All functions take batched torch tensors (numpy arrays are converted) and work on the
last two axes, so ``(R, R)``, ``(B, R, R)`` and ``(B, W, R, R)`` are all accepted and
processed in one vectorised call -- there is no Python loop over graphs.

Sparsification (``A`` a symmetric ``(..., R, R)`` connectivity matrix, diagonal ignored):

* :func:`topk_sparsify`  keep the ``k = round(p/100 * R(R-1)/2)`` strongest edges of
  each graph's upper triangle (``torch.topk`` on the flattened triangle, float32),
  mirrored to the lower triangle: every graph keeps exactly ``k`` undirected edges;
* :func:`threshold_adjacency`  keep edges with ``A_ij > t`` (or ``|A_ij| > t``);
* :func:`knn_adjacency`  keep, for each node, its ``k`` strongest neighbours
  (symmetrised by "or").

The result is a binary mask (``weighted=False``) or ``A`` masked (``weighted=True``),
zero on the diagonal. Node features: :func:`node_features` gives FC rows
``(..., R, R)`` or one-hot ROI identity. :func:`dense_to_pyg` turns a dense batch into a
torch_geometric :class:`~torch_geometric.data.Batch`; :func:`pyg_to_dense` goes back.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from graphbrain.errors import ConfigError, DataError


def _as_tensor(x: Any) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _check_square(a: Any, what: str = "adjacency") -> None:
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise DataError(f"{what} must be (..., R, R) square matrices, got shape {tuple(a.shape)}", reason="wrong_shape")


def n_topk_edges(n_rois: int, percent: float) -> int:
    """Number of undirected edges kept per graph by :func:`topk_sparsify`."""
    if not 0.0 < percent <= 100.0:
        raise ConfigError(f"top_percent must be in (0, 100], got {percent}")
    n_pairs = n_rois * (n_rois - 1) // 2
    return max(1, min(n_pairs, int(round(percent / 100.0 * n_pairs))))


def topk_sparsify(
    adj: Any, percent: float = 30.0, *, absolute: bool = False, weighted: bool = False
) -> Any:
    """Keep the top ``percent`` % of edges of every graph in a batch.

    Args:
        adj: ``(..., R, R)`` symmetric matrices (torch tensor or numpy array).
        percent: percentage of the ``R(R-1)/2`` off-diagonal pairs to keep.
        absolute: rank edges by ``|A_ij|`` instead of ``A_ij``.
        weighted: return ``A`` on the kept edges instead of a 0/1 mask.

    Returns:
        ``(..., R, R)`` tensor (dtype of ``adj``), symmetric, zero diagonal, with
        exactly ``n_topk_edges(R, percent)`` undirected edges per graph.
    """
    import torch

    a = _as_tensor(adj)
    _check_square(a)
    r = a.shape[-1]
    k = n_topk_edges(r, percent)
    iu = torch.triu_indices(r, r, offset=1, device=a.device)
    flat_idx = iu[0] * r + iu[1]  # (P,)
    lead = a.shape[:-2]
    tri = a.reshape(*lead, r * r).index_select(-1, flat_idx)  # (..., P)
    score = tri.abs() if absolute else tri
    score = torch.nan_to_num(score.float(), nan=-float("inf"))
    top = torch.topk(score, k, dim=-1, sorted=False).indices  # (..., k)
    keep = torch.zeros(score.shape, dtype=torch.bool, device=a.device).scatter_(-1, top, True)
    mask = torch.zeros(*lead, r * r, dtype=torch.bool, device=a.device)
    mask[..., flat_idx] = keep
    mask = mask.reshape(*lead, r, r)
    mask = mask | mask.transpose(-1, -2)
    if weighted:
        return torch.where(mask, a, torch.zeros((), dtype=a.dtype, device=a.device))
    return mask.to(a.dtype if a.is_floating_point() else torch.float32)


def threshold_adjacency(adj: Any, threshold: float, *, absolute: bool = False, weighted: bool = False) -> Any:
    """Keep edges whose weight (or absolute weight) exceeds ``threshold``; zero diagonal."""
    import torch

    a = _as_tensor(adj)
    _check_square(a)
    score = a.abs() if absolute else a
    eye = torch.eye(a.shape[-1], dtype=torch.bool, device=a.device)
    mask = (score > threshold) & ~eye
    if weighted:
        return torch.where(mask, a, torch.zeros((), dtype=a.dtype, device=a.device))
    return mask.to(a.dtype)


def knn_adjacency(adj: Any, k: int, *, absolute: bool = False, weighted: bool = False) -> Any:
    """Each node keeps its ``k`` strongest neighbours; symmetrised (edge if either keeps it)."""
    import torch

    a = _as_tensor(adj)
    _check_square(a)
    r = a.shape[-1]
    if not 1 <= k < r:
        raise ConfigError(f"k must be in [1, R-1={r - 1}], got {k}")
    score = (a.abs() if absolute else a).float()
    eye = torch.eye(r, dtype=torch.bool, device=a.device)
    score = score.masked_fill(eye, -float("inf"))
    top = torch.topk(score, k, dim=-1).indices
    mask = torch.zeros(score.shape, dtype=torch.bool, device=a.device).scatter_(-1, top, True)
    mask = mask | mask.transpose(-1, -2)
    if weighted:
        return torch.where(mask, a, torch.zeros((), dtype=a.dtype, device=a.device))
    return mask.to(a.dtype)


def sparsify(adj: Any, method: Literal["topk", "threshold", "knn"] = "topk", value: float = 30.0, **kw: Any) -> Any:
    """Dispatch by name: ``topk`` (value = percent), ``threshold`` (value = t), ``knn`` (value = k)."""
    if method == "topk":
        return topk_sparsify(adj, value, **kw)
    if method == "threshold":
        return threshold_adjacency(adj, value, **kw)
    if method == "knn":
        return knn_adjacency(adj, int(value), **kw)
    raise ConfigError(f"unknown sparsification {method!r}; use 'topk', 'threshold' or 'knn'")


def node_features(fc: Any, kind: Literal["fc_rows", "onehot"] = "fc_rows") -> Any:
    """Node features for each graph: FC rows ``(..., R, R)`` or one-hot ROI identity ``(..., R, R)``."""
    import torch

    a = _as_tensor(fc)
    _check_square(a, "connectivity")
    if kind == "fc_rows":
        return torch.nan_to_num(a.clone())
    if kind == "onehot":
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        return eye.expand(*a.shape[:-2], -1, -1).clone()
    raise ConfigError(f"unknown node feature kind {kind!r}; use 'fc_rows' or 'onehot'")


def dense_to_pyg(adj: Any, x: Any, y: Any = None, *, edge_weight: bool = True) -> Any:
    """A dense batch -> one torch_geometric ``Batch`` (no Python loop over graphs).

    Args:
        adj: ``(B, R, R)`` sparse-ish adjacency (nonzero = edge; values become
            ``edge_weight``).
        x: ``(B, R, F)`` node features.
        y: optional ``(B,)`` graph labels.

    Returns:
        ``Batch`` with ``x`` ``(B*R, F)``, ``edge_index`` ``(2, E)`` (global node ids,
        directed both ways), ``edge_weight`` ``(E,)`` when asked, ``batch`` ``(B*R,)``,
        ``ptr`` and ``y``.
    """
    import torch
    from torch_geometric.data import Batch

    a = _as_tensor(adj)
    xf = _as_tensor(x)
    if a.dim() != 3:
        raise DataError(f"dense_to_pyg expects (B, R, R) adjacency, got {tuple(a.shape)}", reason="wrong_shape")
    b, r, _ = a.shape
    if xf.shape[:2] != (b, r):
        raise DataError(f"node features {tuple(xf.shape)} do not match adjacency {tuple(a.shape)}", reason="wrong_shape")
    g, i, j = torch.nonzero(a, as_tuple=True)
    edge_index = torch.stack([g * r + j, g * r + i])  # message j -> i  (row i aggregates column j)
    batch = torch.arange(b, device=a.device).repeat_interleave(r)
    data: dict[str, Any] = {
        "x": xf.reshape(b * r, -1),
        "edge_index": edge_index,
        "batch": batch,
        "ptr": torch.arange(0, (b + 1) * r, r, device=a.device),
    }
    if edge_weight:
        data["edge_weight"] = a[g, i, j]
    if y is not None:
        data["y"] = _as_tensor(y) if not isinstance(y, torch.Tensor) else y
    out = Batch(**data)
    out._num_graphs = b
    return out


def pyg_to_dense(batch: Any, n_rois: int | None = None) -> tuple[Any, Any]:
    """``Batch`` -> (adjacency ``(B, R, R)``, node features ``(B, R, F)``); all graphs need ``R`` nodes."""
    from torch_geometric.utils import to_dense_adj, to_dense_batch

    ew = getattr(batch, "edge_weight", None)
    x, _ = to_dense_batch(batch.x, batch.batch, max_num_nodes=n_rois)
    adj = to_dense_adj(batch.edge_index, batch.batch, edge_attr=ew, max_num_nodes=x.shape[1])
    # to_dense_adj puts edge (src -> dst) at [src, dst]; our convention is row i aggregates j
    return adj.transpose(-1, -2), x


__all__ = [
    "dense_to_pyg",
    "knn_adjacency",
    "n_topk_edges",
    "node_features",
    "pyg_to_dense",
    "sparsify",
    "threshold_adjacency",
    "topk_sparsify",
]
