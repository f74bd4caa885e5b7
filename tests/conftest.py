"""Shared fixtures: small synthetic cohorts and the optional real development data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# numba's on-disk cache of the compiled static-FC loops goes next to the sources by default
# (the checkout): keep it in a temporary folder (set before anything imports numba).
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="numba-cache-"))

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from graphbrain.data import Cohort, make_synthetic_cohort  # noqa: E402

# Hypothesis keeps its example database and failure patches in .hypothesis/ of the
# working directory at import time (the checkout): keep them in a temporary folder.
set_hypothesis_home_dir(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or tempfile.mkdtemp(prefix="hypothesis-"))

# tools/mutation.py runs the tests with --hypothesis-profile=mutation: reproducible
# examples, no example database written to disk.
settings.register_profile("mutation", derandomize=True, database=None, deadline=None)

# One torch thread: on a loaded 2-core CI machine, 2 threads spin-wait and run far slower.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ABIDE_ROOT = SHARED_DATA / "abide_pcp"


@pytest.fixture(autouse=True)
def _no_writes_into_the_repository(tmp_path_factory, monkeypatch):
    """Every test runs in a fresh temporary working directory.

    Default paths (``outputs/...``, the connectome cache ``.graphbrain_cache``) are
    relative to the working directory, so a test that forgets ``tmp_path`` writes into a
    temporary folder instead of the checkout.
    """
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def small_cohort() -> Cohort:
    """60 subjects, 16 ROIs, 100 time points, 3 sites, strong planted effect."""
    return make_synthetic_cohort(
        n_subjects=60, n_rois=16, n_timepoints=100, n_sites=3, n_planted=4, effect_size=1.5, seed=1
    )


@pytest.fixture(scope="session")
def abide_root() -> Path:
    if not (ABIDE_ROOT / "ABIDE_pcp").is_dir():
        pytest.skip("../shared/data/abide_pcp is not available")
    return ABIDE_ROOT
