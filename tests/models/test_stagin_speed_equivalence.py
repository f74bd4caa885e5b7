"""The STAGIN speed work must not change the maths or the parameters.

A fixed-seed STAGIN is run through its (optimised) forward and backward, and through an
unoptimised reference written here from the module's equations with plain autograd ops
(``A h + (1 + eps) h`` then the MLP; ``(h * s).mean`` readout; the regulariser's formula
``mean_g ||triu(H H^T / rowmax - I)||_F``). Logits, the auxiliary loss and every parameter
gradient must agree; the state_dict keys and shapes must be the ones saved models have.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphbrain.connectome.graphs import topk_sparsify
from graphbrain.models.layers import DenseGIN, _GINAggregate, orthogonality_penalty
from graphbrain.models.stagin import STAGIN, _node_mean, _weighted_node_mean, _WeightedSum

R, W, C, L, K = 12, 6, 16, 2, 2


def _reference_ortho(h: torch.Tensor) -> torch.Tensor:
    inner = torch.bmm(h, h.transpose(1, 2))
    scale = inner.amax(dim=-1, keepdim=True).clamp_min(1e-8)
    eye = torch.eye(h.shape[1], dtype=h.dtype)
    return torch.triu(inner / scale - eye).norm(dim=(1, 2)).mean()


def _reference_forward(m: STAGIN, dfc: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """STAGIN's equations with plain ops, on ``m``'s own parameters and sub-modules."""
    b, w, r, _ = dfc.shape
    sel = mask.reshape(-1).nonzero().squeeze(1)
    g = int(sel.numel())
    dfc_g = dfc.reshape(b * w, r, r)[sel]
    adj = topk_sparsify(dfc_g, m.top_percent)
    wt = m.initial.weight
    pos = torch.arange(w).clamp(max=m.n_windows - 1)
    t = m.time_embed(pos) @ wt[:, r:].T + m.initial.bias
    if m.node_features == "onehot":
        x0 = wt[:, :r].T.unsqueeze(0).expand(g, r, -1)
    else:  # window_fc node features
        x0 = dfc_g @ wt[:, :r].T
    h = x0 + t.repeat(b, 1)[sel].unsqueeze(1)
    logits, reg = 0.0, dfc.new_zeros(())
    keep = mask.to(dfc.dtype)
    n_real = keep.sum(1, keepdim=True).clamp_min(1.0)
    for gin, ro, tf, lin in zip(m.gin, m.readouts, m.temporal, m.heads_out):
        z = (torch.matmul(adj, h) + (1.0 + gin.eps) * h).reshape(g * r, -1)
        for mod in gin.mlp:  # nn.Linear, nn.BatchNorm1d, nn.ReLU one by one: the unfused modules
            z = mod(z)
        h = z.reshape(g, r, -1)
        s = torch.sigmoid(ro.attend(ro.embed(h.mean(1))))
        pooled = (h * ro.dropout(s).unsqueeze(-1)).mean(1)
        if m.training:
            reg = reg + _reference_ortho(h)
        seq = torch.zeros(b * w, pooled.shape[-1], dtype=pooled.dtype).index_copy(0, sel, pooled).reshape(b, w, -1)
        z, _ = tf(seq, key_padding_mask=~mask)
        logits = logits + lin(m.dropout((z * keep.unsqueeze(-1)).sum(1) / n_real))
    return logits, m.reg_lambda * reg


def _model_and_input(dtype: torch.dtype, node_features: str = "window_fc") -> tuple[STAGIN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    m = STAGIN(R, W, K, hidden=C, n_layers=L, node_features=node_features, reg_lambda=0.5).to(dtype)
    # eps != 0: with eps = 0 two adjacent nodes with the same closed neighbourhood get identical
    # embeddings, their Gram rows tie at the row max, and the regulariser's (sub)gradient then
    # depends on rounding (the optimised path sums in a different order)
    with torch.no_grad():
        for i, gin in enumerate(m.gin):
            gin.eps.fill_(0.3 + 0.2 * i)
    for mod in m.modules():  # dropout off: train mode then differs from eval only in BatchNorm
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
        if isinstance(mod, torch.nn.MultiheadAttention):
            mod.dropout = 0.0
    x = torch.randn(3, 40, R, generator=torch.Generator().manual_seed(1), dtype=dtype)
    x = x @ torch.randn(R, R, generator=torch.Generator().manual_seed(2), dtype=dtype)
    from graphbrain.connectome.dynamic import sliding_window_fc

    dfc = sliding_window_fc(x, 10, 6).to(dtype)  # (3, 6, R, R)
    mask = torch.ones(3, W, dtype=torch.bool)
    mask[2, 4:] = False  # a shorter scan: padded windows
    return m, dfc, mask


@pytest.mark.parametrize("node_features", ["window_fc", "onehot"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_logits_aux_loss_and_gradients_equal_the_reference(dtype, tol, node_features):
    m, dfc, mask = _model_and_input(dtype, node_features)
    y = torch.tensor([0, 1, 1])
    for train in (True, False):
        m.train(train)
        # BatchNorm running statistics move in train mode: same starting state for both runs
        state = {k: v.clone() for k, v in m.state_dict().items()}
        out = m({"dfc": dfc, "mask": mask})
        m.zero_grad()
        (F.cross_entropy(out.logits, y) + out.aux_loss).backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        moved = {k: v.clone() for k, v in m.state_dict().items()}
        m.load_state_dict(state)
        ref_logits, ref_aux = _reference_forward(m, dfc, mask)
        m.zero_grad()
        (F.cross_entropy(ref_logits, y) + ref_aux).backward()
        # the fused BatchNorm moves the running statistics (and the batch counter) as nn.BatchNorm1d
        for k, v in m.state_dict().items():
            assert torch.allclose(moved[k].to(v.dtype), v, rtol=0, atol=tol * max(1.0, float(v.abs().max()))), k
        if train:
            assert any(not torch.equal(state[k], v) for k, v in m.state_dict().items() if "running_mean" in k)
        scale = max(1.0, float(ref_logits.abs().max()))
        assert torch.allclose(out.logits, ref_logits, rtol=0, atol=tol * scale)
        assert torch.allclose(out.aux_loss, ref_aux, rtol=0, atol=tol)
        if train:
            assert float(ref_aux) > 0  # the regulariser is really in the comparison
            assert set(grads) == {n for n, p in m.named_parameters() if p.grad is not None}
            for n, p in m.named_parameters():
                if p.grad is not None:
                    gs = max(1.0, float(p.grad.abs().max()))
                    assert torch.allclose(grads[n], p.grad, rtol=0, atol=10 * tol * gs), n


def test_state_dict_keys_and_shapes_are_unchanged():
    m = STAGIN(R, W, K, hidden=C, n_layers=L)
    bn = {"weight": (C,), "bias": (C,), "running_mean": (C,), "running_var": (C,), "num_batches_tracked": ()}
    want = {"time_embed.weight": (W, C), "initial.weight": (C, R + C), "initial.bias": (C,)}
    for i in range(L):
        want[f"gin.{i}.eps"] = (1,)
        for j in (0, 3):
            want[f"gin.{i}.mlp.{j}.weight"] = (C, C)
            want[f"gin.{i}.mlp.{j}.bias"] = (C,)
        for j in (1, 4):
            want.update({f"gin.{i}.mlp.{j}.{k}": v for k, v in bn.items()})
        want.update({f"readouts.{i}.embed.0.weight": (C, C), f"readouts.{i}.embed.0.bias": (C,),
                     f"readouts.{i}.attend.weight": (R, C), f"readouts.{i}.attend.bias": (R,)})
        want.update({f"readouts.{i}.embed.1.{k}": v for k, v in bn.items()})
        want.update({f"temporal.{i}.attn.in_proj_weight": (3 * C, C), f"temporal.{i}.attn.in_proj_bias": (3 * C,),
                     f"temporal.{i}.attn.out_proj.weight": (C, C), f"temporal.{i}.attn.out_proj.bias": (C,),
                     f"temporal.{i}.ff.0.weight": (2 * C, C), f"temporal.{i}.ff.0.bias": (2 * C,),
                     f"temporal.{i}.ff.3.weight": (C, 2 * C), f"temporal.{i}.ff.3.bias": (C,),
                     f"heads_out.{i}.weight": (K, C), f"heads_out.{i}.bias": (K,)})
        for nm in ("norm1", "norm2"):
            want.update({f"temporal.{i}.{nm}.weight": (C,), f"temporal.{i}.{nm}.bias": (C,)})
    got = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert got == want


def test_ortho_penalty_zero_rows_and_ties_match_autograd():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(4, 9, 5, generator=g, dtype=torch.float64)
    h[0, 2] = 0.0  # a zero row: row max 0 -> clamped, no gradient through the max
    h[1, 5] = h[1, 3]  # duplicated rows: ties in the row max (gradient split between them)
    h[2] = 0.0  # a whole zero graph: norm ||-I|| only, no gradient
    h[3, :, 0] = torch.linspace(0.1, 2.0, 9)  # dominant rows: the max is off the diagonal
    h[3, :, 1:] = 0.01
    a = h.clone().requires_grad_(True)
    b = h.clone().requires_grad_(True)
    va, vb = orthogonality_penalty(a), _reference_ortho(b)
    ga, gb = torch.autograd.grad(va, a)[0], torch.autograd.grad(vb, b)[0]
    assert torch.allclose(va, vb, rtol=0, atol=1e-12)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-10)
    assert ga[1, 5].abs().sum() > 0 and ga[2].abs().sum() == 0


def test_gin_aggregate_gradients_with_an_asymmetric_adjacency():
    g = torch.Generator().manual_seed(4)
    h = torch.randn(3, 7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    adj = torch.rand(3, 7, 7, generator=g, dtype=torch.float64)  # not symmetric: A^T in the backward
    eps = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, e: _GINAggregate.apply(h, adj, e), (h, eps))
    ref = torch.matmul(adj, h) + (1.0 + eps) * h
    assert torch.allclose(_GINAggregate.apply(h, adj, eps), ref, atol=1e-12)


def test_weighted_node_sum_and_mean_match_autograd():
    g = torch.Generator().manual_seed(5)
    h = torch.randn(4, 9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.rand(4, 9, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_WeightedSum.apply, (h, s))
    ref = (h * s.unsqueeze(-1)).mean(1)
    got = _weighted_node_mean(h, s)
    assert torch.allclose(got, ref, rtol=0, atol=1e-14)
    w = torch.randn(4, 5, generator=g, dtype=torch.float64)
    gr = torch.autograd.grad((ref * w).sum(), (h, s))
    gg = torch.autograd.grad((got * w).sum(), (h, s))
    assert all(torch.allclose(a, b, rtol=0, atol=1e-13) for a, b in zip(gr, gg))
    assert torch.allclose(_node_mean(h), h.mean(1), rtol=0, atol=1e-14)


@pytest.mark.parametrize("train", [True, False])
def test_gin_first_linear_moved_before_the_aggregation(train):
    """``DenseGIN.forward_projected(h W_0^T, A)`` is ``DenseGIN.forward(h, A)``: outputs,
    gradients of ``h``, of every parameter and the BatchNorm running statistics."""
    torch.manual_seed(6)
    gin = DenseGIN(6, 8).double().train(train)
    with torch.no_grad():
        gin.eps.fill_(0.4)
    g = torch.Generator().manual_seed(7)
    h = torch.randn(5, 7, 6, generator=g, dtype=torch.float64, requires_grad=True)
    adj = (torch.rand(5, 7, 7, generator=g, dtype=torch.float64) > 0.6).double()
    w = torch.randn(5, 7, 8, generator=g, dtype=torch.float64)
    state = {k: v.clone() for k, v in gin.state_dict().items()}
    outs, grads, stats = [], [], []
    for projected in (False, True):
        gin.load_state_dict(state)
        gin.zero_grad()
        out = gin.forward_projected(h @ gin.mlp[0].weight.T, adj) if projected else gin(h, adj)
        (out * w).sum().backward()
        outs.append(out.detach())
        grads.append([h.grad.clone()] + [p.grad.clone() for p in gin.parameters()])
        stats.append({k: v.clone() for k, v in gin.state_dict().items()})
        h.grad = None
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-12)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=0, atol=1e-11)
    for k in stats[0]:
        assert torch.allclose(stats[0][k].double(), stats[1][k].double(), rtol=0, atol=1e-12), k
