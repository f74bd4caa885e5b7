"""connectome/kernels.py: properties a full mutation run found untested (``python
tools/mutation.py kernels``; see docs/testing.md). Each asserts documented behaviour
against nilearn / scikit-learn / numpy or an exact identity, never a recorded output:
the tangent kind on both back ends, the geometric mean's descent (step halving, 30
iterations) against nilearn's, Ledoit-Wolf at its zero-shrinkage edge (two time points),
constant ROIs on the torch back end, tensor inputs, the float32 Gram of ``auto``, and the
errors (reason and message) of every refused input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from nilearn.connectome import ConnectivityMeasure
from nilearn.connectome.connectivity_matrices import _geometric_mean
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from graphbrain.connectome import kernels
from graphbrain.errors import ConfigError, DataError


def _nilearn(xs, kind, estimator="ledoit_wolf"):
    est = LedoitWolf(store_precision=False) if estimator == "ledoit_wolf" else EmpiricalCovariance()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(ConnectivityMeasure(kind=kind, cov_estimator=est).fit_transform(xs))


@pytest.fixture(scope="module")
def xs():
    rng = np.random.default_rng(11)
    mix = rng.standard_normal((6, 6))
    return [rng.standard_normal((t, 6)) @ mix + rng.standard_normal(6) for t in (30, 41, 30, 37)]


def test_tangent_kind_with_a_whitening_equals_nilearn():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((40, 5)) @ rng.standard_normal((5, 5)) for _ in range(6)]
    cm = ConnectivityMeasure(kind="tangent", cov_estimator=LedoitWolf(store_precision=False))
    want = cm.fit_transform(xs)
    got = kernels.connectivity(xs, "tangent", "ledoit_wolf", whitening=cm.whitening_)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_torch_back_end_tangent_kind_dtype_and_ignored_whitening(xs):
    """torch back end: the tangent kind with a whitening is nilearn's tangent embedding,
    without one it is the covariance (docstring); the whitening is used by the tangent
    kind only; the output is float64 (default) or ``out_dtype``."""
    cm = ConnectivityMeasure(kind="tangent", cov_estimator=LedoitWolf(store_precision=False))
    want = cm.fit_transform(xs)
    w = cm.whitening_
    got = kernels.connectivity(xs, "tangent", backend="torch", whitening=torch.from_numpy(w))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    cov = kernels.connectivity(xs, "tangent", backend="torch")
    np.testing.assert_allclose(cov.numpy(), _nilearn(xs, "covariance"), rtol=1e-6, atol=1e-9)
    f32 = kernels.connectivity(xs, "covariance", backend="torch", out_dtype="float32")
    assert f32.dtype == torch.float32
    for backend in ("numpy", "torch"):
        corr = kernels.connectivity(xs, "correlation", backend=backend, whitening=w)
        np.testing.assert_allclose(np.asarray(corr), _nilearn(xs, "correlation"), atol=1e-5)


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_torch_back_end_constant_roi_like_nilearn(xs, estimator):
    """A constant ROI (std 0, set to 1 by nilearn's z-scoring): 0 correlations with
    Ledoit-Wolf, NaN (0/0) with the empirical estimator, on the torch back end as on numpy."""
    s = [x.copy() for x in xs]
    s[1][:, 2] = 4.0
    got = kernels.connectivity(s, "correlation", estimator, backend="torch").numpy()
    want = _nilearn(s, "correlation", estimator)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-5)  # NaNs compare equal here
    if estimator == "ledoit_wolf":
        assert np.all(got[1, 2, np.arange(6) != 2] == 0) and got[1, 2, 2] == 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_ledoit_wolf_at_zero_shrinkage(backend):
    """With T = 2 (the shortest series accepted) sklearn's Ledoit-Wolf shrinkage is 0
    (beta_ = ||S||_F^2), so the covariance is the empirical one; with one ROI too."""
    x = np.random.default_rng(5).standard_normal((2, 5))
    got = kernels.connectivity([x, x[::-1].copy()], "covariance", backend=backend)
    got = np.asarray(got.numpy() if backend == "torch" else got)
    want = LedoitWolf().fit(x).covariance_
    np.testing.assert_allclose(want, np.cov(x.T, bias=True), atol=1e-15)  # the reference itself
    np.testing.assert_allclose(got, [want, want], rtol=1e-9, atol=1e-14)
    # one ROI: delta = 0 exactly, sklearn's shrinkage is 0, the covariance the variance
    one = [x[:, :1], np.random.default_rng(6).standard_normal((9, 1))]
    got1 = kernels.connectivity(one, "covariance", backend=backend)
    got1 = np.asarray(got1.numpy() if backend == "torch" else got1)
    np.testing.assert_allclose(got1[:, 0, 0], [LedoitWolf().fit(o).covariance_[0, 0] for o in one], rtol=1e-12)
    np.testing.assert_allclose(got1[:, 0, 0], [o.var() for o in one], rtol=1e-12)


def test_geometric_mean_follows_nilearns_descent():
    """Widely spread SPD matrices make nilearn's gradient descent overshoot (the norm
    grows, the step is halved); the default is nilearn's ``max_iter=30, tol=1e-7`` as
    ConnectivityMeasure calls it (this set has not converged after 30 iterations, so a
    31st would move the mean by ~3e-5)."""
    rng = np.random.default_rng(5)
    covs = []
    for _ in range(4):
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        covs.append((q * 10.0 ** rng.uniform(-4, 4, 3)) @ q.T)
    covs = np.array(covs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn warns that 30 iterations did not converge
        ref = {k: _geometric_mean(list(covs), max_iter=k, tol=1e-7) for k in (3, 6, 30)}
        ref32 = _geometric_mean(list(covs.astype(np.float32).astype(np.float64)), max_iter=30, tol=1e-7)
    scale = np.abs(ref[30]).max()
    np.testing.assert_allclose(kernels.geometric_mean(covs), ref[30], rtol=0, atol=1e-9 * scale)
    for k in (3, 6):
        np.testing.assert_allclose(kernels.geometric_mean(covs, max_iter=k), ref[k], rtol=0,
                                   atol=1e-9 * np.abs(ref[k]).max())
    # float32 input and tensors (with autograd, as a CUDA tensor would be: no numpy view)
    # are computed in float64 on both back ends
    f32 = covs.astype(np.float32)
    s32 = np.abs(ref32).max()
    np.testing.assert_allclose(kernels.geometric_mean(f32), ref32, rtol=0, atol=1e-9 * s32)
    t32 = torch.from_numpy(f32).requires_grad_(True)
    np.testing.assert_allclose(kernels.geometric_mean(t32), ref32, rtol=0, atol=1e-9 * s32)
    got_t = kernels.geometric_mean(t32, backend="torch")
    assert got_t.dtype == torch.float64
    np.testing.assert_allclose(got_t.detach().numpy(), ref32, rtol=0, atol=1e-9 * s32)


def test_not_positive_definite_is_a_data_error():
    singular = np.diag([1.0, 0.0])[None]  # an exactly zero eigenvalue
    with pytest.raises(DataError, match=r"^a covariance matrix is not positive definite, so its matrix logarithm "
                                        r"is undefined \(tangent kind\); use estimator='ledoit_wolf'$") as err:
        kernels.tangent_embed(singular, np.eye(2))
    assert err.value.reason == "not_spd"
    with pytest.raises(DataError, match="^the geometric-mean iterate lost positive definiteness$") as err:
        kernels.geometric_mean(np.array([np.diag([1.0, 0.0]), np.diag([2.0, 0.0])]))
    assert err.value.reason == "not_spd"
    with pytest.raises(DataError, match="^NaN after the matrix logarithm in the geometric mean$") as err:
        kernels.geometric_mean(np.full((1, 2, 2), np.nan))
    assert err.value.reason == "not_spd"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kind", ["precision", "partial correlation"])
def test_singular_covariance_error_names_the_kind(backend, kind):
    x = np.random.default_rng(2).standard_normal((30, 3))
    with pytest.raises(DataError) as err:
        kernels.connectivity([np.repeat(x, 2, axis=1)], kind, "empirical", backend=backend)
    assert err.value.reason == "singular"
    assert str(err.value) == (
        f"a covariance matrix is singular, so its {kind} is undefined (constant or duplicated ROIs "
        "with the empirical estimator?); use estimator='ledoit_wolf' or drop those ROIs")


def test_refused_series_name_the_subject_and_the_reason(xs):
    cases = [
        ([], "no time series given", "empty"),
        ([xs[0], np.zeros(5)], "time series 1 must be (T, R), got shape (5,)", "wrong_shape"),
        ([xs[0], xs[1][:, :5]], "time series 1 has 5 ROIs, expected 6", "roi_mismatch"),
        ([xs[0], xs[1][:1]], "time series 1 has 1 time point(s); at least 2 are needed", "too_short"),
    ]
    for series, message, reason in cases:
        with pytest.raises(DataError) as err:
            kernels.connectivity(series)
        assert str(err.value) == message and err.value.reason == reason


def test_kind_spelling_gram_dtype_backend_and_device_errors(xs):
    np.testing.assert_array_equal(kernels.connectivity(xs, "partial_correlation"),
                                  kernels.connectivity(xs, "partial correlation"))
    with pytest.raises(ConfigError) as err:
        kernels.connectivity(xs, gram_dtype="float16")
    assert str(err.value) == "gram_dtype must be 'auto', 'float32' or 'float64', got 'float16'"
    with pytest.raises(ConfigError) as err:
        kernels.connectivity(xs, backend="jax")
    assert str(err.value) == "unknown static-FC kernel backend 'jax'; use 'numpy' or 'torch'"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError) as err:
            kernels.connectivity(xs, backend="torch", device="cuda")
        assert str(err.value) == "static-FC kernels asked for device 'cuda' but torch sees no CUDA device"


def test_auto_gram_is_float32_for_correlation_only(xs):
    """``gram_dtype="auto"``: the float32 Gram for ``correlation`` (bit for bit the same as
    asking for it, and not the float64 result), float64 for the other kinds."""
    auto = kernels.connectivity(xs, "correlation")
    np.testing.assert_array_equal(auto, kernels.connectivity(xs, "correlation", gram_dtype="float32"))
    assert np.abs(auto - kernels.connectivity(xs, "correlation", gram_dtype="float64")).max() > 1e-10
    np.testing.assert_array_equal(kernels.connectivity(xs, "covariance"),
                                  kernels.connectivity(xs, "covariance", gram_dtype="float64"))


def test_numpy_back_end_takes_tensors_and_a_cold_cache(xs, monkeypatch):
    """Tensors (here with autograd, which numpy cannot view) give the numpy back end's
    numbers; the cached ones-vectors of the column sums (numpy path: numba off) do not
    change results when cold."""
    monkeypatch.setattr(kernels, "_ACCEL", "numpy")
    want = kernels.connectivity(xs, "covariance")
    tensors = [torch.from_numpy(x).requires_grad_(True) for x in xs]
    np.testing.assert_array_equal(kernels.connectivity(tensors, "covariance"), want)
    f32 = [x.astype(np.float32) for x in xs]
    warm = {k: kernels.connectivity(xs + f32, k) for k in ("correlation", "covariance")}
    kernels._ONES.clear()
    for k, w in warm.items():
        np.testing.assert_array_equal(kernels.connectivity(xs + f32, k), w)
        np.testing.assert_allclose(w, _nilearn([np.asarray(x, np.float64) for x in xs + f32], k),
                                   atol=1e-5 * max(1.0, float(np.abs(w).max())))
