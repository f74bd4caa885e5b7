"""Batched static-FC kernels: covariance (Ledoit-Wolf or empirical), correlation, partial
correlation, precision and the tangent embedding, for many subjects at once.

Same numbers as nilearn's :class:`~nilearn.connectome.ConnectivityMeasure` with the same
covariance estimator (checked to 1e-5 in ``tests/connectome/test_kernels.py``), without
a Python loop over subjects. For the subjects of one scan length ``T`` (subjects are
grouped by length; different lengths never share a matrix product), with ``X`` the
``(B, T, R)`` series:

    Xc = X - mean_t X                     (centring, float64)
    d  = std_t(Xc, ddof=1); d[d < eps] = 1
    G  = Xc^T Xc                          (ONE batched symmetric Gram per group)
    S  = G / T  (empirical covariance of X);  S_z = S / (d_i d_j)  (of the z-scored Z)

Ledoit-Wolf in closed form from ``S`` (sklearn's ``ledoit_wolf_shrinkage`` with the data
centred first, ``assume_centered=False`` as :class:`sklearn.covariance.LedoitWolf` fits
it, which is what nilearn calls)::

    mu     = tr(S) / R
    delta_ = ||S||_F^2,            beta_ = sum_t ||x_t||^4 / T        (x_t a centred row)
    beta   = (beta_ - delta_) / (R T),     delta = (delta_ - 2 mu tr(S) + R mu^2) / R
    s      = min(beta, delta) / delta      (0 when beta = 0)
    C      = (1 - s) S + s mu I

``beta_`` needs only the per-time-point squared row norms, so the only ``O(T R^2)`` work
is the Gram. nilearn computes ``correlation`` on z-scored series (``ddof=1``, std below
the float64 eps set to 1), so the Ledoit-Wolf statistics are taken on ``Z`` for that kind
and on ``X = Z D`` for the others (``S_X = D S_Z D``, ``||x_t||^2 = sum_i d_i^2 z_ti^2``).

* ``correlation``          C_ij / sqrt(C_ii C_jj), diagonal 1
* ``partial correlation``  -P_ij / sqrt(P_ii P_jj), diagonal 1,  P = C^-1
* ``precision``            P
* ``tangent``              logm(W C W),  W = M^-1/2, ``M`` the geometric mean of the
                           training covariances (:func:`geometric_mean`: nilearn's
                           gradient descent, batched ``eigh`` for every whitening and log)

Precision: for ``correlation`` the Gram is accumulated in float32 by default
(``gram_dtype="auto"``; about 1e-6 from nilearn on ABIDE, as floating point is scale
invariant no per-ROI scaling is needed); the kinds that invert the covariance
(partial correlation, precision; float32 gave 9e-5) or keep data units use float64.
The Ledoit-Wolf scalars are float64; the correlation scalings run in the Gram's dtype.

Back ends: ``"numpy"`` (CPU) and ``"torch"`` (CPU or CUDA tensors, same maths, one
batched Gram per scan length). The numpy back end takes the subjects of one scan length in
chunks of up to ``_CHUNK`` (output order kept): per subject one BLAS ``gemv`` for the column
sums (the only read of the series from memory; NaN/Inf are found from these sums) and one
subtraction that writes the centred series into a zero-padded chunk buffer (``R`` rounded
up to a multiple of 8: OpenBLAS's Gram is faster on 112 than on 111 columns); then one
batched Gram per chunk and every further ``O(T R)`` and ``O(R^2)`` step as one batched call
per chunk on cache-hot data, the last one writing the output. A ROI whose centred sum of
squares is within rounding of zero (a constant ROI whose mean is not exact in the Gram's
dtype) has its subject centred again in float64, as nilearn centres. Opt-in
(:func:`set_accel` ``("numba")`` or the environment variable
``GRAPHBRAIN_KERNELS_ACCEL=numba``; numba from the ``fast`` extra) the ``correlation``
kind runs two compiled loops instead of those numpy passes: one that copies each series
(uncentred) with its column sums, and one per chunk that centres the Gram by the rank-1
update ``G - T m m^T`` on the fly, takes the Ledoit-Wolf sums and writes the output (a
subject with a ROI whose mean exceeds its standard deviation, or a constant ROI, is centred
exactly in float64 first). Same numbers as the numpy path to about 2e-6 (ABIDE); see the comment
above ``_fused_copy`` for why. Constant ROIs: their off-diagonal
correlations come out as 0 with Ledoit-Wolf (as in nilearn) and as NaN with the empirical
estimator (nilearn's 0/0); :class:`~graphbrain.connectome.static.ConnectivityTransformer`
maps every NaN to 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from graphbrain.errors import ConfigError, DataError, MissingDependencyError

Backend = Literal["numpy", "torch"]
KERNEL_KINDS = ("correlation", "partial correlation", "covariance", "precision", "tangent")
_EPS64 = float(np.finfo(np.float64).eps)


# --- tiny array-namespace shim (numpy / torch) ------------------------------------------
class _Ops:
    def __init__(self, backend: str, device: str | None = None) -> None:
        if backend not in ("numpy", "torch"):
            raise ConfigError(f"unknown static-FC kernel backend {backend!r}; use 'numpy' or 'torch'")
        self.backend = backend
        if backend == "torch":
            import torch

            self.xp = torch
            self.device = torch.device(device or "cpu")
            if self.device.type == "cuda" and not torch.cuda.is_available():
                raise ConfigError("static-FC kernels asked for device 'cuda' but torch sees no CUDA device")
        else:
            self.xp = np
            self.device = None

    def asarray(self, x: Any, dtype: str = "float64") -> Any:
        if self.backend == "numpy":
            if type(x).__module__.startswith("torch"):
                x = x.detach().cpu().numpy()
            return np.asarray(x, dtype=dtype)
        torch = self.xp
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        return t.to(device=self.device, dtype=getattr(torch, dtype))

    def cast(self, x: Any, dtype: str) -> Any:
        return x.astype(dtype, copy=False) if self.backend == "numpy" else x.to(getattr(self.xp, dtype))

    def eye(self, r: int, like: Any) -> Any:
        if self.backend == "numpy":
            return np.eye(r, dtype=like.dtype)
        return self.xp.eye(r, dtype=like.dtype, device=like.device)

    @staticmethod
    def mT(x: Any) -> Any:  # noqa: N802 - matrix transpose
        return x.swapaxes(-1, -2)

    def diag(self, x: Any) -> Any:
        return x.diagonal(0, -2, -1)


# --- per-length statistics ---------------------------------------------------------------
def group_by_length(series: Sequence[Any]) -> dict[int, list[int]]:
    """Indices of the subjects of each scan length, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(series):
        groups.setdefault(int(x.shape[0]), []).append(i)
    return groups


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)  # (float16 too)


def _check_series(series: Sequence[Any] | Any) -> list[Any]:
    if hasattr(series, "ndim") and series.ndim == 3:
        series = list(series)
    if len(series) == 0:
        raise DataError("no time series given", reason="empty")
    r = None
    for i, x in enumerate(series):
        if x.ndim != 2:
            raise DataError(f"time series {i} must be (T, R), got shape {tuple(x.shape)}", reason="wrong_shape")
        if r is not None and x.shape[1] != r:
            raise DataError(f"time series {i} has {x.shape[1]} ROIs, expected {r}", reason="roi_mismatch")
        if x.shape[0] < 2:
            raise DataError(f"time series {i} has {x.shape[0]} time point(s); at least 2 are needed", reason="too_short")
        r = x.shape[1]
    return list(series)


def _group_gram(ops: _Ops, x: Any, gram_dtype: str) -> tuple[Any, Any, int]:
    """``(B, T, R)`` -> (Gram ``Xc^T Xc`` and centred series, both in ``gram_dtype``, T).

    The mean is taken in float64 (one batched reduction) and subtracted in the Gram's
    dtype; the Gram is one batched BLAS call (``syrk`` on numpy).
    Floating point is scale invariant, so no per-ROI scaling is needed for accuracy.
    """
    if ops.backend == "numpy":
        # x: list of (T, R) arrays of one length; centre each straight into the buffer.
        t = int(x[0].shape[0])
        xs = np.stack(x)
        m = xs.mean(1, dtype=np.float64)[:, None, :]  # one batched float64 reduction
        if xs.dtype == np.dtype(gram_dtype):
            xc = xs  # our own copy: centre in place, same-dtype (unbuffered) subtraction
            np.subtract(xc, m.astype(gram_dtype), out=xc)  # |mean| rounding: (eps |m| / std)^2
        else:
            xc = np.empty(xs.shape, dtype=gram_dtype)
            np.subtract(xs, m, out=xc, casting="unsafe")
        xt = xc.transpose(0, 2, 1)
        g = np.matmul(xt, xt.transpose(0, 2, 1))  # same buffer -> BLAS syrk
        return g, xc, t
    t = int(x.shape[-2])
    x64 = ops.cast(x, "float64")
    xc = ops.cast(x64 - x64.mean(-2, keepdim=True), gram_dtype)
    g = ops.mT(xc) @ xc
    return g, xc, t


def _shrinkage(ops: _Ops, s: Any, row_sq: Any, t: int) -> tuple[Any, Any]:
    """Ledoit-Wolf ``(shrinkage, mu)`` per subject from the empirical covariance ``s``
    ``(B, R, R)`` and the squared row norms ``row_sq`` ``(B, T)`` of the centred data
    (sklearn's closed form, batched)."""
    r = s.shape[-1]
    tr = ops.diag(s).sum(-1)  # (B,)
    mu = tr / r
    if ops.backend == "numpy":
        delta_ = np.einsum("bij,bij->b", s, s, dtype=np.float64)  # float64 sums, no temporary
    else:
        s64 = ops.cast(s, "float64")
        delta_ = (s64 * s64).sum((-2, -1))
    tr, mu = ops.cast(tr, "float64"), ops.cast(mu, "float64")
    rs = ops.cast(row_sq, "float64")
    beta_ = (rs * rs).sum(-1) / t
    beta = (beta_ - delta_) / (r * t)
    delta = (delta_ - 2.0 * mu * tr + r * mu * mu) / r
    beta = ops.xp.minimum(beta, delta)
    zero = beta == 0
    shrink = ops.xp.where(zero, 0.0 * beta, beta / ops.xp.where(zero, 1.0 + 0.0 * delta, delta))
    return shrink, mu


def _arange(ops: _Ops, r: int, like: Any) -> Any:
    return np.arange(r) if ops.backend == "numpy" else ops.xp.arange(r, device=like.device)


def _add_diag(ops: _Ops, m: Any, v: Any) -> Any:
    idx = _arange(ops, m.shape[-1], m)
    m[..., idx, idx] += v[:, None]
    return m


def _cov_to_corr(ops: _Ops, c: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / ops.diag(c) ** 0.5
        out = c * inv[..., :, None] * inv[..., None, :]
    idx = _arange(ops, c.shape[-1], c)
    out[..., idx, idx] = 1.0
    return out


def _inv(ops: _Ops, c: Any, what: str) -> Any:
    try:
        return ops.xp.linalg.inv(c)
    except (np.linalg.LinAlgError, RuntimeError) as err:
        raise DataError(
            f"a covariance matrix is singular, so its {what} is undefined (constant or duplicated ROIs "
            "with the empirical estimator?); use estimator='ledoit_wolf' or drop those ROIs",
            reason="singular",
        ) from err


def _row_sq(ops: _Ops, xc: Any, w: Any = None) -> Any:
    """``sum_i w_i xc_ti^2`` ``(B, T)`` (``w`` ``(B, R)`` or ``None`` for 1)."""
    sq = xc * xc
    if w is None:
        return sq.sum(-1)
    return (sq @ ops.cast(w, str(xc.dtype).replace("torch.", ""))[..., :, None])[..., 0]


def _group_fc(ops: _Ops, x: Any, kind: str, estimator: str, gram_dtype: str) -> Any:
    g, xc, t = _group_gram(ops, x, gram_dtype)
    if kind == "correlation":
        # nilearn z-scores first (ddof=1, std < eps -> 1): S_z = G / (T d_i d_j). Correlation
        # is scale free, so this stays in the Gram's dtype, scaled in place (two passes).
        d = (ops.cast(ops.diag(g), "float64") / (t - 1)) ** 0.5
        d = ops.xp.where(d < _EPS64, 1.0 + 0.0 * d, d)
        inv_d = 1.0 / d
        a = ops.cast(inv_d / t**0.5, gram_dtype)
        s = g
        s *= a[..., :, None]
        s *= a[..., None, :]
        if estimator == "empirical":
            return _cov_to_corr(ops, s)
        shrink, mu = _shrinkage(ops, s, _row_sq(ops, xc, inv_d * inv_d), t)
        # corr of (1 - s) S + s mu I: scale S by (1 - s) u_i u_j, u = 1/sqrt(diag), diag 1.
        diag = (1.0 - shrink)[:, None] * ops.cast(ops.diag(s), "float64") + (shrink * mu)[:, None]
        u = 1.0 / diag**0.5
        s *= ops.cast((1.0 - shrink)[:, None] * u, gram_dtype)[..., :, None]
        s *= ops.cast(u, gram_dtype)[..., None, :]
        idx = _arange(ops, s.shape[-1], s)
        s[..., idx, idx] = 1.0
        return s
    s = ops.cast(g, "float64") / t
    if estimator == "ledoit_wolf":
        shrink, mu = _shrinkage(ops, s, _row_sq(ops, xc), t)
        s *= (1.0 - shrink)[:, None, None]
        cov = _add_diag(ops, s, shrink * mu)
    else:
        cov = s
    if kind in ("covariance", "tangent"):
        return cov
    prec = _inv(ops, cov, kind)
    if kind == "precision":
        return prec
    return -_cov_to_corr(ops, prec) + 2.0 * ops.eye(prec.shape[-1], prec)


# --- numpy back end: same-length subjects in cache-sized chunks, one batched call per step ---
_CHUNK = 8  # subjects per chunk: their centred series (~90 kB each) stay in L2 between passes
_F32_MAX_T = 2400  # longest scan whose correlation Gram the "auto" gram_dtype takes in float32
_CHUNK_BYTES = 2 << 20  # ... and at most this many bytes of centred series (long scans, many ROIs)
# A ROI whose centred sum of squares is below this fraction of T m^2 may be constant up to the
# rounding of the centring in the Gram's dtype: that subject is centred again in float64
# (x - mean(x), as nilearn does), so constant ROIs come out exactly as in nilearn.
_NEAR_CONSTANT = {np.dtype(np.float32): 1e-10, np.dtype(np.float64): 1e-24}


_ONES: dict[tuple[int, str], np.ndarray] = {}


def _ones(t: int, dtype: np.dtype) -> np.ndarray:
    key = (t, np.dtype(dtype).str)
    v = _ONES.get(key)
    if v is None:
        v = _ONES[key] = np.ones(t, dtype=dtype)
        v.flags.writeable = False
    return v


class _NonFinite(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


def _padded(r: int) -> int:
    """Width of the centred-series buffer: ``R`` rounded up to a multiple of 8 with zero
    columns (their Gram rows are 0 and never read). OpenBLAS's float32 Gram of 196 x 112 is
    about 10% faster than that of 196 x 111 on the benchmark machine."""
    return r + (-r) % 8


def _length_chunks(xs: list[np.ndarray], size: int) -> Any:
    """``(T, indices)``: chunks of at most ``size`` subjects of one scan length, lengths in
    order of first appearance (subject order within a length)."""
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault(int(x.shape[0]), []).append(i)
    for t, idx in groups.items():
        step = size(t) if callable(size) else size
        for c in range(0, len(idx), step):
            yield t, idx[c : c + step]


def _first_non_finite(xs: list[np.ndarray], idx: list[int], s: np.ndarray) -> int:
    """The first subject (input order) with a NaN/Inf, else the first of the chunk whose column
    sums overflowed."""
    for i, x in enumerate(xs):
        if not np.isfinite(x).all():
            return i
    return idx[int(np.flatnonzero(~np.isfinite(s).all(1))[0])]


def _np_centre(xs: list[np.ndarray], idx: list[int], y: np.ndarray, r: int) -> np.ndarray:
    """Column means ``(k, R)`` (float64) of one chunk, and the centred series written into
    ``y[:, :, :R]`` (the Gram's dtype): per subject one BLAS ``gemv`` for the column sums (the
    only read of the series from memory) and one subtraction of the cache-hot series, in the
    Gram's precision or better (float64 input, or a float64 Gram: subtracted in float64).
    The mean's rounding shifts every centred column by a constant ``delta``, which moves the
    Gram by ``T delta delta^T`` only (second order)."""
    k, t = len(idx), y.shape[1]
    s = np.empty((k, r), dtype=np.float64)
    for j, i in enumerate(idx):
        x = xs[i]
        s[j] = _ones(t, x.dtype) @ x
    if not np.isfinite(s).all():  # a NaN/Inf anywhere in a series makes its column sum non-finite
        raise _NonFinite(_first_non_finite(xs, idx, s))
    m = s / t
    m32 = m.astype(np.float32) if y.dtype == np.float32 else None
    for j, i in enumerate(idx):
        x = xs[i]
        mj = m32[j] if m32 is not None and x.dtype == np.float32 else m[j]
        np.subtract(x, mj, out=y[j, :, :r], casting="same_kind")
    return m


def _lw_scalar(tr: np.ndarray, delta_: np.ndarray, beta_: np.ndarray, r: int, t: float) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's closed form per subject (``tr(S)``, ``||S||_F^2``, ``beta_``): the few
    scalars of a chunk in plain Python, cheaper than a dozen numpy calls on ``(k,)`` arrays.
    One ROI: shrinkage 0, as sklearn's ``ledoit_wolf`` returns (also for ``delta = 0``, a
    covariance already proportional to the identity)."""
    shrink, mus = [], []
    for tr_j, dl_j, bt_j in zip(tr.tolist(), delta_.tolist(), beta_.tolist(), strict=True):
        mu = tr_j / r
        beta = (bt_j - dl_j) / (r * t)
        delta = (dl_j - 2.0 * mu * tr_j + r * mu * mu) / r
        beta = min(beta, delta)
        shrink.append(0.0 if beta == 0 or delta == 0 or r == 1 else beta / delta)
        mus.append(mu)
    return np.array(shrink), np.array(mus)


def _np_corr_finish(gv: np.ndarray, dg: np.ndarray, y: np.ndarray, sq: np.ndarray, t: float, estimator: str,
                    o: np.ndarray) -> bool:
    """Correlation of one chunk into ``o`` from the centred Grams ``gv`` ``(k, R, R)``, their
    diagonal ``dg`` (float64) and the centred series ``y``; False where an entry is undefined.

    nilearn z-scores first (ddof=1, std < eps -> 1): ``S_z = a_i G_ij a_j`` with
    ``a^2 = w / T``, ``w = 1 / d^2 = (T - 1) / G_ii``. Ledoit-Wolf needs ``||S_z||_F^2 =
    sum_ij G_ij^2 a_i^2 a_j^2`` (squares, then a batched ``gemv``), ``beta_`` from
    ``q_t = sum_i w_i y_ti^2`` (squares of the cache-hot series, batched ``gemv``) and the
    trace; the result ``(1 - s) u_i S_ij u_j`` is ``e_i G_ij e_j`` with
    ``e^2 = a^2 (1 - s) / ((1 - s) S_ii + s mu)``: two scaling passes straight into the output.
    """
    k, r = gv.shape[0], gv.shape[-1]
    if estimator == "empirical":
        e = 1.0 / np.sqrt(dg)  # a constant ROI (G_ii = 0): 0 * inf = NaN, as nilearn
    else:
        d2 = dg * (1.0 / (t - 1))
        d2[d2 < _EPS64 * _EPS64] = 1.0
        a2 = 1.0 / (d2 * t)
        a2o = a2.astype(o.dtype)
        np.square(gv, out=o)  # o as scratch: it is written next anyway
        delta_ = np.einsum("bi,bi->b", np.matmul(o, a2o[:, :, None])[..., 0], a2o).astype(np.float64)
        np.square(y, out=sq)
        q = np.matmul(sq[:, :, :r], (a2 * t).astype(sq.dtype)[:, :, None])[..., 0]
        beta_ = np.einsum("bt,bt->b", q, q).astype(np.float64) / t
        sd = a2 * dg  # diag(S_z)
        shrink, mu = _lw_scalar(sd.sum(1), delta_, beta_, r, t)
        keep = (1.0 - shrink)[:, None]
        e = np.sqrt(a2 * keep / (keep * sd + (shrink * mu)[:, None]))
    e = e.astype(np.result_type(gv.dtype, o.dtype), copy=False)
    np.multiply(gv, e[:, :, None], out=o, casting="same_kind")
    o *= e[:, None, :]
    o.reshape(k, -1)[:, :: r + 1] = 1.0
    return bool(np.isfinite(e).all())


def _np_cov_finish(gv: np.ndarray, y: np.ndarray, sq: np.ndarray, t: float, kind: str, estimator: str,
                   o: np.ndarray) -> bool:
    """Covariance, precision or partial correlation of one chunk into ``o`` (float64 maths)."""
    k, r = gv.shape[0], gv.shape[-1]
    s = gv.astype(np.float64)
    s /= t
    flat_diag = s.reshape(k, -1)[:, :: r + 1]
    if estimator == "ledoit_wolf":
        delta_ = np.einsum("bij,bij->b", s, s)
        np.square(y, out=sq)
        q = sq.sum(2, dtype=np.float64)
        beta_ = np.einsum("bt,bt->b", q, q) / t
        shrink, mu = _lw_scalar(flat_diag.sum(1), delta_, beta_, r, t)
        s *= (1.0 - shrink)[:, None, None]
        flat_diag += (shrink * mu)[:, None]
    if kind in ("covariance", "tangent"):
        o[...] = s
        return True
    p = _inv(_Ops("numpy"), s, kind)
    if kind == "precision":
        o[...] = p
        return True
    u = 1.0 / np.sqrt(p.diagonal(0, 1, 2))
    np.multiply(p, -u[:, :, None], out=o, casting="same_kind")
    o *= u[:, None, :].astype(o.dtype)
    o.reshape(k, -1)[:, :: r + 1] = 1.0
    return bool(np.isfinite(u).all())


# --- optional fused loops (numba) ---------------------------------------------------------
# Why a compiled path: on one CPU thread the Gram (OpenBLAS) alone costs about 1/20 of
# nilearn's time, so 20x needs everything else nearly free. numpy cannot give that here:
# each of the ~10 batched passes that centre the series, take the Ledoit-Wolf sums and scale
# the output costs 5-10 us per subject (short rows, one memory pass each; measured in
# benchmarks/RESULTS.md), together about as much as the Gram (numpy path: ~12x nilearn on
# ABIDE, numba path: ~20x, same run). The loops below do the same maths in one pass over
# each series before the Gram and, per subject, one over the series and two over its Gram
# after it. numba is an optional extra (``pip install numba``); without it the numpy
# functions above give the same numbers. The tests also run these functions as plain
# Python, so they are checked where numba is absent.


def _fused_copy(x: np.ndarray, y: np.ndarray, s: np.ndarray, centre: bool) -> bool:
    """One pass: ``y[:, :R] = x`` (in ``y``'s dtype), ``y[:, R:] = 0`` and the column means
    into ``s`` (float64 sums); with ``centre`` a second pass writes ``y[:, :R] = x - mean``
    (rounded once to ``y``'s dtype). False when a mean is not finite. The correlation loop
    below takes the uncentred copy and centres the Gram and the series on the fly
    (``G - T m m^T``, ``y - m``)."""
    t, r = x.shape
    p = y.shape[1]
    for i in range(r):
        s[i] = 0.0
    for a in range(t):
        for i in range(r):
            v = x[a, i]
            s[i] += v
            y[a, i] = v
        for i in range(r, p):
            y[a, i] = 0.0
    ok = True
    for i in range(r):
        s[i] /= t
        if not math.isfinite(s[i]):
            ok = False
    if centre:
        for a in range(t):
            for i in range(r):
                y[a, i] = x[a, i] - s[i]
    return ok


def _fused_corr_finish(g: np.ndarray, y: np.ndarray, m: np.ndarray, r: int, t: float, lw: bool, far: float,
                       redo: np.ndarray, o: np.ndarray) -> int:
    """``_np_corr_finish`` for a chunk of uncentred Grams ``g`` and series ``y`` with column
    means ``m`` (0 for a series centred already), one loop nest per subject: the centred
    Gram ``G - T m m^T`` and series ``y - m`` on the fly, the z-score scales ``a^2`` from its
    diagonal, ``||S_z||_F^2`` and ``beta_`` (inner sums over ROIs in the Gram's dtype, outer
    sums in float64), sklearn's shrinkage, then ``o = e_i (G - T m m^T)_ij e_j`` with
    diagonal 1. The rank-1 centring is exact to rounding when ``far T m_i^2 <= G_ii`` for
    every ROI (mean small against the RMS: band-passed BOLD); a subject where it is not (raw
    units, a constant ROI) is skipped and flagged in ``redo``. Returns 1 when every entry is
    defined (no NaN/Inf), plus 2 when a subject was flagged."""
    k = g.shape[0]
    ok = True
    flagged = False
    a2 = np.empty(r, dtype=g.dtype)
    c = np.empty(r, dtype=g.dtype)
    mm = np.empty(r, dtype=y.dtype)
    e = np.empty(r, dtype=g.dtype)
    dc = np.empty(r)
    eps2 = _EPS64 * _EPS64
    for j in range(k):
        redo[j] = False
        for i in range(r):
            gi = float(g[j, i, i])
            if far * t * m[j, i] * m[j, i] > gi:
                redo[j] = True
            c[i] = math.sqrt(t) * m[j, i]
            mm[i] = m[j, i]
            dc[i] = gi - t * m[j, i] * m[j, i]  # centred diagonal
        if redo[j]:
            flagged = True
            continue
        tr = 0.0
        if lw:
            for i in range(r):
                d2 = dc[i] / (t - 1.0)
                if d2 < eps2:
                    d2 = 1.0
                a2[i] = 1.0 / (d2 * t)
                tr += float(a2[i]) * dc[i]
            delta_ = 0.0
            for i in range(r):
                acc = g.dtype.type(0.0)
                ci = c[i]
                for q in range(r):
                    v = g[j, i, q] - ci * c[q]
                    acc += v * v * a2[q]
                delta_ += float(acc) * float(a2[i])
            beta_ = 0.0
            for a in range(y.shape[1]):
                qa = y.dtype.type(0.0)
                for i in range(r):
                    v = y[j, a, i] - mm[i]
                    qa += a2[i] * v * v
                qt = float(qa) * t
                beta_ += qt * qt
            beta_ /= t
            mu = tr / r
            beta = (beta_ - delta_) / (r * t)
            delta = (delta_ - 2.0 * mu * tr + r * mu * mu) / r
            beta = min(beta, delta)
            shrink = 0.0 if beta == 0.0 or delta == 0.0 or r == 1 else beta / delta
            keep = 1.0 - shrink
            for i in range(r):
                ai = float(a2[i])
                den = keep * ai * dc[i] + shrink * mu
                e[i] = math.sqrt(ai * keep / den) if den > 0.0 else math.inf
        else:  # a constant ROI (centred G_ii = 0): inf, and 0 * inf = NaN off the diagonal, as nilearn
            for i in range(r):
                e[i] = 1.0 / math.sqrt(dc[i]) if dc[i] > 0.0 else math.inf
        for i in range(r):
            if not math.isfinite(e[i]):
                ok = False
        for i in range(r):
            ei = e[i]
            ci = c[i]
            for q in range(r):
                o[j, i, q] = (g[j, i, q] - ci * c[q]) * ei * e[q]
            o[j, i, i] = 1.0
    return (1 if ok else 0) + (2 if flagged else 0)


# "numpy" (the default): numpy passes only. "numba": the compiled loops (numba required).
# "auto": the loops when numba imports. Why not on by default: a process pays about 0.5 s to
# import numba and 2-4 s to compile the loops the first time (about 0.4 s to load them from
# numba's on-disk cache afterwards), while the loops save about 25 ms per pass over the 323
# ABIDE subjects (benchmarks/RESULTS.md): they pay in long-lived processes that compute many
# cohorts' connectomes (services, notebooks, repeated resampling), not in one `graphbrain run`.
ACCEL_MODES = ("numpy", "numba", "auto")
_ACCEL: str = os.environ.get("GRAPHBRAIN_KERNELS_ACCEL", "numpy")
_FUSED: tuple[Any, Any] | None = None


def set_accel(mode: str) -> None:
    """Choose the CPU path of the ``correlation`` kind: ``"numpy"`` (default), ``"numba"``
    (compiled fused loops, same numbers to about 2e-6; needs ``pip install 'graphbrain[fast]'``)
    or ``"auto"`` (numba when it imports). Also ``GRAPHBRAIN_KERNELS_ACCEL``."""
    global _ACCEL
    if mode not in ACCEL_MODES:
        raise ConfigError(f"unknown kernels accel {mode!r}; use one of {ACCEL_MODES}")
    _ACCEL = mode
    if mode != "numpy":
        _fused()  # numba missing -> the error now, not at the first connectome
# uncentred Gram + rank-1 centring when every ROI has mean^2 <= RMS^2 / _FAR, i.e. |mean| <= std
# for 2: the cancellation in G - T m m^T then costs at most a factor 2 (about 1e-7 in float32).
# (16, i.e. |mean| <= 0.26 std, sent about 5% of short white-noise scans to the slow path.)
_FAR = 2.0


def _fused() -> tuple[Any, Any, Any] | None:
    """The jitted ``(_fused_copy, _fused_corr_finish)``, or None (numba absent
    or off)."""
    global _FUSED
    if _ACCEL not in ("numba", "auto"):
        if _ACCEL != "numpy":
            raise ConfigError(f"GRAPHBRAIN_KERNELS_ACCEL={_ACCEL!r} is not one of {ACCEL_MODES}")
        return None
    if _FUSED is None:
        try:
            import numba
        except ImportError:
            _FUSED = (None, None)
        else:
            # error_model numpy: 1/0 -> inf as in numpy; reassoc/contract only, so NaN/Inf keep
            # their meaning and the float64 sums vectorise. cache: compiled once per machine
            # (numba's cache directory; NUMBA_CACHE_DIR moves it)
            jit = numba.njit(nogil=True, error_model="numpy", fastmath={"reassoc", "contract"}, cache=True)
            _FUSED = (jit(_fused_copy), jit(_fused_corr_finish))
    if _FUSED[0] is None:
        if _ACCEL == "numba":
            raise MissingDependencyError("numba", "fast", "the compiled static-FC loops (kernels accel 'numba')")
        return None
    return _FUSED


def _recentre(x: np.ndarray, y: np.ndarray, g: np.ndarray, r: int) -> None:
    """Centre one subject in float64 into ``y`` and redo its Gram. Twice, as nilearn centres
    (z-scoring) and then scikit-learn's estimator centres again: a constant ROI whose mean
    is not exact in float64 is then exactly 0, as there."""
    xc = np.asarray(x, dtype=np.float64)
    xc = xc - xc.mean(0)
    xc -= xc.mean(0)
    y[:, :r] = xc
    np.matmul(y.T, y, out=g)


def _np_connectivity(xs: list[np.ndarray], kind: str, estimator: str, gdt: np.dtype, out_dtype: str,
                     finite: bool) -> np.ndarray:
    """Subjects of one scan length in chunks of ``_CHUNK``: each series read from memory once
    (column sums), centred into a zero-padded buffer, one batched Gram per chunk, and the
    ``O(T R)`` and ``O(R^2)`` finishing passes on the cache-hot chunk, written straight into
    the output (through a scratch chunk when the chunk's subjects are not consecutive)."""
    n, r = len(xs), int(xs[0].shape[1])
    p = _padded(r)
    out = np.empty((n, r, r), dtype=out_dtype)
    item = np.dtype(gdt).itemsize
    chunk = lambda t: max(1, min(_CHUNK, _CHUNK_BYTES // (t * p * item)))  # noqa: E731
    gram = np.empty((_CHUNK, p, p), dtype=gdt)
    size = max(chunk(t) * t for t in {int(x.shape[0]) for x in xs}) * p
    fused = _fused()
    ybuf = np.empty(size, dtype=gdt)  # reused by every length
    sqbuf = np.empty(size if fused is None or kind != "correlation" else 0, dtype=gdt)
    redo = np.zeros(_CHUNK + 1, dtype=np.bool_)  # subjects to centre again (fused path)
    mbuf = np.empty((_CHUNK, r))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, idx in _length_chunks(xs, chunk):
            k = len(idx)
            y = ybuf[: k * t * p].reshape(k, t, p)
            sq = sqbuf[: k * t * p].reshape(k, t, p) if sqbuf.size else None  # numpy finishing only
            if fused is None:
                if p > r:
                    y[:, :, r:] = 0.0  # (the fused centring writes these zeros itself)
                m = _np_centre(xs, idx, y, r)
            else:
                m = mbuf[:k]  # every entry written by the loop
                centre = kind != "correlation"  # the correlation loop centres on the fly
                for j, i in enumerate(idx):
                    if not fused[0](xs[i], y[j], m[j], centre):
                        raise _NonFinite(_first_non_finite(xs, idx, m))
            g = gram[:k]
            np.matmul(y.transpose(0, 2, 1), y, out=g)
            # finite float32 input whose squares overflow float32 (|x| sqrt(T) above ~1e19):
            # those subjects are computed again with a float64 Gram below (a check on k x R
            # diagonal entries; Cauchy-Schwarz bounds the rest of the Gram by its diagonal)
            over = np.flatnonzero(~np.isfinite(g.diagonal(0, 1, 2)).all(1)) if gdt == np.float32 else ()
            gv = g[:, :r, :r]
            i0 = idx[0]
            direct = idx[-1] - i0 == k - 1
            o = out[i0 : i0 + k] if direct else np.empty((k, r, r), dtype=out_dtype)
            if kind == "correlation" and fused is not None:
                lw = estimator == "ledoit_wolf"
                status = fused[1](g, y, m, r, float(t), lw, _FAR, redo, o)
                ok = bool(status & 1)
                for j in np.flatnonzero(redo[:k]) if status & 2 else ():
                    _recentre(xs[idx[j]], y[j], g[j], r)
                    m[j] = 0.0
                    one = slice(j, j + 1)
                    ok &= bool(fused[1](g[one], y[one], m[one], r, float(t), lw, 0.0, redo[_CHUNK:], o[one]) & 1)
            else:
                dg = gv.diagonal(0, 1, 2).astype(np.float64)
                # (0 < G_ii: an exactly constant centred column, e.g. an all-zero ROI, is exact already)
                for j in np.flatnonzero(((dg <= _NEAR_CONSTANT[gdt] * t * (m * m)) & (dg > 0)).any(1)):
                    _recentre(xs[idx[j]], y[j], g[j], r)
                    dg[j] = gv[j].diagonal()
                if kind == "correlation":
                    ok = _np_corr_finish(gv, dg, y, sq, float(t), estimator, o)
                else:
                    ok = _np_cov_finish(gv, y, sq, float(t), kind, estimator, o)
            for j in over:
                # (float64 out as well: the finishing scales in the output buffer, where the
                # unscaled float64 Gram would overflow a float32 one)
                o[j] = _np_connectivity([xs[idx[j]]], kind, estimator, np.dtype(np.float64), "float64", False)[0]
                ok = ok and bool(np.isfinite(o[j]).all())
            # NaN/Inf only come from a zero or negative diagonal (checked above); finite input
            if finite and not ok:
                np.nan_to_num(o, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            if not direct:
                out[idx] = o
    return out


def _check_args(kind: str, estimator: str, gram_dtype: str) -> str:
    k = kind.replace("_", " ")
    if k not in KERNEL_KINDS:
        raise ConfigError(f"unknown connectivity kind {kind!r}; use one of {KERNEL_KINDS}")
    if estimator not in ("ledoit_wolf", "empirical"):
        raise ConfigError(f"unknown covariance estimator {estimator!r}; use 'ledoit_wolf' or 'empirical'")
    if gram_dtype not in ("auto", "float32", "float64"):
        raise ConfigError(f"gram_dtype must be 'auto', 'float32' or 'float64', got {gram_dtype!r}")
    return k


def connectivity(
    series: Sequence[Any] | Any,
    kind: str = "correlation",
    estimator: str = "ledoit_wolf",
    *,
    backend: Backend = "numpy",
    device: str | None = None,
    gram_dtype: str = "auto",
    whitening: Any = None,
    out_dtype: str = "float64",
    finite: bool = False,
) -> Any:
    """Static connectomes of many subjects, ``(N, R, R)`` float64.

    Args:
        series: ``(T_i, R)`` arrays/tensors (lengths may differ) or one ``(N, T, R)`` array.
        kind: ``correlation``, ``partial correlation``, ``covariance``, ``precision`` or
            ``tangent`` (``tangent`` needs ``whitening`` from :func:`tangent_reference`;
            without it the covariances are returned).
        estimator: ``ledoit_wolf`` (nilearn's default) or ``empirical``.
        backend: ``numpy`` or ``torch`` (``device`` ``cpu``/``cuda``).
        gram_dtype: accumulation type of the Gram ``Xc^T Xc``: ``auto`` (float32 for
            ``correlation`` on scans of up to 2,400 time points, whose error stays near 1e-6;
            float64 for longer scans, where float32 sums approach 1e-5, and for the kinds that
            invert the covariance or keep data units), ``float32`` or ``float64``.
        whitening: ``M^-1/2`` for the tangent kind.
        out_dtype: ``float64`` (default) or ``float32`` (saves a pass and half the memory
            when the consumer stores float32, as ``ConnectivityTransformer`` does).
        finite: replace undefined entries (NaN/Inf: constant ROIs with the empirical
            estimator) by 0, as ``ConnectivityTransformer`` does (numpy back end: checked per
            chunk of subjects while it is in cache, so no extra pass over the output).

    Raises:
        DataError: a series contains NaN/Inf (numpy back end; found from the column sums
            the kernel takes anyway, so no extra pass over the input).

    Returns:
        numpy array for the numpy back end, a torch tensor (on ``device``) for torch.
    """
    k = _check_args(kind, estimator, gram_dtype)
    xs = _check_series(series)
    if gram_dtype == "auto":
        # float32 sums over T time points: about 1e-6 from nilearn at fMRI lengths, but 1e-5
        # is reached near T = 4,700 (measured), so long (e.g. concatenated) scans get float64
        short = max(int(x.shape[0]) for x in xs) <= _F32_MAX_T
        gram_dtype = "float32" if k == "correlation" and short else "float64"
    ops = _Ops(backend, device)
    n, r = len(xs), int(xs[0].shape[1])
    if ops.backend == "numpy":
        arrs = [_as_numpy(x) for x in xs]
        try:
            out = _np_connectivity(arrs, k, estimator, np.dtype(gram_dtype), out_dtype, finite)
        except _NonFinite as err:
            raise DataError(f"time series {err.index} contains NaN/Inf", reason="non_finite") from None
        if k == "tangent" and whitening is not None:
            out = tangent_embed(out, whitening, backend=backend, device=device)
        return out
    out = None
    for _t, idx in group_by_length(xs).items():
        if ops.backend == "numpy":
            x = [_as_numpy(xs[i]) for i in idx]
        else:
            x = ops.xp.stack([ops.asarray(xs[i]) for i in idx])
        fc = _group_fc(ops, x, k, estimator, gram_dtype)
        if out is None:
            out = np.empty((n, r, r), dtype=out_dtype) if ops.backend == "numpy" else ops.xp.empty(
                (n, r, r), dtype=getattr(ops.xp, out_dtype), device=fc.device)
        if ops.backend == "numpy":
            out[idx] = fc
        else:
            out[ops.xp.as_tensor(idx, device=fc.device)] = fc.to(out.dtype)
    if k == "tangent" and whitening is not None:
        out = tangent_embed(out, whitening, backend=backend, device=device)
    return out


# --- tangent space -----------------------------------------------------------------------
def _map_eig(ops: _Ops, fn: Any, m: Any) -> Any:
    """``V fn(w) V^T`` for symmetric ``m`` (batched ``eigh``)."""
    w, v = ops.xp.linalg.eigh(m)
    return (v * fn(w)[..., None, :]) @ ops.mT(v)


def _log(ops: _Ops, w: Any) -> Any:
    if bool((w <= 0).any()):
        raise DataError(
            "a covariance matrix is not positive definite, so its matrix logarithm is undefined "
            "(tangent kind); use estimator='ledoit_wolf'",
            reason="not_spd",
        )
    return ops.xp.log(w)


def geometric_mean(
    covs: Any, *, max_iter: int = 30, tol: float = 1e-7, backend: Backend = "numpy", device: str | None = None
) -> Any:
    """Geometric (Riemannian) mean of SPD matrices ``(N, R, R)``, as nilearn computes it.

    nilearn's gradient descent (Fletcher 2007, Algorithm 3) with its initialisation (the
    arithmetic mean), step halving, ``max_iter`` and stopping rule; every iteration whitens
    and takes the logarithm of all ``N`` matrices in one batched ``eigh``.
    """
    ops = _Ops(backend, device)
    c = ops.asarray(covs)
    gmean = c.mean(0)
    r = int(c.shape[-1])
    norm_old, step, norm = np.inf, 1.0, np.inf
    xp = ops.xp
    for _ in range(max_iter):
        vals, vecs = xp.linalg.eigh(gmean)
        if bool((vals <= 0).any()):
            raise DataError("the geometric-mean iterate lost positive definiteness", reason="not_spd")
        inv_sqrt = (vecs * (1.0 / vals**0.5)[None, :]) @ vecs.T
        whitened = inv_sqrt @ c @ inv_sqrt
        logs = _map_eig(ops, lambda w: _log(ops, w), whitened)
        logs_mean = logs.mean(0)
        norm = float(xp.linalg.norm(logs_mean))
        if not np.isfinite(norm):
            raise DataError("NaN after the matrix logarithm in the geometric mean", reason="not_spd")
        vals_log, vecs_log = xp.linalg.eigh(logs_mean)
        sqrt_g = (vecs * (vals**0.5)[None, :]) @ vecs.T
        gmean = sqrt_g @ ((vecs_log * xp.exp(vals_log * step)[None, :]) @ vecs_log.T) @ sqrt_g
        if norm < norm_old:
            norm_old = norm
        elif norm > norm_old:
            step = step / 2.0
            norm = norm_old
        if tol is not None and norm / (r * r) < tol:
            break
    return gmean


def tangent_reference(covs: Any, *, backend: Backend = "numpy", device: str | None = None) -> tuple[Any, Any]:
    """``(M, M^-1/2)``: nilearn's tangent reference point and whitening from training covs."""
    ops = _Ops(backend, device)
    mean = geometric_mean(covs, backend=backend, device=device)
    whitening = _map_eig(ops, lambda w: 1.0 / w**0.5, mean)
    return mean, whitening


def tangent_embed(covs: Any, whitening: Any, *, backend: Backend = "numpy", device: str | None = None) -> Any:
    """``logm(W C W)`` for every covariance ``C`` ``(N, R, R)`` (one batched ``eigh``)."""
    ops = _Ops(backend, device)
    c = ops.asarray(covs)
    w = ops.asarray(whitening)
    return _map_eig(ops, lambda e: _log(ops, e), w @ c @ w)
