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
Everything after the Gram is float64.

Back ends: ``"numpy"`` (CPU) and ``"torch"`` (CPU or CUDA tensors, same maths, one
batched Gram per scan length). The numpy back end streams subjects in chunks of
``_CHUNK`` so that each series is read from memory once: per subject one BLAS ``syrk``
``G = X^T X`` on the series as given and one ``gemv`` for the column sums, then the
Ledoit-Wolf row norms while the series is still in cache; the Gram is centred by the
rank-1 update ``G - T m m^T`` when every ROI's mean is small against its RMS
(``m_i^2 <= RMS_i^2 / 16``, true of band-passed BOLD), otherwise (raw BOLD units, a
constant ROI) that subject is centred first in float64 and its Gram recomputed. The
``O(R^2)`` finishing steps run per chunk, in cache, and write the output once. Constant ROIs: their off-diagonal
correlations come out as 0 with Ledoit-Wolf (as in nilearn) and as NaN with the empirical
estimator (nilearn's 0/0); :class:`~graphbrain.connectome.static.ConnectivityTransformer`
maps every NaN to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from graphbrain.errors import ConfigError, DataError

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
    return x if x.dtype.kind == "f" else x.astype(np.float64)


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


# --- numpy back end: subjects streamed in chunks, every O(T R) pass on cache-hot data ------
_CHUNK = 8  # subjects per chunk: their series (~100 kB each) and Grams stay in L2/L3
_OFFSET_R2 = 1.0 / 16.0  # largest (mean / RMS)^2 of a ROI for the uncentred Gram


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


def _np_chunk_stats(sub: list[np.ndarray], gdt: np.dtype, c0: int) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """Centred Grams ``(k, R, R)`` (``gdt``), column means ``(k, R)`` (float64), the series in
    ``gdt`` and their lengths ``(k,)`` for one chunk of subjects.

    The Gram is taken on the series as given (``G = X^T X``, one BLAS call per subject,
    ``syrk``) and centred by the rank-1 update ``G - T m m^T``; that is exact to rounding
    when every ROI's mean is small against its RMS (``m_i^2 <= RMS_i^2 / 16``: the
    cancellation then costs at most a factor 1.07). A subject with a larger offset (raw
    BOLD units, a constant ROI) is centred first in float64 and its Gram recomputed.
    """
    k, r = len(sub), sub[0].shape[1]
    g = np.empty((k, r, r), dtype=gdt)
    s = np.empty((k, r), dtype=gdt)
    xs = []
    for j, x in enumerate(sub):
        if x.dtype != gdt:
            x = x.astype(gdt)
        np.matmul(x.T, x, out=g[j])  # same buffer -> BLAS syrk
        np.matmul(_ones(x.shape[0], gdt), x, out=s[j])  # column sums: BLAS gemv, x still in cache
        xs.append(x)
    t = np.array([x.shape[0] for x in sub], dtype=np.float64)
    s = s.astype(np.float64)
    if not np.isfinite(s).all():  # a NaN/Inf anywhere in a series makes its column sum non-finite
        for j, x in enumerate(sub):
            if not np.isfinite(s[j]).all() or not np.isfinite(x).all():
                raise _NonFinite(c0 + j)
    m = s / t[:, None]
    dg = g.diagonal(0, 1, 2).astype(np.float64)  # T (var + m^2) per ROI
    far = (m * m * t[:, None] > _OFFSET_R2 * dg).any(1)
    for j in np.flatnonzero(far):
        x64 = np.asarray(sub[j], dtype=np.float64)
        xc = (x64 - x64.mean(0)).astype(gdt, copy=False)
        np.matmul(xc.T, xc, out=g[j])
        xs[j] = xc
        m[j] = 0.0
    c = (m * np.sqrt(t)[:, None]).astype(gdt)  # 0 for the subjects centred above
    g -= c[:, :, None] * c[:, None, :]
    return g, m, xs, t


def _np_beta(xs: list[np.ndarray], m: np.ndarray, w: np.ndarray | None, t: np.ndarray) -> np.ndarray:
    """``sum_t ||(x_t - m) * sqrt(w)||^4 / T`` per subject (Ledoit-Wolf's ``beta_``), float64."""
    out = np.empty(len(xs), dtype=np.float64)
    for j, x in enumerate(xs):
        y = x - m[j].astype(x.dtype)
        np.square(y, out=y)
        q = y.sum(1) if w is None else y @ w[j].astype(x.dtype)
        out[j] = float(np.dot(q.astype(np.float64, copy=False), q)) / t[j]
    return out


def _lw_shrink(s_tr: np.ndarray, delta_: np.ndarray, beta_: np.ndarray, r: int, t: np.ndarray) -> tuple:
    """sklearn's closed form from ``tr(S)``, ``||S||_F^2`` and ``beta_`` (all ``(k,)`` float64)."""
    mu = s_tr / r
    beta = (beta_ - delta_) / (r * t)
    delta = (delta_ - 2.0 * mu * s_tr + r * mu * mu) / r
    beta = np.minimum(beta, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(beta == 0, 0.0, beta / np.where(beta == 0, 1.0, delta))
    return shrink, mu


def _np_connectivity(xs: list[np.ndarray], kind: str, estimator: str, gdt: np.dtype, out_dtype: str,
                     finite: bool) -> np.ndarray:
    n, r = len(xs), int(xs[0].shape[1])
    out = np.empty((n, r, r), dtype=out_dtype)
    diag_idx = np.arange(r)
    for c0 in range(0, n, _CHUNK):
        sub = xs[c0 : c0 + _CHUNK]
        g, m, cx, t = _np_chunk_stats(sub, gdt, c0)
        o = out[c0 : c0 + len(sub)]
        if kind == "correlation":
            # nilearn z-scores (ddof=1, std < eps -> 1): S_z = Gc / (T d_i d_j)
            d = np.sqrt(g.diagonal(0, 1, 2).astype(np.float64) / (t - 1)[:, None])
            d[d < _EPS64] = 1.0
            inv_d = 1.0 / d
            a = (inv_d / np.sqrt(t)[:, None]).astype(gdt)
            g *= a[:, :, None]
            g *= a[:, None, :]  # g is now S_z
            if estimator == "empirical":
                with np.errstate(divide="ignore", invalid="ignore"):
                    u = (1.0 / np.sqrt(g.diagonal(0, 1, 2).astype(np.float64))).astype(gdt)
                    np.multiply(g, u[:, :, None], out=o)
                    o *= u[:, None, :]
            else:
                delta_ = np.einsum("bij,bij->b", g, g).astype(np.float64)  # f32 sum: rel. 1e-7
                sd = g.diagonal(0, 1, 2).astype(np.float64)
                shrink, mu = _lw_shrink(sd.sum(1), delta_, _np_beta(cx, m, inv_d * inv_d, t), r, t)
                with np.errstate(divide="ignore", invalid="ignore"):
                    u = 1.0 / np.sqrt((1.0 - shrink)[:, None] * sd + (shrink * mu)[:, None])
                np.multiply(g, ((1.0 - shrink)[:, None] * u).astype(gdt)[:, :, None], out=o)
                o *= u.astype(gdt)[:, None, :]
            o[:, diag_idx, diag_idx] = 1.0
            ok = np.isfinite(u).all()
        else:
            s = g.astype(np.float64, copy=False)
            s /= t[:, None, None]
            if estimator == "ledoit_wolf":
                delta_ = np.einsum("bij,bij->b", s, s)
                shrink, mu = _lw_shrink(s.diagonal(0, 1, 2).sum(1), delta_, _np_beta(cx, m, None, t), r, t)
                s *= (1.0 - shrink)[:, None, None]
                s[:, diag_idx, diag_idx] += (shrink * mu)[:, None]
            ok = True
            if kind in ("covariance", "tangent"):
                o[...] = s
            else:
                p = _inv(_Ops("numpy"), s, kind)
                if kind == "precision":
                    o[...] = p
                else:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        u = 1.0 / np.sqrt(p.diagonal(0, 1, 2))
                    np.multiply(p, -u[:, :, None], out=o, casting="same_kind")
                    o *= u[:, None, :].astype(o.dtype)
                    o[:, diag_idx, diag_idx] = 1.0
                    ok = np.isfinite(u).all()
        # NaN/Inf only come from a zero or negative diagonal (u above); finite input
        if finite and not ok:
            np.nan_to_num(o, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
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
            ``correlation``, whose error stays near 1e-6; float64 for the kinds that invert
            the covariance or keep data units), ``float32`` or ``float64``.
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
    if gram_dtype == "auto":
        gram_dtype = "float32" if k == "correlation" else "float64"
    xs = _check_series(series)
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
