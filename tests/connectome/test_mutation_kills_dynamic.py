"""Tests written against mutants of ``connectome/dynamic.py`` that the suite let survive.

Every back end is checked against nilearn window by window (the cupy code path too, run
on the CPU through a numpy stand-in for the ``cupy`` module: cupy mirrors numpy's API),
plus the documented edges of the helpers (see docs/testing.md, ``tools/mutation.py dynamic``).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance

from graphbrain.connectome.dynamic import (
    dynamic_fc_cohort,
    n_windows,
    seconds_to_timepoints,
    sliding_window_fc,
)
from graphbrain.errors import ConfigError, DataError


def _nilearn_windows(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    cm = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())
    return cm.fit_transform([x[s : s + window] for s in range(0, x.shape[0] - window + 1, stride)])


@pytest.fixture
def fake_cupy(monkeypatch):
    """A ``cupy`` module backed by numpy, and an array type whose module is ``cupy``."""
    cp = types.ModuleType("cupy")
    for name in ("asarray", "float32", "lib", "sqrt", "abs", "where", "einsum", "clip", "arctanh", "eye"):
        setattr(cp, name, getattr(np, name))
    monkeypatch.setitem(sys.modules, "cupy", cp)
    array_type = type("ndarray", (np.ndarray,), {"__module__": "cupy._core.core"})
    return cp, array_type


@pytest.fixture
def scans() -> np.ndarray:
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 70, 6)).astype(np.float32)
    x[1, :, 3] = 2.5  # a constant ROI in subject 1
    return x


def _check_against_nilearn(fc: np.ndarray, x: np.ndarray, window: int, stride: int) -> None:
    assert fc.shape == (x.shape[0], n_windows(x.shape[1], window, stride), x.shape[2], x.shape[2])
    for b in range(x.shape[0]):
        ref = np.nan_to_num(_nilearn_windows(x[b].astype(np.float64), window, stride))
        # documented difference: a constant ROI's row, column and diagonal entry are 0
        # (nilearn puts 1 on the diagonal)
        const = np.flatnonzero(np.ptp(x[b], axis=0) == 0)
        ref[:, const, const] = 0.0
        np.testing.assert_allclose(fc[b], ref, atol=2e-5)


def test_cupy_code_path_equals_nilearn_with_constant_roi_zeroed(fake_cupy, scans):
    _, array_type = fake_cupy
    fc = np.asarray(sliding_window_fc(scans, 24, 5, backend="cupy"))
    _check_against_nilearn(fc, scans, 24, 5)
    assert np.all(fc[1, :, 3, :] == 0) and np.all(fc[1, :, :, 3] == 0)
    # "auto" keeps a cupy input on cupy (a torch tensor would come back from the torch path)
    auto = sliding_window_fc(scans.view(array_type), 24, 5)
    assert not isinstance(auto, torch.Tensor)
    np.testing.assert_allclose(auto, fc, atol=1e-6)
    assert sliding_window_fc(scans.astype(np.float64), 24, 5, backend="cupy").dtype == np.float32
    z = sliding_window_fc(scans, 24, 5, backend="cupy", fisher_z=True)
    assert z.dtype == np.float32  # cupy back end: float32 throughout, Fisher z included
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(z[..., off], np.arctanh(np.clip(fc[..., off], -0.999999, 0.999999)), atol=1e-4)
    assert np.all(z[..., ~off] == 0)


def test_torch_autograd_and_float64_paths_equal_nilearn(scans):
    """With ``requires_grad`` the pure-torch kernel runs (the CPU shortcut is for plain
    tensors only); float64 input stays float64. Both agree with nilearn."""
    t = torch.from_numpy(scans.copy()).requires_grad_(True)
    fc = sliding_window_fc(t, 24, 5, backend="torch")
    assert fc.requires_grad and fc.dtype == torch.float32
    _check_against_nilearn(fc.detach().numpy(), scans, 24, 5)
    single = sliding_window_fc(torch.from_numpy(scans[0].copy()).requires_grad_(True), 24, 5, backend="torch")
    _check_against_nilearn(single.detach().numpy()[None], scans[:1], 24, 5)  # one (T, R) scan
    f64 = sliding_window_fc(torch.from_numpy(scans.astype(np.float64)), 24, 5, backend="torch", dtype=torch.float64)
    assert f64.dtype == torch.float64
    # float64 input without a dtype: float32 out (the documented default)
    assert sliding_window_fc(scans.astype(np.float64), 24, 5, backend="torch").dtype == torch.float32
    _check_against_nilearn(f64.numpy(), scans, 24, 5)
    z = sliding_window_fc(torch.from_numpy(scans.copy()), 24, 5, fisher_z=True, device="cpu")
    assert z.dtype == torch.float32 and torch.all(torch.diagonal(z, dim1=-2, dim2=-1) == 0)


def test_numpy_dtype_follows_the_request(scans):
    assert sliding_window_fc(scans, 24, 5, backend="numpy").dtype == np.float32
    f64 = sliding_window_fc(scans.astype(np.float64), 24, 5, backend="numpy", dtype=np.float64)
    assert f64.dtype == np.float64
    _check_against_nilearn(f64, scans, 24, 5)
    # a torch tensor (even one that requires grad) given to the numpy back end is converted
    fc = sliding_window_fc(torch.from_numpy(scans.copy()).requires_grad_(True), 24, 5, backend="numpy")
    assert isinstance(fc, np.ndarray)
    _check_against_nilearn(fc, scans, 24, 5)
    with pytest.raises(ConfigError, match="unknown dynamic-FC backend 'jax'"):
        sliding_window_fc(scans, 24, 5, backend="jax")


def test_window_count_edges():
    assert n_windows(40, 40, 1) == 1  # exactly one full window
    assert n_windows(39, 40, 1) == 0
    assert n_windows(100, 2, 1) == 99  # the shortest window allowed
    assert n_windows(100, 30, 7) == (100 - 30) // 7 + 1
    with pytest.raises(ConfigError, match="window must be at least 2 time points, got 1"):
        n_windows(100, 1, 1)
    with pytest.raises(ConfigError, match="stride must be at least 1 time point, got 0"):
        n_windows(100, 10, 0)


def test_seconds_to_timepoints_rounds_and_keeps_at_least_one():
    assert seconds_to_timepoints(30.0, 2.0) == 15
    assert seconds_to_timepoints(31.0, 2.0) == 16  # 15.5 rounds to even: 16
    assert seconds_to_timepoints(29.2, 2.0) == 15  # 14.6 -> 15 (rounded, not truncated)
    assert seconds_to_timepoints(0.4, 2.0) == 1  # never 0
    assert seconds_to_timepoints(30.0, 0.72) == 42  # sub-second TRs (HCP: 0.72 s) are valid
    for tr in (None, 0.0, -2.0):
        with pytest.raises(ConfigError, match=r"^a window given in seconds needs the repetition time \(tr\) of the scan$"):
            seconds_to_timepoints(30.0, tr)


def test_cohort_batches_crops_and_errors():
    rng = np.random.default_rng(8)
    ts = [rng.standard_normal((t, 5)).astype(np.float32) for t in (60, 75, 64, 80, 61)]
    whole = dynamic_fc_cohort(ts, 20, 4, backend="numpy")
    assert dynamic_fc_cohort(ts, 20).shape[1] == n_windows(60, 20, 1)  # default stride: 1 time point
    assert whole.shape == (5, n_windows(60, 20, 4), 5, 5) and whole.dtype == np.float32
    np.testing.assert_allclose(dynamic_fc_cohort(ts, 20, 4, batch_size=2), whole, atol=1e-6)
    for i, x in enumerate(ts):
        np.testing.assert_allclose(whole[i], np.nan_to_num(_nilearn_windows(x[:60], 20, 4)), atol=2e-5)
    cropped = dynamic_fc_cohort(ts, 20, 4, n_timepoints=44)
    assert cropped.shape[1] == n_windows(44, 20, 4)
    with pytest.raises(DataError, match=r"2 scan\(s\) shorter than the 64 time points required \(first index 0\)") as err:
        dynamic_fc_cohort(ts, 20, 4, n_timepoints=64)
    assert err.value.reason == "too_short"
    with pytest.raises(DataError, match="^no subjects to compute dynamic FC for$") as err:
        dynamic_fc_cohort([], 20, 4)
    assert err.value.reason == "empty"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fisher_z_is_odd_and_clipped_for_perfectly_anticorrelated_rois(backend):
    """ROI 1 is the negative of ROI 0: z(0, 1) = -z(0, 0 copy) = -arctanh(0.999999),
    finite (the clip applies on both sides)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    x[:, 1] = -x[:, 0]
    x[:, 2] = x[:, 0]
    z = np.asarray(sliding_window_fc(x, 20, 5, backend=backend, fisher_z=True))
    assert np.isfinite(z).all()
    cap = np.arctanh(np.float32(0.999999))
    np.testing.assert_allclose(z[:, 0, 2], cap, rtol=1e-3)
    np.testing.assert_allclose(z[:, 0, 1], -cap, rtol=1e-3)


def test_signal_constant_up_to_rounding_noise_counts_as_constant():
    """An ROI stuck at 1000.1 with 1e-7 of rounding-level noise (float64) is constant by
    the documented rule (centred window norm below 1e-6 x (1 + its largest absolute
    value)): its row and column are 0, not correlations of the noise."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((48, 5))
    x[:, 3] = 1000.1 + 1e-7 * rng.standard_normal(48)
    fc_np = sliding_window_fc(x, 24, 6, backend="numpy", dtype=np.float64)
    fc_t = sliding_window_fc(torch.from_numpy(x), 24, 6, backend="torch", dtype=torch.float64).numpy()
    grad = torch.from_numpy(x.copy()).requires_grad_(True)  # the pure-torch kernel
    fc_g = sliding_window_fc(grad, 24, 6, backend="torch", dtype=torch.float64).detach().numpy()
    for fc in (fc_np, fc_t, fc_g):
        assert np.all(fc[:, 3, :] == 0) and np.all(fc[:, :, 3] == 0)
        np.testing.assert_allclose(fc[:, 0, 0], 1.0, atol=1e-12)


def test_sliding_window_defaults_errors_and_missing_cupy(monkeypatch):
    from graphbrain.errors import MissingDependencyError

    x = np.random.default_rng(2).standard_normal((30, 4))
    assert sliding_window_fc(x, 10, backend="numpy").shape == (21, 4, 4)  # default stride 1
    with pytest.raises(DataError, match=r"expected \(T, R\) or \(B, T, R\) time series, got shape \(30,\)") as err:
        sliding_window_fc(x[:, 0], 10, 1)
    assert err.value.reason == "wrong_shape"
    with pytest.raises(DataError, match="scan too short for the windows: 30 time points < window length 40") as err:
        sliding_window_fc(x, 40, 1)
    assert err.value.reason == "too_short"
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(MissingDependencyError, match=r"the cupy dynamic-FC back end needs the optional package 'cupy'.*\[gpu\]"):
        sliding_window_fc(x, 10, 1, backend="cupy")
