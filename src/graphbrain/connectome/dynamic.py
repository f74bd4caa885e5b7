"""Dynamic functional connectivity: sliding-window correlation, batched.

For a scan ``x`` of shape ``(T, R)``, window length ``L`` and stride ``s``, window ``w``
covers time points ``[w*s, w*s + L)`` and

    FC[w] = corr(x[w*s : w*s+L])      (R x R Pearson correlation)

with ``W = (T - L) // s + 1`` windows. Many subjects ``(B, T, R)`` are done in one
batched kernel: ``unfold`` the time axis into windows ``(B, W, R, L)``, centre and
scale each window row in place, then one batched ``matmul`` gives ``(B, W, R, R)``. Correlations with a
zero-variance window signal are undefined; they are returned as 0 (and the diagonal
entry of such an ROI is 0 too), so no NaN ever leaves this function.

Back ends: ``"numpy"`` (CPU), ``"torch"`` (CPU or CUDA, float32 by default; on the
CPU without autograd it runs the numpy ``syrk`` kernel, which computes one triangle of
each symmetric product: half the FLOPs of torch's general matmul, same numbers) and
``"cupy"`` (CUDA, needs the ``gpu`` extra). ``"auto"`` picks torch. Accumulation is
float32 unless ``dtype`` is float64 (error against nilearn's float64 about 1e-6).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from graphbrain.errors import ConfigError, DataError, MissingDependencyError

Backend = Literal["auto", "numpy", "torch", "cupy"]


def n_windows(n_timepoints: int, window: int, stride: int) -> int:
    """Number of full windows of length ``window`` and step ``stride`` in ``n_timepoints``."""
    if window < 2:
        raise ConfigError(f"window must be at least 2 time points, got {window}")
    if stride < 1:
        raise ConfigError(f"stride must be at least 1 time point, got {stride}")
    if n_timepoints < window:
        return 0
    return (n_timepoints - window) // stride + 1


def seconds_to_timepoints(seconds: float, tr: float) -> int:
    """Convert a duration in seconds to a whole number of TRs (rounded, at least 1)."""
    if tr is None or tr <= 0:
        raise ConfigError("a window given in seconds needs the repetition time (tr) of the scan")
    return max(1, int(round(seconds / tr)))


def _sliding_corr_syrk(x: np.ndarray, window: int, stride: int, dtype: Any = np.float32) -> np.ndarray:
    """(..., T, R) -> (..., W, R, R) on the CPU, at about half the FLOPs of a general matmul.

    Three passes over the ``(..., W, R, L)`` windows (centre into one contiguous buffer,
    row norms, in-place scaling), then ONE batched ``Z Z^T`` that numpy hands to BLAS
    ``syrk`` (same buffer, transposed: only one triangle is computed, then mirrored).
    A window signal counts as constant when its centred norm is below 1e-6 times the
    ROI's largest absolute value over the scan (as the torch path).
    """
    x = np.asarray(x, dtype=dtype)
    tol = 1e-6 * (1.0 + np.abs(x).max(axis=-2))  # (..., R)
    win = np.lib.stride_tricks.sliding_window_view(x, window, axis=-2)[..., ::stride, :, :]
    z = np.empty(win.shape, dtype=dtype)  # C-contiguous (..., W, R, L)
    np.subtract(win, win.mean(axis=-1, keepdims=True, dtype=dtype), out=z)
    norm = np.sqrt(np.einsum("...l,...l->...", z, z))  # (..., W, R)
    inv = np.where(norm > tol[..., None, :], 1.0 / np.maximum(norm, np.finfo(dtype).tiny), 0.0)
    z *= inv.astype(dtype, copy=False)[..., None]
    return np.matmul(z, z.swapaxes(-1, -2))  # same buffer, transposed -> syrk


def _sliding_corr_torch(x: Any, window: int, stride: int) -> Any:
    """(..., T, R) tensor -> (..., W, R, R) window correlations, with few memory passes.

    A window signal counts as constant when its centred norm is below 1e-6 times the
    ROI's largest absolute value over the scan (computed once per scan, not per window).
    """
    import torch

    tol = 1e-6 * (1.0 + x.abs().amax(dim=-2))  # (..., R)
    win = x.unfold(-2, window, stride)  # (..., W, R, L), a view
    win = win - win.mean(dim=-1, keepdim=True)  # the one materialising pass
    norm = torch.linalg.vector_norm(win, dim=-1)  # (..., W, R)
    inv = torch.where(norm > tol.unsqueeze(-2), norm.reciprocal(), torch.zeros_like(norm))
    win.mul_(inv.unsqueeze(-1))
    return torch.matmul(win, win.transpose(-1, -2))


def sliding_window_fc(
    x: Any,
    window: int,
    stride: int = 1,
    *,
    backend: Backend = "auto",
    device: str | None = None,
    dtype: Any = None,
    fisher_z: bool = False,
) -> Any:
    """Sliding-window Pearson correlation.

    Args:
        x: time series ``(T, R)`` or a batch ``(B, T, R)`` (numpy array, torch tensor or
            cupy array). A batch must share ``T``; crop subjects to a common length first.
        window: window length in time points (``L``).
        stride: step between window starts in time points (``s``).
        backend: ``"numpy"``, ``"torch"``, ``"cupy"`` or ``"auto"`` (torch; a cupy input
            stays on cupy).
        device: torch device for the torch back end (``"cuda"``, ``"cpu"``; default: the
            input tensor's device, or CPU for numpy input).
        dtype: torch dtype (default float32) / numpy dtype (default float32 output).
        fisher_z: return ``arctanh`` of the correlations (diagonal set to 0).

    Returns:
        ``(W, R, R)`` or ``(B, W, R, R)`` of the back end's array type.
    """
    shape = tuple(x.shape)
    if len(shape) not in (2, 3):
        raise DataError(f"expected (T, R) or (B, T, R) time series, got shape {shape}", reason="wrong_shape")
    t = shape[-2]
    nw = n_windows(t, window, stride)
    if nw == 0:
        raise DataError(
            f"scan too short for the windows: {t} time points < window length {window}",
            reason="too_short",
        )
    is_cupy = type(x).__module__.split(".")[0] == "cupy"
    if backend == "auto":
        backend = "cupy" if is_cupy else "torch"
    if backend == "numpy":
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        work = np.float64 if np.dtype(dtype or np.float32) == np.float64 else np.float32
        fc = _sliding_corr_syrk(x, window, stride, work)
        if fisher_z:
            fc = _fisher_z_numpy(fc)
        return fc.astype(dtype or np.float32, copy=False)
    if backend == "cupy":
        try:
            import cupy as cp
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise MissingDependencyError("cupy", "gpu", "the cupy dynamic-FC back end") from err
        arr = cp.asarray(x, dtype=cp.float32)
        win = cp.lib.stride_tricks.sliding_window_view(arr, window, axis=-2)[..., ::stride, :, :]
        win = win - win.mean(axis=-1, keepdims=True)
        norm = cp.sqrt((win * win).sum(axis=-1, keepdims=True))
        ok = norm > 1e-6 * (1.0 + cp.abs(win).max(axis=-1, keepdims=True))
        win = cp.where(ok, win / cp.where(ok, norm, 1.0), 0.0)
        fc = cp.einsum("...il,...jl->...ij", win, win)
        if fisher_z:
            fc = _fisher_z_xp(cp, fc)
        return fc
    if backend != "torch":
        raise ConfigError(f"unknown dynamic-FC backend {backend!r}; use numpy, torch, cupy or auto")
    import torch

    tx = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if device is not None:
        tx = tx.to(device)
    tx = tx.to(dtype or torch.float32)
    if tx.device.type == "cpu" and not tx.requires_grad and tx.dtype in (torch.float32, torch.float64):
        # torch's CPU matmul has no syrk; the numpy kernel does half the FLOPs (same maths)
        np_dtype = np.float32 if tx.dtype == torch.float32 else np.float64
        fc = torch.from_numpy(_sliding_corr_syrk(tx.numpy(), window, stride, np_dtype))
    else:
        fc = _sliding_corr_torch(tx, window, stride)
    if fisher_z:
        fc = _fisher_z_xp(torch, fc)
    return fc


def _fisher_z_numpy(fc: np.ndarray) -> np.ndarray:
    return _fisher_z_xp(np, fc)


def _fisher_z_xp(xp: Any, fc: Any) -> Any:
    r = fc.shape[-1]
    if xp.__name__ == "torch":
        eye = xp.eye(r, dtype=fc.dtype, device=fc.device)
    else:
        eye = xp.eye(r, dtype=fc.dtype)
    clipped = xp.clip(fc, -0.999999, 0.999999)
    return xp.arctanh(clipped) * (1 - eye)


def dynamic_fc_cohort(
    timeseries: list[np.ndarray],
    window: int,
    stride: int = 1,
    *,
    n_timepoints: int | None = None,
    backend: Backend = "torch",
    device: str | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Dynamic FC of many subjects, cropped to a common length, as one float32 array.

    Subjects are cropped to their first ``n_timepoints`` time points (default: the
    shortest scan); a scan shorter than that raises :class:`DataError`.

    Returns:
        ``(N, W, R, R)`` float32 numpy array.
    """
    if not timeseries:
        raise DataError("no subjects to compute dynamic FC for", reason="empty")
    t = n_timepoints or min(ts.shape[0] for ts in timeseries)
    short = [i for i, ts in enumerate(timeseries) if ts.shape[0] < t]
    if short:
        raise DataError(
            f"{len(short)} scan(s) shorter than the {t} time points required (first index {short[0]})",
            reason="too_short",
        )
    out = []
    for start in range(0, len(timeseries), batch_size):
        batch = np.stack([ts[:t] for ts in timeseries[start : start + batch_size]]).astype(np.float32)
        fc = sliding_window_fc(batch, window, stride, backend=backend, device=device)
        out.append(fc.cpu().numpy() if hasattr(fc, "cpu") else np.asarray(fc))
    return np.concatenate(out, axis=0)
