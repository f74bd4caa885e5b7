"""Shared fixtures for the data-room tests: tiny NIfTI builders and the shared data path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.signal import detrend

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


def save_bold(path: Path, data: np.ndarray, affine: np.ndarray, tr: float | None = 2.0) -> Path:
    """Write a 4D float32 image with ``tr`` seconds in the header's fourth zoom."""
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    if tr is not None and data.ndim == 4:
        zooms = tuple(float(z) for z in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
        img.header.set_zooms((*zooms, tr))
        img.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


@pytest.fixture
def write_bold() -> Callable[..., Path]:
    """The :func:`save_bold` helper, as a fixture (test modules do not import conftest)."""
    return save_bold


@pytest.fixture
def block_atlas() -> tuple[np.ndarray, np.ndarray]:
    """A ``(8, 8, 6)`` label volume: four 4x4x4 blocks labelled 1..4 (rest background),
    and its 3 mm affine."""
    labels = np.zeros((8, 8, 6), dtype=np.int16)
    labels[:4, :4, 1:5] = 1
    labels[4:, :4, 1:5] = 2
    labels[:4, 4:, 1:5] = 3
    labels[4:, 4:, 1:5] = 4
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-12.0, -12.0, -9.0]
    return labels, affine


@pytest.fixture
def planted_bold() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``f(labels, n_vols, seed, confound=None, amp=0.0)`` -> ``(data (X,Y,Z,T), signals (T,K))``:
    every voxel of label k carries signal k plus small voxel noise (and ``amp * confound``)."""

    def make(
        labels: np.ndarray,
        n_vols: int = 60,
        seed: int = 0,
        confound: np.ndarray | None = None,
        amp: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        k = int(labels.max())
        # Detrended, so that the readers' linear detrending leaves them unchanged.
        signals = detrend(rng.standard_normal((n_vols, k)), axis=0)
        data = 100.0 + 0.1 * rng.standard_normal((*labels.shape, n_vols))
        for j in range(k):
            data[labels == j + 1] += signals[:, j]
        if confound is not None:
            data[labels > 0] += amp * confound
        return data, signals

    return make
