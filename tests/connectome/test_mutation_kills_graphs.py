"""connectome/graphs.py against hand computations and PyG's own batching (kills the
mutants a sampled mutation run found alive; each test states the property it checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.connectome.graphs import (
    dense_to_pyg,
    knn_adjacency,
    n_topk_edges,
    node_features,
    sparsify,
    threshold_adjacency,
    topk_sparsify,
)
from graphbrain.errors import ConfigError, DataError


@pytest.fixture
def fc() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (2, 5, 5))
    a = (a + a.transpose(0, 2, 1)) / 2
    a[:, range(5), range(5)] = 1.0
    return a


def _thr_by_hand(a: np.ndarray, t: float, absolute: bool) -> np.ndarray:
    s = np.abs(a) if absolute else a
    m = s > t  # strictly above
    m[..., range(a.shape[-1]), range(a.shape[-1])] = False
    return m


@pytest.mark.parametrize("absolute", [False, True])
def test_threshold_adjacency_equals_a_hand_mask_weighted_and_binary(fc, absolute):
    m = _thr_by_hand(fc, 0.2, absolute)
    t = torch.as_tensor(fc)  # float64 tensors stay float64; numpy input becomes float32
    assert threshold_adjacency(fc, 0.2).dtype == torch.float32
    binary = threshold_adjacency(t, 0.2, absolute=absolute)
    weighted = threshold_adjacency(t, 0.2, absolute=absolute, weighted=True)
    assert binary.dtype == torch.float64
    np.testing.assert_array_equal(binary.numpy(), m.astype(float))
    np.testing.assert_array_equal(weighted.numpy(), np.where(m, fc, 0.0))
    # an edge exactly at the threshold is not kept ("exceeds")
    a = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert threshold_adjacency(a, 0.5).sum() == 0
    # the dispatcher passes options through
    np.testing.assert_array_equal(sparsify(t, "threshold", 0.2, absolute=absolute, weighted=True).numpy(),
                                  weighted.numpy())


def test_knn_weighted_keeps_the_weights_and_binary_keeps_the_dtype(fc):
    k = 2
    t = torch.as_tensor(fc)
    binary = knn_adjacency(t, k)
    weighted = knn_adjacency(t, k, weighted=True)
    assert binary.dtype == torch.float64 and set(np.unique(binary.numpy())) <= {0.0, 1.0}
    np.testing.assert_array_equal(weighted.numpy(), np.where(binary.numpy() > 0, fc, 0.0))
    # by hand: each node's k largest off-diagonal neighbours, symmetrised
    want = np.zeros_like(fc, dtype=bool)
    for b in range(fc.shape[0]):
        s = fc[b].copy()
        np.fill_diagonal(s, -np.inf)
        for i in range(5):
            want[b, i, np.argsort(-s[i])[:k]] = True
    want |= want.transpose(0, 2, 1)
    np.testing.assert_array_equal(binary.numpy() > 0, want)


def test_n_topk_edges_accepts_small_percentages_and_names_the_problem():
    # 0.5 % of 100 x 99 / 2 = 4950 edges is about 25 edges: small percentages are valid
    assert n_topk_edges(100, 0.5) == pytest.approx(0.005 * 4950, abs=1)
    for bad in (0.0, -1.0, 100.5):
        with pytest.raises(ConfigError, match="top_percent must be in"):
            n_topk_edges(10, bad)


def test_topk_ignores_nan_scores(fc):
    a = fc.copy()
    a[0, 0, 1] = a[0, 1, 0] = np.nan
    out = topk_sparsify(a, 20.0)
    assert torch.isfinite(out).all() and out[0, 0, 1] == 0 and out[0, 1, 0] == 0


def test_onehot_node_features_of_a_batch_are_identities():
    x = node_features(np.zeros((3, 4, 4)), "onehot")
    assert x.shape == (3, 4, 4)
    np.testing.assert_array_equal(x.numpy(), np.broadcast_to(np.eye(4), (3, 4, 4)))


def test_dense_to_pyg_equals_pyg_batching_of_the_same_graphs(fc):
    from torch_geometric.data import Batch, Data

    adj = threshold_adjacency(fc, 0.0, weighted=True)
    x = node_features(fc)
    y = np.array([0, 1])
    got = dense_to_pyg(adj, x, y)
    graphs = []
    for b in range(2):
        i, j = torch.nonzero(adj[b], as_tuple=True)
        graphs.append(Data(x=x[b], edge_index=torch.stack([i, j]), edge_weight=adj[b, i, j], y=torch.tensor([y[b]])))
    want = Batch.from_data_list(graphs)
    np.testing.assert_array_equal(got.ptr.numpy(), want.ptr.numpy())
    np.testing.assert_array_equal(got.batch.numpy(), want.batch.numpy())
    assert isinstance(got.y, torch.Tensor) and got.y.tolist() == [0, 1]
    assert got.num_graphs == 2
    with pytest.raises(DataError) as err:
        dense_to_pyg(adj[0], x[0])
    assert err.value.reason == "wrong_shape"
