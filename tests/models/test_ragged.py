"""Scans of different lengths: padded windowing with a mask, STAGIN invariant to padding,
crop cover, and the linear path next to a deep model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.connectome.dynamic import sliding_window_fc
from graphbrain.connectome.ragged import cover_crops, pad_timeseries, ragged_window_fc
from graphbrain.errors import ConfigError, DataError
from graphbrain.models import get_model_spec
from graphbrain.models.linear_path import LinearPath

R = 9


def _scans(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((t, R)).astype(np.float32) for t in lengths]


def test_padded_windows_equal_each_unpadded_scan_and_mask_marks_real_windows():
    scans = _scans([40, 61, 25, 33])
    win = np.array([10, 10, 8, 12])  # e.g. window_seconds over sites with different TRs
    st = np.array([5, 5, 4, 3])
    x, lengths = pad_timeseries(scans)
    assert x.shape == (4, 61, R) and lengths.tolist() == [40, 61, 25, 33]
    dfc, mask = ragged_window_fc(x, lengths, win, st)
    counts = [(t - w) // s + 1 for t, w, s in zip([40, 61, 25, 33], win, st)]
    assert dfc.shape == (4, max(counts), R, R)
    assert mask.sum(1).tolist() == counts
    for b, scan in enumerate(scans):
        ref = sliding_window_fc(scan, int(win[b]), int(st[b]), backend="numpy")
        torch.testing.assert_close(dfc[b, : counts[b]], torch.as_tensor(ref), atol=1e-5, rtol=1e-5)
        assert torch.all(dfc[b, counts[b]:] == 0)  # padding is zero, never NaN
        assert mask[b, : counts[b]].all() and not mask[b, counts[b]:].any()


def test_ragged_windowing_refuses_scans_shorter_than_a_window_and_too_many_windows():
    x, lengths = pad_timeseries(_scans([30, 6]))
    with pytest.raises(DataError, match="scan 1"):
        ragged_window_fc(x, lengths, 8, 4)
    x, lengths = pad_timeseries(_scans([30, 20]))
    with pytest.raises(DataError, match="crop"):
        ragged_window_fc(x, lengths, 8, 4, n_windows_max=3)


@pytest.mark.parametrize("w_subject,w_max", [(5, 8), (8, 8), (9, 8), (30, 8), (31, 7), (100, 1)])
def test_cover_crops_cover_every_window_with_at_most_w_max(w_subject, w_max):
    crops = cover_crops(w_subject, w_max)
    seen = np.zeros(w_subject, dtype=int)
    for a, b in crops:
        assert 0 <= a < b <= w_subject and b - a <= w_max
        seen[a:b] += 1
    assert seen.min() >= 1  # the whole scan is covered
    if w_subject <= w_max:
        assert crops == [(0, w_subject)]
    else:
        assert crops[-1][1] == w_subject and all(b - a == w_max for a, b in crops)
        steps = np.diff([a for a, _ in crops])[:-1]
        assert np.all(steps == max(1, round(w_max / 2)))  # half a crop apart (the last one aligned to the end)


def _stagin(w_max=12, **kw):
    torch.manual_seed(0)
    m = get_model_spec("stagin").builder(n_rois=R, n_windows=w_max, hidden=16, n_layers=2, heads=2, **kw)
    return m.eval()


@pytest.mark.parametrize("node_features", ["onehot", "window_fc", "static_fc"])
def test_stagin_output_for_a_subject_does_not_depend_on_padding(node_features):
    # the same subject alone (no padding) and in a batch next to a longer scan (padded)
    m = _stagin(node_features=node_features, linear_path=True)
    with torch.no_grad():
        m.linear.weight.normal_()  # a non-trivial linear path too
    scans = _scans([30, 70])
    fc = torch.randn(2, R, R)
    fc = (fc + fc.transpose(1, 2)) / 2
    x, lengths = pad_timeseries(scans)
    dfc, mask = ragged_window_fc(x, lengths, 10, 5)
    both = m({"dfc": dfc, "mask": mask, "fc": fc})
    alone_dfc, alone_mask = ragged_window_fc(*pad_timeseries(scans[:1]), 10, 5)
    alone = m({"dfc": alone_dfc, "mask": alone_mask, "fc": fc[:1]})
    w0 = int(alone_mask.sum())
    assert w0 < dfc.shape[1]
    torch.testing.assert_close(both.logits[0], alone.logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.attention["temporal"][0, :w0], alone.attention["temporal"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.attention["spatial"][0, :w0], alone.attention["spatial"][0], atol=1e-5, rtol=1e-5)
    # no attention on padded windows; the temporal record is a distribution over real windows
    assert torch.all(both.attention["temporal"][0, w0:] == 0)
    assert torch.all(both.attention["temporal_matrix"][0, :, w0:] == 0)
    torch.testing.assert_close(both.attention["temporal"].sum(1), torch.ones(2))


def test_stagin_takes_scans_longer_than_its_trained_window_count():
    m = _stagin(w_max=4, linear_path=False)
    dfc, mask = ragged_window_fc(*pad_timeseries(_scans([80])), 10, 5)
    assert dfc.shape[1] == 15 > 4
    out = m({"dfc": dfc, "mask": mask})
    assert out.logits.shape == (1, 2) and torch.isfinite(out.logits).all()


def test_linear_path_is_a_linear_model_on_the_upper_triangle_plus_a_gated_deep_branch():
    torch.manual_seed(0)
    fc = torch.randn(4, R, R)
    fc = (fc + fc.transpose(1, 2)) / 2
    deep = get_model_spec("brainnetcnn").builder(n_rois=R, n_windows=None, linear_path=False).eval()
    m = get_model_spec("brainnetcnn").builder(n_rois=R, n_windows=None, linear_gate=0.25).eval()
    assert isinstance(m, LinearPath)
    assert float(m.gate) == 0.25 and torch.all(m.linear.weight == 0)  # starts as the deep branch * g
    m.deep.load_state_dict(deep.state_dict())
    with torch.no_grad():
        m.linear.weight.normal_()
        m.linear.bias.normal_()
    iu = np.triu_indices(R, 1)
    vec = fc[:, iu[0], iu[1]]  # (B, R(R-1)/2)
    expected = (vec / np.sqrt(vec.shape[1])) @ m.linear.weight.T + m.linear.bias + 0.25 * deep({"fc": fc}).logits
    torch.testing.assert_close(m({"fc": fc}).logits, expected, atol=1e-5, rtol=1e-5)
    # the gate and the linear weights learn
    m.train()
    m({"fc": fc}).logits.sum().backward()
    assert m.gate.grad is not None and m.gate.grad.abs() > 0
    assert m.linear.weight.grad.abs().sum() > 0
    # switched off: the deep model itself
    assert not isinstance(get_model_spec("stagin").builder(n_rois=R, n_windows=3, linear_path=False), LinearPath)
    with pytest.raises(ConfigError, match="linear_path=False"):
        _stagin()({"dfc": torch.zeros(1, 3, R, R)})


def test_linear_path_ridge_penalty_is_added_while_training_only():
    m = get_model_spec("gin").builder(n_rois=R, n_windows=None, hidden=8, linear_l2=0.5)
    with torch.no_grad():
        m.linear.weight.fill_(1.0)
    fc = torch.randn(3, R, R)
    fc = (fc + fc.transpose(1, 2)) / 2
    assert float(m({"fc": fc}).aux_loss) == pytest.approx(0.5 * m.linear.weight.numel(), rel=1e-6)
    assert m.eval()({"fc": fc}).aux_loss is None
