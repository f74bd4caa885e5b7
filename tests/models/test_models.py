"""Every torch model: output and attention shapes, normalisation, and the dense GIN
equal to torch_geometric's sparse GINConv."""

from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric.nn import GINConv

from graphbrain.connectome.graphs import dense_to_pyg, topk_sparsify
from graphbrain.models import ModelOutput, available_models, get_model_spec
from graphbrain.models.layers import DenseGIN

B, W, R = 3, 6, 14


def _dfc(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 60, R, generator=g)
    from graphbrain.connectome.dynamic import sliding_window_fc

    return sliding_window_fc(x, 20, 8)  # (B, 6, R, R)


def test_all_torch_models_are_registered():
    for name in ("stagin", "bnt", "brainnetcnn", "gin", "gcn", "gat"):
        assert name in available_models()
        assert get_model_spec(name).kind == "torch"
    assert get_model_spec("stagin").input == "dynamic_fc"


@pytest.mark.parametrize("readout", ["sero", "garo"])
def test_stagin_shapes_and_attention(readout):
    torch.manual_seed(0)
    dfc = _dfc()
    assert dfc.shape == (B, W, R, R)
    m = get_model_spec("stagin").builder(
        n_rois=R, n_windows=W, n_classes=3, hidden=16, n_layers=2, readout=readout, heads=2, linear_path=False
    )
    out = m({"dfc": dfc})
    out.logits.sum().backward()  # training mode: every parameter receives a gradient
    assert all(p.grad is not None for p in m.parameters())
    m.eval()  # attention dropout off: attention weights are normalised
    out = m({"dfc": dfc})
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (B, 3)
    sp, tp, tm = out.attention["spatial"], out.attention["temporal"], out.attention["temporal_matrix"]
    assert sp.shape == (B, W, R) and ((sp >= 0) & (sp <= 1)).all()
    assert tp.shape == (B, W)
    torch.testing.assert_close(tp.sum(-1), torch.ones(B))
    assert tm.shape == (B, W, W)
    torch.testing.assert_close(tm.sum(-1), torch.ones(B, W))
    assert out.aux_loss.ndim == 0
    m.train()
    assert float(m({"dfc": dfc}).aux_loss) > 0  # orthogonal regulariser is on while training


def test_stagin_attention_depends_on_input_and_reset_is_deterministic():
    dfc = _dfc()
    torch.manual_seed(1)
    m = get_model_spec("stagin").builder(n_rois=R, n_windows=W, hidden=16, n_layers=2, linear_path=False).eval()
    a = m({"dfc": dfc})
    b = m({"dfc": _dfc(seed=5)})
    assert not torch.allclose(a.attention["spatial"], b.attention["spatial"])
    torch.manual_seed(1)
    m.reset_parameters()
    m2 = copy.deepcopy(m)
    torch.manual_seed(1)
    m2.reset_parameters()
    torch.testing.assert_close(m({"dfc": dfc}).logits, m2({"dfc": dfc}).logits)


@pytest.mark.parametrize("train_mode", [False, True])
def test_dense_gin_equals_pyg_ginconv(train_mode):
    torch.manual_seed(0)
    adj = topk_sparsify(_dfc().reshape(B * W, R, R), 30.0)
    h = torch.randn(B * W, R, 8)
    layer = DenseGIN(8, 16)
    layer.eps.data.fill_(0.37)
    # give BatchNorm non-trivial running statistics and affine parameters
    with torch.no_grad():
        for m in layer.mlp:
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    conv = GINConv(copy.deepcopy(layer.mlp), train_eps=True)  # (GINConv re-initialises its MLP)
    conv.nn.load_state_dict(layer.mlp.state_dict())  # independent copy of the same weights
    conv.eps.data.fill_(0.37)
    layer.train(train_mode)
    conv.train(train_mode)
    dense = layer(h, adj)
    g = dense_to_pyg(adj, h, edge_weight=False)
    sparse = conv(g.x, g.edge_index).reshape(B * W, R, 16)
    torch.testing.assert_close(dense, sparse, atol=1e-5, rtol=1e-5)


def test_stagin_dense_and_sparse_backends_agree():
    torch.manual_seed(0)
    dense = get_model_spec("stagin").builder(n_rois=R, n_windows=W, hidden=16, n_layers=3, linear_path=False).eval()
    sparse = get_model_spec("stagin").builder(
        n_rois=R, n_windows=W, hidden=16, n_layers=3, gnn="sparse", linear_path=False
    ).eval()
    sparse.load_state_dict(dense.state_dict())
    dfc = _dfc()
    a, b = dense({"dfc": dfc}), sparse({"dfc": dfc})
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.attention["spatial"], b.attention["spatial"], atol=1e-5, rtol=1e-5)


def _fc(seed=0):
    return _dfc(seed)[:, 0]


def test_bnt_shapes_and_attention():
    torch.manual_seed(0)
    m = get_model_spec("bnt").builder(n_rois=R, n_windows=None, heads=2, n_clusters=4, linear_path=False).eval()
    out = m({"fc": _fc()})
    assert out.logits.shape == (B, 2)
    att, node, cl = out.attention["attention"], out.attention["node"], out.attention["cluster"]
    assert att.shape == (B, 2, R, R)
    torch.testing.assert_close(att.sum(-1), torch.ones(B, 2, R))
    assert node.shape == (B, R)
    torch.testing.assert_close(node.sum(-1), torch.ones(B))
    assert cl.shape == (B, R, 4)
    torch.testing.assert_close(cl.sum(-1), torch.ones(B, R))
    # cluster centres are orthonormal
    c = m.readout.centres
    torch.testing.assert_close(c @ c.T, torch.eye(4), atol=1e-5, rtol=0)


def test_brainnetcnn_shapes_and_e2e_definition():
    torch.manual_seed(0)
    m = get_model_spec("brainnetcnn").builder(n_rois=R, n_windows=None, linear_path=False)
    out = m({"fc": _fc()})
    assert out.logits.shape == (B, 2)
    torch.testing.assert_close(out.attention["node"].sum(-1), torch.ones(B))
    # E2E: Y[f,i,j] = sum_k A[i,k] r_f[k] + sum_k A[k,j] c_f[k] + biases
    e2e = m.e2e[0]
    a = _fc()[:1].unsqueeze(1)
    y = e2e(a)[0]
    r = e2e.row.weight[:, 0, 0, :]  # (F, R)
    c = e2e.col.weight[:, 0, :, 0]  # (F, R)
    ref = (
        torch.einsum("ik,fk->fi", a[0, 0], r)[:, :, None]
        + torch.einsum("kj,fk->fj", a[0, 0], c)[:, None, :]
        + (e2e.row.bias + e2e.col.bias)[:, None, None]
    )
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["gin", "gcn", "gat"])
def test_static_gnn_shapes(name):
    torch.manual_seed(0)
    m = get_model_spec(name).builder(n_rois=R, n_windows=None, hidden=16)
    out = m({"fc": _fc()})
    assert out.logits.shape == (B, 2)
    out.logits.sum().backward()
    if name == "gat":
        node = out.attention["node"]
        assert node.shape == (B, R)
        torch.testing.assert_close(node.sum(-1), torch.ones(B), atol=1e-5, rtol=1e-5)
    # graphs in a batch are independent: subject 0's logits do not depend on subject 1
    m.eval()
    fc = _fc()
    fc2 = fc.clone()
    fc2[1] = _fc(seed=9)[1]
    torch.testing.assert_close(m({"fc": fc}).logits[0], m({"fc": fc2}).logits[0])
