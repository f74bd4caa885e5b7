"""Dynamic FC of scans with different lengths (and TRs): padded batches with a window mask.

Subjects ``b = 1..B`` have time series ``x_b`` of shape ``(T_b, R)``. They are padded
with zeros to ``(B, T_max, R)``; for window length ``L_b`` and stride ``s_b`` (in TRs,
possibly different per subject when a window is given in seconds and the TRs differ)
subject ``b`` has ``W_b = (T_b - L_b) // s_b + 1`` windows, window ``w`` covering
``[w s_b, w s_b + L_b)``. The result is

    dfc   (B, W_max, R, R)   window correlations, zeros where ``mask`` is False
    mask  (B, W_max) bool    True for a real window (w < W_b), False for padding

Subjects sharing ``(L, s)`` are computed together in one batched ``unfold`` +
``matmul`` (:func:`graphbrain.connectome.dynamic.sliding_window_fc`) over the padded
tensor, on its device -- there is no Python loop over windows, only over the distinct
``(L, s)`` pairs of a batch (one per TR in the batch). Windows that reach into the
padding are computed and then masked, so every real window equals the window of the
unpadded scan exactly.

:func:`cover_crops` lists the crops (runs of at most ``W_max`` consecutive windows of a
subject's own window grid) that cover a whole scan, used for crop-averaged prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphbrain.connectome.dynamic import n_windows, sliding_window_fc
from graphbrain.errors import DataError


def pad_timeseries(
    timeseries: Sequence[np.ndarray], *, length: int | None = None, device: Any = None
) -> tuple[Any, Any]:
    """Stack ``(T_b, R)`` scans into a zero-padded ``(B, T, R)`` float32 tensor.

    ``length`` (default the longest scan) must be at least every ``T_b``. Returns the
    padded tensor and the lengths ``(B,)`` (int64).
    """
    import torch

    if len(timeseries) == 0:
        raise DataError("no scans to pad", reason="empty")
    lengths = [int(t.shape[0]) for t in timeseries]
    r = {int(t.shape[1]) for t in timeseries}
    if len(r) != 1:
        raise DataError(f"scans have different numbers of ROIs {sorted(r)}", reason="roi_mismatch")
    t_max = max(lengths) if length is None else int(length)
    if t_max < max(lengths):
        raise DataError(f"pad length {t_max} is shorter than the longest scan ({max(lengths)})", reason="too_long")
    out = np.zeros((len(timeseries), t_max, r.pop()), dtype=np.float32)
    for b, t in enumerate(timeseries):
        out[b, : t.shape[0]] = t
    x = torch.from_numpy(out)
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x, torch.as_tensor(lengths, dtype=torch.int64, device=x.device)


def ragged_window_fc(
    x: Any,
    lengths: Any,
    window: int | Sequence[int],
    stride: int | Sequence[int],
    *,
    n_windows_max: int | None = None,
    fisher_z: bool = False,
) -> tuple[Any, Any]:
    """Sliding-window correlation of a padded batch, with a key-padding mask.

    Args:
        x: ``(B, T, R)`` zero-padded time series (torch tensor, any device).
        lengths: ``(B,)`` real lengths ``T_b``.
        window, stride: one value for all subjects or one per subject (TRs).
        n_windows_max: width ``W`` of the output (default the largest ``W_b``); subjects
            with more windows raise :class:`DataError` (crop them first).
        fisher_z: ``arctanh`` of the correlations (diagonal 0).

    Returns:
        ``dfc`` ``(B, W, R, R)`` (zero on padded windows) and ``mask`` ``(B, W)`` bool.
    """
    import torch

    b, t, r = x.shape
    lens = np.asarray(torch.as_tensor(lengths).cpu(), dtype=np.int64).reshape(-1)
    win = np.broadcast_to(np.asarray(window, dtype=np.int64), (b,))
    st = np.broadcast_to(np.asarray(stride, dtype=np.int64), (b,))
    counts = np.array([n_windows(int(lens[i]), int(win[i]), int(st[i])) for i in range(b)], dtype=np.int64)
    if (counts == 0).any():
        i = int(np.flatnonzero(counts == 0)[0])
        raise DataError(
            f"scan {i} has {lens[i]} time points, fewer than the window length {win[i]}",
            reason="too_short",
        )
    w_max = int(counts.max()) if n_windows_max is None else int(n_windows_max)
    if counts.max() > w_max:
        raise DataError(f"a scan has {counts.max()} windows, more than the {w_max} allowed; crop it", reason="too_long")
    dfc = x.new_zeros((b, w_max, r, r))
    for lw, ls in sorted({(int(a), int(c)) for a, c in zip(win, st)}):
        rows = np.flatnonzero((win == lw) & (st == ls))
        # the padded length only needs to reach the last real window of this group
        t_need = int(((counts[rows] - 1) * ls + lw).max())
        idx = torch.as_tensor(rows, device=x.device)
        fc = sliding_window_fc(x.index_select(0, idx)[:, :t_need], lw, ls, backend="torch", dtype=x.dtype,
                               fisher_z=fisher_z)
        k = min(fc.shape[1], w_max)
        dfc[idx, :k] = fc[:, :k]
    mask = torch.arange(w_max, device=x.device).unsqueeze(0) < torch.as_tensor(counts, device=x.device).unsqueeze(1)
    dfc = dfc * mask[:, :, None, None].to(dfc.dtype)
    return dfc, mask


def cover_crops(n_windows_subject: int, n_windows_max: int, *, overlap: float = 0.5) -> list[tuple[int, int]]:
    """Window ranges ``[start, stop)`` covering ``0..W_b-1`` with at most ``W_max`` windows each.

    One range (the whole scan) when ``W_b <= W_max``; otherwise ranges of ``W_max``
    windows with step ``max(1, round(W_max (1 - overlap)))`` (half a crop by default), the
    last one ending at ``W_b`` so the scan's end is covered.
    """
    if n_windows_subject <= n_windows_max:
        return [(0, n_windows_subject)]
    step = max(1, int(round(n_windows_max * (1.0 - overlap))))
    starts = list(range(0, n_windows_subject - n_windows_max + 1, step))
    if starts[-1] != n_windows_subject - n_windows_max:
        starts.append(n_windows_subject - n_windows_max)
    return [(s, s + n_windows_max) for s in starts]
