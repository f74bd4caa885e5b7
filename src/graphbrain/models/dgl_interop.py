"""DGL interoperability (optional extra ``dgl``): graph batches to and from DGL graphs.

    dense (B, R, R) adjacency + (B, R, F) features  <->  dgl.batch([g_1 ... g_B])
    torch_geometric Batch                           <->  dgl batched graph

Node features travel as ``ndata["x"]``, edge weights as ``edata["w"]``. ``dgl`` is
imported lazily; without it every function raises
:class:`~graphbrain.errors.MissingDependencyError` saying how to install it. Note: DGL
publishes no build for the torch version this project pins (2.13), so the extra may not
install; these functions and their tests are kept for environments that have one.
"""

from __future__ import annotations

from typing import Any

from graphbrain.connectome.graphs import dense_to_pyg, pyg_to_dense
from graphbrain.errors import MissingDependencyError


def _dgl() -> Any:
    try:
        import dgl
    except Exception as err:  # ImportError, or a DGL build that fails against this torch
        raise MissingDependencyError("dgl", "dgl", "DGL graph conversion") from err
    return dgl


def pyg_to_dgl(batch: Any) -> Any:
    """torch_geometric ``Batch`` -> batched DGL graph (same node order, edges src -> dst)."""
    dgl = _dgl()
    src, dst = batch.edge_index
    g = dgl.graph((src, dst), num_nodes=batch.x.shape[0])
    g.ndata["x"] = batch.x
    if getattr(batch, "edge_weight", None) is not None:
        g.edata["w"] = batch.edge_weight
    n_graphs = int(batch.num_graphs)
    counts_n = batch.ptr[1:] - batch.ptr[:-1]
    graph_of_edge = batch.batch[src]
    import torch

    counts_e = torch.bincount(graph_of_edge, minlength=n_graphs)
    g.set_batch_num_nodes(counts_n)
    g.set_batch_num_edges(counts_e)
    return g


def dgl_to_pyg(g: Any) -> Any:
    """Batched DGL graph -> torch_geometric ``Batch``."""
    import torch
    from torch_geometric.data import Batch

    _dgl()
    src, dst = g.edges()
    counts = g.batch_num_nodes()
    batch = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    data = {"x": g.ndata["x"], "edge_index": torch.stack([src, dst]), "batch": batch,
            "ptr": torch.cat([counts.new_zeros(1), counts.cumsum(0)])}
    if "w" in g.edata:
        data["edge_weight"] = g.edata["w"]
    out = Batch(**data)
    out._num_graphs = int(counts.numel())
    return out


def dense_to_dgl(adj: Any, x: Any) -> Any:
    """Dense batch ``(B, R, R)`` + ``(B, R, F)`` -> batched DGL graph."""
    return pyg_to_dgl(dense_to_pyg(adj, x))


def dgl_to_dense(g: Any, n_rois: int | None = None) -> tuple[Any, Any]:
    """Batched DGL graph -> (adjacency ``(B, R, R)``, features ``(B, R, F)``)."""
    return pyg_to_dense(dgl_to_pyg(g), n_rois)
