"""connectome/kernels.py: ``connectivity(kind="tangent", whitening=W)`` is nilearn's tangent
embedding for the reference whose whitening is ``W`` (kills a mutant a sampled run found alive)."""

from __future__ import annotations

import numpy as np
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import LedoitWolf

from graphbrain.connectome import kernels


def test_tangent_kind_with_a_whitening_equals_nilearn():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((40, 5)) @ rng.standard_normal((5, 5)) for _ in range(6)]
    cm = ConnectivityMeasure(kind="tangent", cov_estimator=LedoitWolf(store_precision=False))
    want = cm.fit_transform(xs)
    got = kernels.connectivity(xs, "tangent", "ledoit_wolf", whitening=cm.whitening_)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
