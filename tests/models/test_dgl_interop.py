"""DGL conversion (optional extra); skipped when dgl does not import."""

from __future__ import annotations

import pytest
import torch

dgl = pytest.importorskip("dgl")

from graphbrain.connectome.graphs import topk_sparsify  # noqa: E402
from graphbrain.models.dgl_interop import dense_to_dgl, dgl_to_dense  # noqa: E402


def test_dense_dgl_round_trip():
    a = torch.randn(3, 6, 6)
    a = topk_sparsify((a + a.transpose(1, 2)) / 2, 40.0, weighted=True)
    x = torch.randn(3, 6, 4)
    g = dense_to_dgl(a, x)
    assert g.batch_size == 3 and g.num_nodes() == 18 and g.num_edges() == int((a != 0).sum())
    a2, x2 = dgl_to_dense(g, 6)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(x2, x)
