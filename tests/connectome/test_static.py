import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from graphbrain.cache import ArrayCache
from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.errors import ConfigError, DataError


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((8, 8))
    return [rng.standard_normal((80 + 5 * i, 8)) @ mix for i in range(6)]


@pytest.mark.parametrize("kind", ["correlation", "partial correlation", "covariance", "precision", "tangent"])
@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_equals_nilearn(series, kind, estimator):
    train, test = series[:4], series[4:]
    t = ConnectivityTransformer(kind=kind, estimator=estimator).fit(train)
    cov = LedoitWolf(store_precision=False) if estimator == "ledoit_wolf" else EmpiricalCovariance()
    ref = ConnectivityMeasure(kind=kind, cov_estimator=cov).fit(train).transform(test)
    np.testing.assert_allclose(t.transform(test), ref, rtol=1e-4, atol=1e-5)


def test_tangent_reference_comes_from_training_data_only(series):
    a = ConnectivityTransformer(kind="tangent").fit(series[:3])
    b = ConnectivityTransformer(kind="tangent").fit(series[3:])
    assert not np.allclose(a.mean_, b.mean_)
    assert not np.allclose(a.transform(series[:2]), b.transform(series[:2]))


def test_vectorize_and_state_roundtrip(series):
    t = ConnectivityTransformer(kind="tangent", vectorize=True).fit(series[:4])
    v = t.transform(series)
    assert v.shape == (6, 8 * 7 // 2)
    params, arrays = t.get_state()
    t2 = ConnectivityTransformer.from_state(params, arrays)
    np.testing.assert_array_equal(t2.transform(series), v)
    # a single subject can be transformed too
    np.testing.assert_allclose(t2.transform(series[:1]), v[:1], atol=1e-6)


def test_constant_roi_gives_zeros_not_nan(series):
    s = [x.copy() for x in series]
    s[0][:, 2] = 0.0
    out = ConnectivityTransformer(kind="correlation", estimator="empirical").fit(s).transform(s)
    assert np.isfinite(out).all()
    assert np.all(out[0, 2, [0, 1, 3]] == 0)


def test_errors(series):
    with pytest.raises(ConfigError, match="unknown connectivity kind"):
        ConnectivityTransformer(kind="nonsense").fit(series)
    with pytest.raises(ConfigError, match="not fitted"):
        ConnectivityTransformer().transform(series)
    t = ConnectivityTransformer().fit(series)
    with pytest.raises(DataError, match="ROIs"):
        t.transform([np.ones((50, 5))])
    bad = series[0].copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        t.transform([bad])


def test_cache_hits_on_rerun_and_recomputes_on_change(series, tmp_path):
    cache = ArrayCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3.0)

    p = {"kind": "correlation"}
    a = cache.get_or_compute([series[0]], p, compute)
    b = cache.get_or_compute([series[0]], p, compute)
    np.testing.assert_array_equal(a, b)
    assert len(calls) == 1 and cache.hits == 1
    cache.get_or_compute([series[0]], {"kind": "tangent"}, compute)
    changed = series[0].copy()
    changed[0, 0] += 1e-3
    cache.get_or_compute([changed], p, compute)
    assert len(calls) == 3
    # the transformer uses it: a second run reads the same files
    t = ConnectivityTransformer(cache_dir=str(tmp_path / "fc")).fit(series)
    first = t.transform(series)
    n_files = len(list((tmp_path / "fc").glob("*.npy")))
    assert n_files == len(series)
    np.testing.assert_array_equal(t.transform(series), first)
    assert len(list((tmp_path / "fc").glob("*.npy"))) == n_files
