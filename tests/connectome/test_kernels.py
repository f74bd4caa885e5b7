"""Batched static-FC kernels against nilearn's ConnectivityMeasure (the judge), to 1e-5."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, ledoit_wolf_shrinkage

from graphbrain.connectome import kernels
from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.errors import ConfigError, DataError, MissingDependencyError

ABIDE = Path(__file__).resolve().parents[3] / "shared" / "data" / "abide_pcp"
KINDS = ["correlation", "partial correlation", "covariance", "precision"]


def _nilearn(series, kind, estimator):
    est = LedoitWolf(store_precision=False) if estimator == "ledoit_wolf" else EmpiricalCovariance()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(ConnectivityMeasure(kind=kind, cov_estimator=est).fit_transform(series))


@pytest.fixture(scope="module")
def series():
    # lengths in mixed order, so grouping by length must scatter results back correctly
    rng = np.random.default_rng(1)
    mix = rng.standard_normal((12, 12))
    lengths = [60, 90, 60, 75, 90, 60, 75, 40]
    return [(rng.standard_normal((t, 12)) @ mix + 5.0 * rng.standard_normal(12)) for t in lengths]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
@pytest.mark.parametrize("kind", KINDS)
def test_kinds_equal_nilearn_synthetic(series, kind, estimator, backend):
    got = kernels.connectivity(series, kind, estimator, backend=backend)
    got = got.numpy() if backend == "torch" else got
    ref = _nilearn(series, kind, estimator)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_float32_gram_correlation_and_float64_everything(series):
    ref = _nilearn(series, "correlation", "ledoit_wolf")
    f32 = kernels.connectivity(series, "correlation", gram_dtype="float32")
    f64 = kernels.connectivity(series, "correlation", gram_dtype="float64")
    assert np.abs(f64 - ref).max() < 1e-12  # float64 Gram: same maths to rounding
    assert np.abs(f32 - ref).max() < 1e-5


def test_shrinkage_matches_sklearn_exactly(series):
    ops = kernels._Ops("numpy")
    for x in series[:3]:
        g, xc, t = kernels._group_gram(ops, [x], "float64")
        shrink, _ = kernels._shrinkage(ops, g / t, (xc * xc).sum(-1), t)
        assert shrink[0] == pytest.approx(ledoit_wolf_shrinkage(x), rel=1e-10, abs=1e-14)
        cov = kernels.connectivity([x], "covariance", "ledoit_wolf", gram_dtype="float64")[0]
        np.testing.assert_allclose(cov, LedoitWolf().fit(x).covariance_, rtol=1e-10, atol=1e-12)


def test_tangent_equals_nilearn_and_uses_the_training_mean(series):
    train, test = series[:6], series[6:]
    ref_cm = ConnectivityMeasure(kind="tangent").fit(train)
    covs = kernels.connectivity(train, "covariance")
    mean, whitening = kernels.tangent_reference(covs)
    np.testing.assert_allclose(mean, ref_cm.mean_, atol=1e-8 * np.abs(ref_cm.mean_).max())
    got = kernels.tangent_embed(kernels.connectivity(test, "covariance"), whitening)
    np.testing.assert_allclose(got, ref_cm.transform(test), atol=1e-5)
    # torch back end, same numbers
    tm, tw = kernels.tangent_reference(torch.from_numpy(covs), backend="torch")
    np.testing.assert_allclose(tw.numpy(), whitening, atol=1e-10)


@pytest.mark.parametrize("kind", ["correlation", "tangent", "partial correlation"])
def test_transformer_engines_agree(series, kind):
    a = ConnectivityTransformer(kind=kind, vectorize=True).fit(series[:6])
    b = ConnectivityTransformer(kind=kind, vectorize=True, engine="nilearn").fit(series[:6])
    np.testing.assert_allclose(a.transform(series), b.transform(series), atol=1e-5)
    with pytest.raises(ConfigError, match="connectome.engine"):
        ConnectivityTransformer(engine="scipy").fit(series)


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_constant_roi_gives_zero_like_nilearn(series, estimator):
    s = [x.copy() for x in series]
    s[2][:, 4] = 3.0  # a constant ROI (constant_roi=keep)
    a = ConnectivityTransformer(kind="correlation", estimator=estimator).fit(s).transform(s)
    b = ConnectivityTransformer(kind="correlation", estimator=estimator, engine="nilearn").fit(s).transform(s)
    assert np.isfinite(a).all()
    assert np.all(a[2, 4, np.arange(12) != 4] == 0) and a[2, 4, 4] == 1
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_array_input_and_errors(series):
    same = [x[:40] for x in series]
    np.testing.assert_allclose(kernels.connectivity(np.stack(same)), kernels.connectivity(same), atol=0)
    with pytest.raises(ConfigError, match="kind"):
        kernels.connectivity(series, "spectral")
    with pytest.raises(ConfigError, match="estimator"):
        kernels.connectivity(series, estimator="oas")
    with pytest.raises(DataError, match="ROIs"):
        kernels.connectivity([series[0], series[1][:, :5]])
    singular = [np.repeat(series[0][:, :3], 2, axis=1)]  # duplicated ROIs
    with pytest.raises(DataError, match="singular"):
        kernels.connectivity(singular, "precision", "empirical")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(series):  # pragma: no cover - needs a GPU
    got = kernels.connectivity(series, "correlation", backend="torch", device="cuda").cpu().numpy()
    np.testing.assert_allclose(got, kernels.connectivity(series, "correlation"), atol=1e-5)


@pytest.fixture(scope="module")
def abide():
    if not (ABIDE / "ABIDE_pcp").is_dir():
        pytest.skip("ABIDE development data (../shared/data/abide_pcp) not present")
    from graphbrain.data import read_abide_pcp

    cohort = read_abide_pcp(ABIDE, constant_roi="keep")
    return [s.timeseries for s in cohort]


def test_abide_correlation_all_subjects(abide, monkeypatch):
    assert len(abide) == 323 and len({x.shape[0] for x in abide}) > 1  # several scan lengths
    got = ConnectivityTransformer(kind="correlation").fit(abide).transform(abide)
    ref = ConnectivityTransformer(kind="correlation", engine="nilearn").fit(abide).transform(abide)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    monkeypatch.setattr(kernels, "_ACCEL", "auto")  # the numba loops too, when installed
    got = ConnectivityTransformer(kind="correlation").fit(abide).transform(abide)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_accel_modes(monkeypatch):
    """numpy by default (no compile cost); 'numba' without numba is a clear error, an unknown
    mode a ConfigError; 'auto' falls back to numpy."""
    monkeypatch.setattr(kernels, "_ACCEL", "numpy")
    assert kernels._fused() is None
    with pytest.raises(ConfigError, match="accel"):
        kernels.set_accel("fast")
    monkeypatch.setattr(kernels, "_FUSED", (None, None))  # as if numba were not installed
    with pytest.raises(MissingDependencyError, match=r"compiled static-FC loops .*'numba'.*\[fast\]"):
        kernels.set_accel("numba")
    kernels.set_accel("auto")
    assert kernels._fused() is None
    kernels.set_accel("numpy")


@pytest.mark.parametrize("kind", ["partial correlation", "covariance", "precision", "tangent"])
def test_abide_other_kinds(abide, kind):
    # every site and scan length; nilearn's tangent is slow (about 0.1 s per subject)
    sub = abide[::16] if kind == "tangent" else abide[::8]
    got = ConnectivityTransformer(kind=kind).fit(sub).transform(sub)
    ref = ConnectivityTransformer(kind=kind, engine="nilearn").fit(sub).transform(sub)
    scale = max(1.0, float(np.abs(ref).max())) if kind in ("covariance", "precision") else 1.0
    # float32 output of the transformer: compare at its resolution for data-unit kinds
    np.testing.assert_allclose(got, ref, rtol=1e-5 if scale > 1 else 0, atol=1e-5)


def test_float32_input_with_large_offset_stays_within_1e5():
    # raw BOLD-like scale: mean 1e4, std ~10 (mean/std 1e3); float32 input, float32 Gram
    rng = np.random.default_rng(3)
    mix = rng.standard_normal((10, 10))
    xs = [(1e4 + 10.0 * rng.standard_normal((t, 10)) @ mix).astype(np.float32) for t in (120, 150, 120)]
    got = kernels.connectivity(xs, "correlation")
    ref = _nilearn([x.astype(np.float64) for x in xs], "correlation", "ledoit_wolf")
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.fixture(scope="module")
def mixed_offsets():
    # 19 subjects (three chunks of the numpy back end), mixed lengths; most have means small
    # against their RMS (the uncentred Gram + rank-1 path), some large (centred first)
    rng = np.random.default_rng(7)
    mix = rng.standard_normal((15, 15)) / 4
    out = []
    for i in range(19):
        x = rng.standard_normal((50 + 10 * (i % 3), 15)) @ mix
        x -= x.mean(0)
        x += (20.0 if i % 5 == 0 else 0.05) * rng.standard_normal(15) * x.std(0)
        out.append(x.astype(np.float32) if i % 2 else x)
    return out


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
@pytest.mark.parametrize("kind", KINDS)
def test_uncentred_and_centred_paths_equal_nilearn(mixed_offsets, kind, estimator):
    means = np.array([np.max(np.abs(x.mean(0)) / x.std(0)) for x in mixed_offsets])
    assert (means < 0.2).sum() >= 10 and (means > 5).sum() >= 3  # both paths are taken
    ref = _nilearn([np.asarray(x, dtype=np.float64) for x in mixed_offsets], kind, estimator)
    for out_dtype in ("float64", "float32"):
        got = kernels.connectivity(mixed_offsets, kind, estimator, out_dtype=out_dtype)
        assert got.dtype == np.dtype(out_dtype)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_non_finite_input_is_named_and_undefined_entries_can_be_zeroed(mixed_offsets):
    bad = [x.copy() for x in mixed_offsets]
    bad[11][3, 2] = np.nan
    with pytest.raises(DataError, match="time series 11 contains NaN"):
        kernels.connectivity(bad)
    bad[11][3, 2] = np.inf
    with pytest.raises(DataError, match="time series 11 contains NaN/Inf"):
        kernels.connectivity(bad, "covariance")
    const = [x.copy() for x in mixed_offsets]
    const[9][:, 4] = 2.5  # constant ROI: empirical correlation undefined (NaN as in nilearn)
    raw = kernels.connectivity(const, estimator="empirical")
    assert np.isnan(raw[9, 4, :4]).all() and np.isfinite(np.delete(raw, 9, 0)).all()
    zeroed = kernels.connectivity(const, estimator="empirical", finite=True)
    assert np.all(zeroed[9, 4, np.arange(15) != 4] == 0) and zeroed[9, 4, 4] == 1
    np.testing.assert_array_equal(np.nan_to_num(raw, nan=0.0), zeroed)


# --- the numpy back end's chunked paths: numpy ufuncs, the fused loops (numba) and the same
# loops as plain Python (what runs them when numba is absent) must give nilearn's numbers -----
@pytest.fixture(params=["numpy", "fused-python", "fused-numba"])
def accel(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setattr(kernels, "_ACCEL", "numpy")
    elif request.param == "fused-python":
        monkeypatch.setattr(kernels, "_ACCEL", "auto")
        monkeypatch.setattr(kernels, "_FUSED", (kernels._fused_copy, kernels._fused_corr_finish))
    else:
        pytest.importorskip("numba")
        monkeypatch.setattr(kernels, "_ACCEL", "auto")
        assert kernels._fused() is not None and kernels._fused()[0] is not kernels._fused_copy
    return request.param


@pytest.fixture(scope="module")
def awkward():
    """23 subjects, 13 ROIs (padded to 16 in the chunk buffer): 12 of length 50 interleaved
    with lengths 70 and 35 (so length-50 chunks span non-consecutive subjects and one is
    split over two chunks of 8), float32 and float64 input, an all-zero ROI, ROIs constant at
    0.1 (whose mean is not exact in float32), offsets of 20 and 1000 standard deviations."""
    rng = np.random.default_rng(5)
    mix = rng.standard_normal((13, 13)) / 3
    lengths = [50, 70, 50, 35, 50, 50, 70, 50, 35, 50, 50, 70, 50, 50, 35, 50, 50, 70, 50, 35, 70, 35, 70]
    out = []
    for i, t in enumerate(lengths):
        x = rng.standard_normal((t, 13)) @ mix
        if i % 7 == 3:
            x += 20.0 * x.std(0)
        if i == 5:
            x[:, 2] = 0.0
        if i in (6, 9):
            x[:, 7] = 0.1
        if i == 10:
            x = 1000.0 * x.std(0) + x  # mean / std ~ 1000 (float32 below)
        out.append(x.astype(np.float32) if i % 2 or i == 10 else x)
    return out


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_chunked_paths_equal_nilearn_on_awkward_cohorts(awkward, accel, estimator):
    ref = _nilearn([np.asarray(x, dtype=np.float64) for x in awkward], "correlation", estimator)
    for out_dtype in ("float32", "float64"):
        got = kernels.connectivity(awkward, "correlation", estimator, out_dtype=out_dtype)
        assert got.dtype == np.dtype(out_dtype) and got.shape == ref.shape
        if estimator == "empirical":  # constant ROIs: NaN in the same places as nilearn's 0/0
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            assert np.isnan(got).any()
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=0, atol=1e-5)
    # the constant ROIs: 0 off the diagonal with Ledoit-Wolf, as nilearn
    if estimator == "ledoit_wolf":
        for i, roi in ((5, 2), (6, 7), (9, 7)):
            assert np.abs(np.delete(got[i, roi], roi)).max() < 1e-6 and got[i, roi, roi] == 1.0


def test_chunked_paths_keep_every_subject_independent_of_its_chunk(awkward, accel):
    """Each subject's result is the same alone as inside a chunk of other subjects (catches a
    mixed-up output order or a chunk's statistics leaking into another subject)."""
    together = kernels.connectivity(awkward, "correlation")
    alone = np.stack([kernels.connectivity([x], "correlation")[0] for x in awkward])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-7)
    assert np.abs(together[0] - together[2]).max() > 0.01  # different subjects differ


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_one_and_two_rois_equal_nilearn(accel, r, estimator):
    rng = np.random.default_rng(r)
    xs = [rng.standard_normal((t, r)) + 3.0 for t in (20, 31, 20)]
    xs[1] = xs[1].astype(np.float32)
    for kind in KINDS:
        got = kernels.connectivity(xs, kind, estimator)
        ref = _nilearn(xs, kind, estimator)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_chunked_paths_find_non_finite_input(awkward, accel):
    bad = [x.copy() for x in awkward]
    bad[13][4, 1] = np.nan  # a length-50 subject in the second chunk of that length
    bad[20][0, 0] = np.inf
    with pytest.raises(DataError, match="time series 13 contains NaN/Inf"):
        kernels.connectivity(bad)


def test_long_scans_take_smaller_chunks_and_equal_nilearn(accel):
    """Long (e.g. concatenated) scans: float32 sums over T = 4,680 time points drift to about
    1e-5 from nilearn, so ``gram_dtype="auto"`` accumulates them in float64; and fewer than
    ``_CHUNK`` of them fit the chunk buffer budget (``_CHUNK_BYTES``), so the chunk shrinks.
    Results stay nilearn's to 1e-5 on every path."""
    r, t = 13, 4680
    assert t > kernels._F32_MAX_T
    assert kernels._CHUNK_BYTES // (t * kernels._padded(r) * 8) < kernels._CHUNK
    rng = np.random.default_rng(9)
    series = [rng.standard_normal((t, r)).astype(np.float32) for _ in range(9)]
    ref = _nilearn(series, "correlation", "ledoit_wolf")
    np.testing.assert_allclose(kernels.connectivity(series, "correlation"), ref, atol=1e-5)
    np.testing.assert_allclose(kernels.connectivity(series[:4] + [series[4][:300]], "correlation"),
                               _nilearn(series[:4] + [series[4][:300]], "correlation", "ledoit_wolf"), atol=1e-5)


def test_float32_input_whose_squares_overflow_float32_equals_nilearn(accel):
    """Finite float32 values large enough that their squared sums overflow float32 (a series
    in odd units, ~1e19): that subject's Gram is taken in float64 instead of coming out NaN/Inf."""
    rng = np.random.default_rng(11)
    mix = rng.standard_normal((13, 13))
    series = [(rng.standard_normal((50, 13)) @ mix).astype(np.float32) for _ in range(5)]
    series[2] = (series[2] * 1e19).astype(np.float32)
    assert np.isfinite(series[2]).all() and not np.isfinite(np.square(series[2]).sum(0)).all()
    ref = _nilearn([x.astype(np.float64) for x in series], "correlation", "ledoit_wolf")  # (float32 overflows there too)
    got = kernels.connectivity(series, "correlation")
    np.testing.assert_allclose(got, ref, atol=1e-5)
    got = ConnectivityTransformer(kind="correlation").fit(series).transform(series)
    np.testing.assert_allclose(got, ref, atol=1e-5)
