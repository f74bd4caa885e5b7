"""Tests written against mutants of ``connectome/static.py`` that the suite let survive.

Each asserts a documented property (agreement with nilearn in float64, a cache that
never confuses kinds or estimators, a saved state that round-trips and carries no
machine-local path, float32 output, errors that name the problem); the mutants they
kill are listed in docs/testing.md (``python tools/mutation.py static``).
"""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import LedoitWolf

from graphbrain.connectome.static import ConnectivityTransformer, vectorize_fc
from graphbrain.errors import ConfigError, DataError


@pytest.fixture
def series() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    mix = rng.standard_normal((6, 6))
    return [rng.standard_normal((60 + 4 * i, 6)) @ mix for i in range(5)]


@pytest.mark.parametrize("kind", ["covariance", "tangent"])
def test_nilearn_engine_computes_float32_input_in_float64(series, kind):
    """float32 scans with a large offset: the nilearn engine must give nilearn's float64
    answer (sklearn would otherwise centre and multiply in float32, off by ~1e-5)."""
    x32 = [(x + 1000.0).astype(np.float32) for x in series]
    t = ConnectivityTransformer(kind=kind, engine="nilearn").fit(x32[:3])
    ref = ConnectivityMeasure(kind=kind, cov_estimator=LedoitWolf(store_precision=False))
    ref.fit([x.astype(np.float64) for x in x32[:3]])
    want = ref.transform([x.astype(np.float64) for x in x32[3:]]).astype(np.float32)
    np.testing.assert_allclose(t.transform(x32[3:]), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("engine", ["graphbrain", "nilearn"])
def test_cache_never_returns_another_kind_or_estimator(series, tmp_path, engine):
    """One cache folder shared by several kinds / estimators: every request gets its own
    matrices (equal to the uncached computation), never a cached entry of another kind."""
    cache = str(tmp_path / "fc-cache")
    for kind, est in [("correlation", "ledoit_wolf"), ("covariance", "ledoit_wolf"),
                      ("covariance", "empirical"), ("precision", "empirical")]:
        cached = ConnectivityTransformer(kind=kind, estimator=est, cache_dir=cache, engine=engine)
        plain = ConnectivityTransformer(kind=kind, estimator=est, engine=engine)
        np.testing.assert_allclose(
            cached.fit(series).transform(series), plain.fit(series).transform(series), rtol=1e-5, atol=1e-6,
            err_msg=f"{kind}/{est}",
        )


def test_saved_state_round_trips_the_tangent_reference_and_drops_the_cache_folder(series, tmp_path):
    """get_state / from_state: the tangent reference (mean_ and whitening_) comes back
    exactly; the saved parameters hold no cache folder of the training machine, so the
    loaded transformer writes no cache there."""
    cache = tmp_path / "train-machine-cache"
    t = ConnectivityTransformer(kind="tangent", cache_dir=str(cache)).fit(series)
    params, arrays = t.get_state()
    assert "cache_dir" not in params
    u = ConnectivityTransformer.from_state(params, arrays)
    assert u.cache_dir is None
    np.testing.assert_array_equal(u.mean_, t.mean_)
    np.testing.assert_array_equal(u.whitening_, t.whitening_)
    corr = ConnectivityTransformer(kind="correlation", cache_dir=str(cache)).fit(series)
    before = sorted(cache.iterdir()) if cache.exists() else []
    c_params, c_arrays = corr.get_state()
    ConnectivityTransformer.from_state(c_params, c_arrays).transform([x * 2.0 + 1.0 for x in series])
    after = sorted(cache.iterdir()) if cache.exists() else []
    assert after == before


def test_vectorize_fc_returns_float32_upper_triangles():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 5))
    mats = a + a.transpose(0, 2, 1)
    v = vectorize_fc(mats)
    assert v.dtype == np.float32 and v.shape == (3, 10)
    rows, cols = np.tril_indices(5, -1)  # nilearn's order: strict lower triangle, row-major
    np.testing.assert_allclose(v, mats[:, rows, cols].astype(np.float32))


def test_errors_name_the_bad_input(series):
    with pytest.raises(DataError, match=r"time series 1 must be \(T, R\), got shape \(2, 60, 6\)") as err:
        ConnectivityTransformer().fit([series[0], np.stack([series[0][:60]] * 2)])
    assert err.value.reason == "wrong_shape"
    with pytest.raises(ConfigError, match=r"unknown covariance estimator 'oas'.*ledoit_wolf"):
        ConnectivityTransformer(kind="correlation", estimator="oas", engine="nilearn").fit(series).transform(series)


@pytest.mark.parametrize("engine", ["graphbrain", "nilearn"])
def test_input_errors_are_data_errors_with_reason_for_both_engines(series, engine):
    """Empty input, ROI counts that differ between subjects and NaN/Inf are refused with
    a DataError naming the subject index and a machine-readable reason, whichever engine
    runs (nilearn / sklearn would raise their own ValueError or compute garbage)."""
    t = ConnectivityTransformer(kind="correlation", engine=engine)
    with pytest.raises(DataError, match="^no time series given$") as err:
        t.fit([])
    assert err.value.reason == "empty"
    with pytest.raises(DataError, match=r"time series 2 has 5 ROIs, expected 6") as err:
        t.fit([series[0], series[1], series[2][:, :5]])
    assert err.value.reason == "roi_mismatch"
    bad = [x.copy() for x in series]
    bad[3][7, 2] = np.nan
    fitted = ConnectivityTransformer(kind="correlation", engine=engine).fit(series)
    for value in (np.nan, np.inf):
        bad[3][7, 2] = value
        with pytest.raises(DataError, match=r"time series 3 contains NaN/Inf") as err:
            fitted.transform(bad)
        assert err.value.reason == "non_finite"


@pytest.mark.parametrize("engine", ["graphbrain", "nilearn"])
def test_integer_time_series_give_the_float64_connectome(series, engine):
    """Integer-coded scans (e.g. int16 raw values) are converted, not truncated or refused:
    the result equals that of the same values as float64."""
    ints = [np.round(100 * x).astype(np.int16) for x in series]
    t = ConnectivityTransformer(kind="partial correlation", engine=engine).fit(ints)
    ref = ConnectivityTransformer(kind="partial correlation", engine=engine).fit([x.astype(np.float64) for x in ints])
    np.testing.assert_allclose(t.transform(ints), ref.transform([x.astype(np.float64) for x in ints]), atol=1e-6)


def test_engine_option_selects_the_engine(series, monkeypatch):
    """``engine="graphbrain"`` never calls nilearn's ConnectivityMeasure (any kind, fit and
    transform); ``engine="nilearn"`` does. The two give the same numbers by design, so only
    this switch shows which one ran."""
    import graphbrain.connectome.static as static_mod

    calls: list[str] = []

    class SpyMeasure(ConnectivityMeasure):
        def __init__(self, *a, **kw):
            calls.append(kw.get("kind", a[0] if a else "?"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(static_mod, "ConnectivityMeasure", SpyMeasure)
    for kind in ("correlation", "partial correlation", "covariance", "precision", "tangent"):
        ConnectivityTransformer(kind=kind).fit(series[:3]).transform(series[3:])
    assert calls == []
    for kind in ("correlation", "tangent"):
        ConnectivityTransformer(kind=kind, engine="nilearn").fit(series[:3]).transform(series[3:])
    assert "correlation" in calls and "tangent" in calls


@pytest.mark.parametrize("engine", ["graphbrain", "nilearn"])
def test_tangent_reference_is_nilearns_geometric_mean_of_the_training_fold(series, engine):
    t = ConnectivityTransformer(kind="tangent", engine=engine).fit(series[:3])
    ref = ConnectivityMeasure(kind="tangent", cov_estimator=LedoitWolf(store_precision=False)).fit(series[:3])
    np.testing.assert_allclose(t.mean_, ref.mean_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.whitening_, ref.whitening_, rtol=1e-5, atol=1e-6)


def test_nilearn_tangent_fit_refuses_non_finite_training_series(series):
    bad = [x.copy() for x in series[:3]]
    bad[1][5, 0] = np.inf
    with pytest.raises(DataError, match="time series 1 contains NaN/Inf") as err:
        ConnectivityTransformer(kind="tangent", engine="nilearn").fit(bad)
    assert err.value.reason == "non_finite"


@pytest.mark.parametrize("n", [1, 2])
def test_nilearn_tangent_transforms_one_or_two_subjects_like_a_batch(series, n):
    """nilearn refuses a single subject (the transformer pads it); each subject's tangent
    vector must not depend on who else is in the batch."""
    t = ConnectivityTransformer(kind="tangent", engine="nilearn").fit(series[:3])
    batch = t.transform(series)
    np.testing.assert_allclose(t.transform(series[3:3 + n]), batch[3:3 + n], rtol=1e-6, atol=1e-7)


def test_transform_errors_name_the_problem(series):
    with pytest.raises(ConfigError, match=r"^ConnectivityTransformer is not fitted; call fit\(\) on the training"):
        ConnectivityTransformer().transform(series)
    t = ConnectivityTransformer().fit(series)
    with pytest.raises(DataError, match="time series have 5 ROIs but the transformer was fitted on 6") as err:
        t.transform([x[:, :5] for x in series])
    assert err.value.reason == "roi_mismatch"


@pytest.mark.parametrize("kind", ["precision", "partial correlation"])
def test_singular_covariance_is_a_data_error_on_the_nilearn_engine_too(series, kind):
    xs = [x.copy() for x in series]
    xs[1][:, 2] = 0.0
    t = ConnectivityTransformer(kind=kind, estimator="empirical", engine="nilearn").fit(xs)
    with pytest.raises(DataError, match="singular"):
        t.transform(xs)


def test_fisher_z_of_perfectly_correlated_rois_is_finite_and_engines_agree(series):
    """ROI 1 duplicates ROI 0 and ROI 2 is its negative (correlation exactly +1 / -1):
    Fisher z must stay finite (clipped) with a zero diagonal, equal for both engines, and
    the vectorised output is float32 (the documented feature dtype)."""
    xs = [x.copy() for x in series]
    for x in xs:
        x[:, 1] = x[:, 0]
        x[:, 2] = -x[:, 0]
    out = {}
    for engine in ("graphbrain", "nilearn"):
        t = ConnectivityTransformer(kind="correlation", estimator="empirical", fisher_z=True, engine=engine)
        out[engine] = t.fit(xs).transform(xs)
        assert np.isfinite(out[engine]).all(), engine
        assert np.all(np.diagonal(out[engine], axis1=1, axis2=2) == 0)
        v = ConnectivityTransformer(kind="correlation", estimator="empirical", fisher_z=True, engine=engine,
                                    vectorize=True).fit(xs).transform(xs)
        assert v.dtype == np.float32 and v.shape == (len(xs), 15)
    assert out["graphbrain"][0, 0, 1] > 7 and out["graphbrain"][0, 0, 2] < -7  # arctanh(1 - 1e-6) = 7.25
    # arctanh is steep near +-1: the kernels' float32 correlation (1 ulp = 6e-8 below 1)
    # moves z by ~0.007 there; everywhere else the engines agree to float32 precision
    np.testing.assert_allclose(out["graphbrain"], out["nilearn"], atol=1e-2)
