"""Sparsification, node features and dense <-> PyG conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.connectome.graphs import (
    dense_to_pyg,
    knn_adjacency,
    n_topk_edges,
    node_features,
    pyg_to_dense,
    sparsify,
    threshold_adjacency,
    topk_sparsify,
)
from graphbrain.errors import ConfigError


def _sym(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, generator=g)
    return (a + a.transpose(-1, -2)) / 2


@pytest.mark.parametrize("percent", [5.0, 30.0, 100.0])
def test_topk_keeps_exact_count_and_the_largest_edges(percent):
    a = _sym((3, 4, 12, 12))
    mask = topk_sparsify(a, percent)
    k = n_topk_edges(12, percent)
    iu = np.triu_indices(12, 1)
    m = mask.numpy()
    assert m.shape == (3, 4, 12, 12)
    assert np.array_equal(m, m.swapaxes(-1, -2))
    assert (np.diagonal(m, axis1=-2, axis2=-1) == 0).all()
    counts = m[..., iu[0], iu[1]].sum(-1)
    assert (counts == k).all()
    # reference: per graph, the k largest upper-triangle values
    an = a.numpy()
    for b in range(3):
        for w in range(4):
            vals = an[b, w][iu]
            kept = m[b, w][iu].astype(bool)
            thresh = np.sort(vals)[::-1][k - 1]
            assert (vals[kept] >= thresh).all() and (vals[~kept] <= thresh).all()


def test_topk_with_ties_still_keeps_exact_count_and_absolute_ranking():
    a = torch.ones(2, 10, 10)  # every pair tied
    assert (topk_sparsify(a, 30.0).sum(dim=(1, 2)) == 2 * n_topk_edges(10, 30.0)).all()
    b = _sym((5, 9, 9), seed=1)
    w = topk_sparsify(b, 20.0, absolute=True, weighted=True)
    iu = np.triu_indices(9, 1)
    for g in range(5):
        vals = np.abs(b[g].numpy()[iu])
        kept = w[g].numpy()[iu] != 0
        assert kept.sum() == n_topk_edges(9, 20.0)
        assert vals[kept].min() >= vals[~kept].max()
        np.testing.assert_array_equal(w[g].numpy()[iu][kept], b[g].numpy()[iu][kept])


def test_topk_accepts_numpy_and_rejects_bad_percent():
    a = _sym((6, 6)).numpy()
    assert topk_sparsify(a, 50).shape == (6, 6)
    with pytest.raises(ConfigError):
        topk_sparsify(a, 0)


def test_threshold_and_knn():
    a = _sym((2, 8, 8), seed=2)
    t = threshold_adjacency(a, 0.5)
    eye = torch.eye(8, dtype=torch.bool)
    assert torch.equal(t.bool(), (a > 0.5) & ~eye)
    kn = knn_adjacency(a, 3)
    assert torch.equal(kn, kn.transpose(-1, -2))
    assert (kn.sum(-1) >= 3).all() and (torch.diagonal(kn, dim1=-2, dim2=-1) == 0).all()
    # each node's own 3 strongest neighbours are kept
    top = torch.topk(a.masked_fill(eye, -1e9), 3, dim=-1).indices
    assert bool(torch.gather(kn, -1, top).all())
    assert torch.equal(sparsify(a, "knn", 3), kn)


def test_node_features():
    fc = _sym((2, 5, 5))
    assert torch.equal(node_features(fc, "fc_rows"), fc)
    oh = node_features(fc, "onehot")
    assert torch.equal(oh[1], torch.eye(5))


def test_dense_pyg_round_trip():
    a = topk_sparsify(_sym((4, 7, 7), seed=3), 40.0, weighted=True)
    x = torch.randn(4, 7, 3)
    batch = dense_to_pyg(a, x)
    assert batch.num_graphs == 4 and batch.x.shape == (28, 3)
    assert batch.edge_index.shape[1] == int((a != 0).sum())
    # edges never cross graphs
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
    a2, x2 = pyg_to_dense(batch, 7)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(x2, x)
