"""Static functional connectivity as a scikit-learn transformer fitted inside the fold.

Two engines compute the same numbers (equal to 1e-5, tested): ``engine="graphbrain"``
(default) uses the batched kernels of :mod:`graphbrain.connectome.kernels` (one Gram per
scan length, Ledoit-Wolf in closed form, batched ``eigh`` for the tangent space);
``engine="nilearn"`` calls nilearn's :class:`~nilearn.connectome.ConnectivityMeasure`
subject by subject. Kinds (Ledoit-Wolf shrunk covariance by default, or the empirical one):

* ``correlation``          C_ij / sqrt(C_ii C_jj)
* ``partial correlation``  -P_ij / sqrt(P_ii P_jj),  P = C^-1
* ``covariance``           C
* ``precision``            P
* ``tangent``              logm(M^-1/2 C M^-1/2), M the geometric mean of the
                           *training* covariances (the only kind that learns from data)

Input: a list of ``(T_i, R)`` time series; output ``(N, R, R)`` or, with
``vectorize=True``, ``(N, R(R-1)/2)`` (upper triangle, diagonal discarded). Undefined
entries (constant ROIs) come out as 0, never NaN. Per-subject matrices of the
non-fitted kinds are cached by content when ``cache_dir`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nilearn.connectome import ConnectivityMeasure, sym_matrix_to_vec
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from graphbrain.cache import ArrayCache
from graphbrain.connectome import kernels
from graphbrain.errors import ConfigError, DataError

KINDS = ("correlation", "partial correlation", "covariance", "precision", "tangent")
ESTIMATORS = ("ledoit_wolf", "empirical")
ENGINES = ("graphbrain", "nilearn")


def _cov_estimator(name: str) -> Any:
    if name == "ledoit_wolf":
        return LedoitWolf(store_precision=False)
    if name == "empirical":
        return EmpiricalCovariance(store_precision=False)
    raise ConfigError(f"unknown covariance estimator {name!r}; use one of {ESTIMATORS}")


class ConnectivityTransformer(TransformerMixin, BaseEstimator):
    """Time series -> static connectomes, fitted on the training fold only.

    Args:
        kind: one of ``correlation``, ``partial correlation``, ``covariance``,
            ``precision``, ``tangent`` (``partial_correlation`` is accepted too).
        estimator: ``ledoit_wolf`` (default, as nilearn) or ``empirical`` (plain Pearson).
        vectorize: return the upper triangles as feature vectors.
        discard_diagonal: with ``vectorize``, leave the diagonal out.
        fisher_z: apply ``arctanh`` to correlation-like kinds.
        cache_dir: folder for the content-hash cache (``None``: no cache).
        engine: ``graphbrain`` (batched kernels, default) or ``nilearn``.
    """

    def __init__(
        self,
        kind: str = "correlation",
        estimator: str = "ledoit_wolf",
        vectorize: bool = False,
        discard_diagonal: bool = True,
        fisher_z: bool = False,
        cache_dir: str | None = None,
        engine: str = "graphbrain",
    ) -> None:
        self.kind = kind
        self.estimator = estimator
        self.vectorize = vectorize
        self.discard_diagonal = discard_diagonal
        self.fisher_z = fisher_z
        self.cache_dir = cache_dir
        self.engine = engine

    @property
    def kind_(self) -> str:
        k = self.kind.replace("_", " ")
        if k not in KINDS:
            raise ConfigError(f"unknown connectivity kind {self.kind!r}; use one of {KINDS}")
        return k

    @property
    def engine_(self) -> str:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown connectome engine {self.engine!r} (key connectome.engine); use one of {ENGINES}")
        return self.engine

    def _measure(self, kind: str) -> ConnectivityMeasure:
        return ConnectivityMeasure(kind=kind, cov_estimator=_cov_estimator(self.estimator), vectorize=False)

    def _check(self, X: list[np.ndarray], finite: bool | None = None) -> list[np.ndarray]:
        if finite is None:
            finite = self.engine_ == "nilearn"
        if len(X) == 0:
            raise DataError("no time series given", reason="empty")
        out = []
        r = None
        for i, x in enumerate(X):
            x = np.asarray(x)
            # nilearn/sklearn would compute in float32 on float32 input: give it float64.
            # The kernels take the mean in float64 and need no copy.
            if x.dtype.kind != "f" or self.engine_ == "nilearn":
                x = x.astype(np.float64)
            if x.ndim != 2:
                raise DataError(f"time series {i} must be (T, R), got shape {x.shape}", reason="wrong_shape")
            if r is not None and x.shape[1] != r:
                raise DataError(f"time series {i} has {x.shape[1]} ROIs, expected {r}", reason="roi_mismatch")
            # nilearn: one read pass, no temporary (a finite sum means every value is finite;
            # an infinite/NaN sum or an overflow falls back to the element-wise check). The
            # graphbrain kernels find NaN/Inf from the column sums they take anyway and raise
            # the same DataError, so no pass over the data is spent here.
            if finite and not np.isfinite(x.sum()) and not np.isfinite(x).all():
                raise DataError(f"time series {i} contains NaN/Inf", reason="non_finite")
            r = x.shape[1]
            out.append(x)
        return out

    def fit(self, X: list[np.ndarray], y: Any = None) -> ConnectivityTransformer:
        self.engine_  # noqa: B018 - validates the engine name before any work
        # only the tangent kind learns from the data: the others check shapes here and the
        # values in transform (one pass, not two)
        X = self._check(X, finite=self.kind_ == "tangent" and self.engine_ == "nilearn")
        self.n_rois_ = X[0].shape[1]
        if self.kind_ == "tangent" and self.engine_ == "graphbrain":
            covs = kernels.connectivity(X, "covariance", self.estimator)
            self.mean_, self.whitening_ = kernels.tangent_reference(covs)
        elif self.kind_ == "tangent":
            cm = self._measure("tangent").fit(X)
            self.mean_ = cm.mean_
            self.whitening_ = cm.whitening_
        return self

    def _per_subject(self, X: list[np.ndarray], kind: str) -> np.ndarray:
        if self.engine_ == "graphbrain":

            def compute(xs: list[np.ndarray]) -> np.ndarray:
                # float32 out: the transformer returns float32 anyway (one pass saved); undefined
                # entries set to 0 inside the kernel, per chunk while in cache
                return np.asarray(kernels.connectivity(xs, kind, self.estimator, out_dtype="float32", finite=True))
        else:
            cm = self._measure(kind)

            def compute(xs: list[np.ndarray]) -> np.ndarray:
                try:
                    return np.asarray(cm.fit_transform(xs))
                except np.linalg.LinAlgError as err:  # the same error as the graphbrain engine
                    raise DataError(
                        f"a covariance matrix is singular, so its {kind} is undefined (constant or "
                        "duplicated ROIs with the empirical estimator?); use estimator='ledoit_wolf' "
                        "or drop those ROIs", reason="singular",
                    ) from err

        if self.cache_dir is None:
            return compute(X)
        cache = ArrayCache(self.cache_dir)
        params = {"kind": kind, "estimator": self.estimator, "what": "static_fc"}
        mats = [cache.get_or_compute([x], params, lambda x=x: compute([x])[0]) for x in X]
        return np.stack(mats)

    def transform(self, X: list[np.ndarray]) -> np.ndarray:
        if not hasattr(self, "n_rois_"):
            raise ConfigError("ConnectivityTransformer is not fitted; call fit() on the training fold first")
        X = self._check(X)
        if X[0].shape[1] != self.n_rois_:
            raise DataError(
                f"time series have {X[0].shape[1]} ROIs but the transformer was fitted on {self.n_rois_}",
                reason="roi_mismatch",
            )
        kind = self.kind_
        if kind == "tangent" and self.engine_ == "graphbrain":
            covs = kernels.connectivity(X, "covariance", self.estimator)
            mats = kernels.tangent_embed(covs, self.whitening_)
        elif kind == "tangent":
            cm = self._measure("tangent")
            cm.cov_estimator_ = _cov_estimator(self.estimator)
            cm.mean_ = self.mean_
            cm.whitening_ = self.whitening_
            cm.n_features_in_ = self.n_rois_
            # nilearn refuses to transform a single subject; pad with a copy and drop it.
            mats = cm.transform(X if len(X) > 1 else [X[0], X[0]])[: len(X)]
        else:
            mats = self._per_subject(X, kind)
        mats = np.asarray(mats)  # float32 (kernels) or float64 (nilearn, tangent); ours to modify
        if kind == "tangent" or self.engine_ == "nilearn":  # the kernels already gave 0 (finite=True)
            mats = np.nan_to_num(mats, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if self.fisher_z and kind in ("correlation", "partial correlation"):
            eye = np.eye(mats.shape[-1], dtype=bool)
            mats = np.where(eye, 0.0, np.arctanh(np.clip(mats, -0.999999, 0.999999)))
        if self.vectorize:
            return sym_matrix_to_vec(mats, discard_diagonal=self.discard_diagonal).astype(np.float32, copy=False)
        return mats.astype(np.float32, copy=False)

    # Safe persistence: plain arrays + JSON-able params, no pickle.
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = self.get_params()
        params.pop("cache_dir", None)
        arrays: dict[str, np.ndarray] = {"n_rois": np.asarray([self.n_rois_])}
        if self.kind_ == "tangent":
            arrays["mean"] = np.asarray(self.mean_)
            arrays["whitening"] = np.asarray(self.whitening_)
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> ConnectivityTransformer:
        t = cls(**params)
        t.n_rois_ = int(arrays["n_rois"][0])
        if t.kind_ == "tangent":
            t.mean_ = arrays["mean"]
            t.whitening_ = arrays["whitening"]
        return t


def vectorize_fc(mats: np.ndarray, discard_diagonal: bool = True) -> np.ndarray:
    """Upper triangles of ``(N, R, R)`` matrices as ``(N, R(R-1)/2)`` float32 vectors."""
    return sym_matrix_to_vec(np.asarray(mats), discard_diagonal=discard_diagonal).astype(np.float32)
