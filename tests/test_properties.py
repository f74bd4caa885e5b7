"""Hypothesis property tests: cross-validation splits and the FC kernels' invariants.

Each property is a mathematical fact checked against an independent computation
(numpy's ``corrcoef`` / ``cov`` / ``inv``), not against recorded outputs.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from graphbrain.connectome.dynamic import n_windows, sliding_window_fc
from graphbrain.connectome.static import ConnectivityTransformer, vectorize_fc
from graphbrain.training.splits import inner_split, leave_site_out, make_folds

# tools/mutation.py lowers the example count (each mutant reruns these tests)
N_EXAMPLES = int(os.environ.get("GRAPHBRAIN_HYPOTHESIS_EXAMPLES", "30"))
FAST = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- splits ------------------------------------------------------------------------------------


@st.composite
def grouped_cohorts(draw):
    """(labels, groups, sites): people with 1-3 runs each; a person keeps one label."""
    n_people = draw(st.integers(4, 24))
    runs = draw(st.lists(st.integers(1, 3), min_size=n_people, max_size=n_people))
    person_label = draw(st.lists(st.integers(0, 1), min_size=n_people, max_size=n_people))
    person_site = draw(st.lists(st.sampled_from("ABC"), min_size=n_people, max_size=n_people))
    labels = np.repeat(person_label, runs)
    groups = np.repeat([f"p{i}" for i in range(n_people)], runs)
    sites = np.repeat(person_site, runs)
    return labels, groups, sites


@FAST
@given(grouped_cohorts(), st.integers(2, 4), st.integers(1, 2), st.integers(0, 10**6))
def test_stratified_folds_partition_subjects_and_never_split_a_person(data, k, repeats, seed):
    labels, groups, sites = data
    per_class = [len(set(groups[labels == c])) for c in (0, 1)]
    assume(min(per_class) >= k)
    folds = make_folds("stratified", labels, sites, n_splits=k, repeats=repeats, seed=seed, groups=groups)
    assert len(folds) == k * repeats
    n = len(labels)
    for r in range(repeats):
        rep = [f for f in folds if f.repeat == r]
        tests = np.concatenate([f.test for f in rep])
        assert np.array_equal(np.sort(tests), np.arange(n))  # every subject in exactly one test fold
        for f in rep:
            assert np.array_equal(np.union1d(f.train, f.test), np.arange(n))
            assert not set(groups[f.train]) & set(groups[f.test])


@FAST
@given(grouped_cohorts())
def test_leave_site_out_tests_exactly_one_site_and_never_split_a_person(data):
    labels, groups, sites = data
    rng = np.random.default_rng(len(labels))
    # let some people be scanned at two sites
    sites = sites.copy()
    flip = rng.random(len(sites)) < 0.2
    sites[flip] = rng.choice(list("ABC"), size=int(flip.sum()))
    assume(len(set(sites)) >= 2)
    folds = list(leave_site_out(sites, None, groups=groups))
    assert {f.name for f in folds} == {f"site={s}" for s in set(sites)}
    for f in folds:
        site = f.name.split("=", 1)[1]
        assert np.array_equal(f.test, np.flatnonzero(sites == site))
        assert not (sites[f.train] == site).any()
        assert not set(groups[f.train]) & set(groups[f.test])
        # only subjects of people seen at the test site are dropped from training
        dropped = np.setdiff1d(np.flatnonzero(sites != site), f.train)
        assert set(groups[dropped]) <= set(groups[f.test])


@FAST
@given(grouped_cohorts(), st.floats(0.1, 0.5), st.integers(0, 1000), st.booleans())
def test_inner_split_stays_inside_training_indices(data, frac, seed, grouped):
    labels, groups, _ = data
    n = len(labels)
    rng = np.random.default_rng(seed)
    keep_people = rng.permutation(np.unique(groups))[: max(3, len(np.unique(groups)) * 3 // 4)]
    train = np.flatnonzero(np.isin(groups, keep_people))
    assume(len(set(labels[train])) == 2 and len(train) >= 4)
    g = groups if grouped else None
    if not grouped:
        assume(len(train) * frac >= 2 and len(train) * (1 - frac) >= 2)
    fit_idx, val_idx = inner_split(train, labels, val_fraction=frac, seed=seed, groups=g)
    assert set(fit_idx) | set(val_idx) == set(train)
    assert not set(fit_idx) & set(val_idx)
    assert len(fit_idx) > 0 and len(val_idx) > 0
    assert set(fit_idx) <= set(train) and np.all(np.diff(fit_idx) > 0) and val_idx.max() < n
    if grouped:
        assert not set(groups[fit_idx]) & set(groups[val_idx])


# -- FC kernels --------------------------------------------------------------------------------


@st.composite
def series(draw, min_r: int = 2, max_r: int = 7):
    t = draw(st.integers(12, 40))
    r = draw(st.integers(min_r, max_r))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((r, r))
    return rng.standard_normal((t, r)) @ mix + 0.5 * rng.standard_normal((t, r))


def _fc(x, kind="correlation", estimator="empirical", **kw):
    return ConnectivityTransformer(kind=kind, estimator=estimator, **kw).fit([x]).transform([x])[0].astype(np.float64)


@FAST
@given(series())
def test_correlation_equals_numpy_corrcoef_symmetric_unit_diagonal(x):
    fc = _fc(x)
    np.testing.assert_allclose(fc, np.corrcoef(x, rowvar=False), atol=2e-5)
    np.testing.assert_allclose(fc, fc.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(fc), 1.0, atol=1e-5)
    assert np.abs(fc).max() <= 1 + 1e-5


@FAST
@given(series(), st.data())
def test_correlation_invariant_to_per_roi_affine_rescaling(x, data):
    r = x.shape[1]
    scale = np.asarray(data.draw(st.lists(st.floats(0.1, 50), min_size=r, max_size=r)))
    shift = np.asarray(data.draw(st.lists(st.floats(-100, 100), min_size=r, max_size=r)))
    sign = np.asarray(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=r, max_size=r)))
    y = x * (sign * scale) + shift
    np.testing.assert_allclose(_fc(y), _fc(x) * np.outer(sign, sign), atol=5e-4)
    # the shrunk (Ledoit-Wolf) correlation is invariant to shifts, and symmetric with unit diagonal
    lw = _fc(x, estimator="ledoit_wolf")
    np.testing.assert_allclose(_fc(x + shift, estimator="ledoit_wolf"), lw, atol=5e-4)
    np.testing.assert_allclose(lw, lw.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(lw), 1.0, atol=1e-5)


@FAST
@given(series())
def test_covariance_and_partial_correlation_match_numpy(x):
    cov = np.cov(x, rowvar=False, bias=True)
    np.testing.assert_allclose(_fc(x, "covariance"), cov, rtol=1e-4, atol=1e-4 * np.abs(cov).max())
    p = np.linalg.inv(cov)
    d = np.sqrt(np.diag(p))
    pc = -p / np.outer(d, d)
    np.fill_diagonal(pc, 1.0)
    got = _fc(x, "partial correlation")
    off = ~np.eye(len(pc), dtype=bool)
    np.testing.assert_allclose(got[off], pc[off], atol=2e-3)


@FAST
@given(series(max_r=5))
def test_fisher_z_and_vectorize_are_the_stated_transforms(x):
    r = _fc(x)
    z = _fc(x, fisher_z=True)
    off = ~np.eye(len(r), dtype=bool)
    np.testing.assert_allclose(z[off], np.arctanh(np.clip(r[off], -0.999999, 0.999999)), atol=1e-3)
    np.testing.assert_allclose(np.diag(z), 0.0)
    vec = ConnectivityTransformer(estimator="empirical", vectorize=True).fit([x]).transform([x])[0]
    il = np.tril_indices(len(r), -1)
    assert vec.shape == (len(il[0]),)
    np.testing.assert_allclose(vec, r[il], atol=1e-6)
    np.testing.assert_allclose(vectorize_fc(r[None])[0], r[il], atol=1e-6)


@settings(max_examples=min(5, N_EXAMPLES), deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_tangent_vectors_of_the_training_set_average_to_zero(seed):
    """At the geometric (Riemannian) mean M of the training covariances, the log-maps
    logm(M^-1/2 C_i M^-1/2) sum to zero: the defining first-order condition of M."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((80, 4)) @ (np.eye(4) + 0.3 * rng.standard_normal((4, 4))) for _ in range(6)]
    t = ConnectivityTransformer(kind="tangent", estimator="empirical").fit(xs)
    tang = t.transform(xs).astype(np.float64)
    assert np.abs(tang.mean(axis=0)).max() < 1e-2 * np.abs(tang).max()
    np.testing.assert_allclose(tang, tang.transpose(0, 2, 1), atol=1e-5)
    # fitted on other data, the same subjects no longer average to zero
    other = ConnectivityTransformer(kind="tangent", estimator="empirical").fit(
        [rng.standard_normal((80, 4)) * [1, 3, 1, 0.3] for _ in range(6)]
    )
    assert np.abs(other.transform(xs).mean(axis=0)).max() > 0.2


@FAST
@given(series(max_r=5), st.integers(4, 10), st.integers(1, 4))
def test_sliding_window_fc_equals_corrcoef_per_window(x, window, stride):
    t = x.shape[0]
    assume(window <= t)
    got = np.asarray(sliding_window_fc(x.astype(np.float32), window, stride, backend="numpy"), dtype=np.float64)
    w = n_windows(t, window, stride)
    assert got.shape == (w, x.shape[1], x.shape[1]) and w == (t - window) // stride + 1
    for i in range(w):
        seg = x[i * stride : i * stride + window]
        assume(np.all(seg.std(axis=0) > 1e-3))
        np.testing.assert_allclose(got[i], np.corrcoef(seg, rowvar=False), atol=2e-4)


def test_hypothesis_profiles_are_registered():
    """The mutation script runs with ``--hypothesis-profile=mutation`` (tests/conftest.py)."""
    assert settings.get_profile("mutation").database is None


@settings(max_examples=min(5, N_EXAMPLES), deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["correlation", "partial correlation", "covariance", "tangent"]),
       st.booleans())
def test_engines_agree_and_saved_state_reproduces_transform(seed, kind, single):
    """Both engines give the same connectomes (also for one subject), with empirical or
    shrunk covariances, and a transformer rebuilt from get_state() transforms identically."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((50, 4)) @ (np.eye(4) + 0.3 * rng.standard_normal((4, 4))) for _ in range(5)]
    new = xs[:1] if single else xs[:3]
    for est in ("ledoit_wolf", "empirical"):
        out = {}
        for engine in ("graphbrain", "nilearn"):
            t = ConnectivityTransformer(kind=kind, estimator=est, engine=engine).fit(xs)
            out[engine] = t.transform(new).astype(np.float64)
            params, arrays = t.get_state()
            again = ConnectivityTransformer.from_state(params, arrays).transform(new)
            np.testing.assert_array_equal(again, out[engine].astype(np.float32))
            assert out[engine].shape == (len(new), 4, 4) and np.isfinite(out[engine]).all()
        scale = max(1.0, np.abs(out["nilearn"]).max())
        np.testing.assert_allclose(out["graphbrain"], out["nilearn"], atol=1e-4 * scale)
