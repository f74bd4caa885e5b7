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
    starts = range(0, x.shape[0] - window + 1, stride)
    return cm.fit_transform([x[s : s + window] for s in starts])


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_equals_nilearn_per_window(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 120, 15)).astype(np.float32)
    fc = sliding_window_fc(x, 40, 7, backend=backend)
    fc = fc.numpy() if isinstance(fc, torch.Tensor) else fc
    assert fc.shape == (3, n_windows(120, 40, 7), 15, 15)
    for b in range(3):
        np.testing.assert_allclose(fc[b], _nilearn_windows(x[b], 40, 7), atol=1e-5)


def test_single_subject_and_window_positions():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 5))
    fc = sliding_window_fc(x, 20, 10, backend="numpy")
    assert fc.shape == (5, 5, 5)
    # window w starts at w * stride
    np.testing.assert_allclose(fc[2], np.corrcoef(x[20:40].T), atol=1e-6)


def test_constant_signal_gives_zero_not_nan():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    x[:, 1] = 3.0
    for backend in ("torch", "numpy"):
        fc = np.asarray(sliding_window_fc(x, 25, 5, backend=backend))
        assert np.isfinite(fc).all()
        assert np.all(fc[:, 1, :] == 0) and np.all(fc[:, :, 1] == 0)
        np.testing.assert_allclose(fc[:, 0, 0], 1.0, atol=1e-6)


def test_too_short_and_bad_parameters():
    x = np.zeros((10, 3))
    with pytest.raises(DataError, match="too short"):
        sliding_window_fc(x, 20, 1)
    with pytest.raises(ConfigError, match="stride"):
        sliding_window_fc(np.ones((30, 3)), 10, 0)
    with pytest.raises(DataError, match="shape"):
        sliding_window_fc(np.ones(30), 10, 1)


def test_seconds_and_fisher_z():
    assert seconds_to_timepoints(100.0, 2.0) == 50
    with pytest.raises(ConfigError, match="repetition time"):
        seconds_to_timepoints(10.0, 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 4))
    r = sliding_window_fc(x, 40, 1, backend="numpy")[0]
    z = sliding_window_fc(x, 40, 1, backend="numpy", fisher_z=True)[0]
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(z[off], np.arctanh(r[off]), atol=1e-5)
    assert np.all(np.diag(z) == 0)


def test_cohort_helper_crops_and_refuses_short():
    rng = np.random.default_rng(4)
    ts = [rng.standard_normal((t, 6)).astype(np.float32) for t in (80, 100, 90)]
    out = dynamic_fc_cohort(ts, 20, 5)
    assert out.shape == (3, n_windows(80, 20, 5), 6, 6)
    np.testing.assert_allclose(out[1, 0], np.corrcoef(ts[1][:20].T), atol=1e-5)
    with pytest.raises(DataError, match="shorter"):
        dynamic_fc_cohort(ts, 20, 5, n_timepoints=95)


def test_cupy_backend_when_available():
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001
        pytest.skip("no CUDA device for cupy")
    x = np.random.default_rng(5).standard_normal((2, 60, 8)).astype(np.float32)
    out = cp.asnumpy(sliding_window_fc(cp.asarray(x), 30, 3))
    np.testing.assert_allclose(out, sliding_window_fc(x, 30, 3, backend="numpy"), atol=1e-5)
