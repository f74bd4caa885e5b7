"""The per-subject unit of work: load -> validate -> QC -> static / dynamic connectome.

:func:`process_subject` never raises: any exception becomes an outcome with status
``"failed"`` and an error record (subject, stage, error type, message), so one bad scan
cannot stop a cohort. Connectomes are written once into a content-hash store
(``<cache>/static/<sha256>.npy``, ``<cache>/dynamic/<sha256>.npy``): the key covers the
time series' bytes, the connectome settings and the graphbrain version, so a rerun, or
another run sharing the cache, reads instead of recomputing, and a changed setting
recomputes. Every write is atomic.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphbrain.batch.atomic import save_npy
from graphbrain.batch.qc import QCThresholds, compute_qc, fd_from_confounds
from graphbrain.batch.tasks import SubjectTask, confounds_of, load_subject
from graphbrain.errors import ConfigError, DataError

#: DataError reasons that are findings about the data (the subject is excluded), not
#: failures (unreadable or missing files and unexpected errors go to errors.parquet).
VALIDATION_REASONS = frozenset({
    "non_finite", "too_short", "roi_mismatch", "constant_roi", "not_symmetric", "missing_label",
    "wrong_shape", "duplicate_id", "no_timeseries", "missing_tr", "atlas_space_mismatch",
})

PER_SUBJECT_KINDS = ("correlation", "partial correlation", "covariance", "precision")


@dataclass
class Settings:
    """What every worker needs besides its task (small and picklable)."""

    cache_dir: str
    kind: str = "correlation"
    estimator: str = "ledoit_wolf"
    fisher_z: bool = False
    dynamic: bool = True
    window: int | None = 50
    window_seconds: float | None = None
    stride: int = 3
    thresholds: dict[str, Any] = field(default_factory=dict)
    n_rois: int | None = None

    def __post_init__(self) -> None:
        k = self.kind.replace("_", " ")
        if k == "tangent":
            raise ConfigError(
                "connectome.kind=tangent is fitted on a training fold (it needs the group mean), "
                "so batch processing cannot compute it per subject; process with "
                "connectome=correlation and let `graphbrain run connectome=tangent` fit it in-fold"
            )
        if k not in PER_SUBJECT_KINDS:
            raise ConfigError(f"unknown connectome.kind {self.kind!r}; per-subject kinds: {PER_SUBJECT_KINDS}")
        self.kind = k
        if self.dynamic and self.window is None and self.window_seconds is None:
            raise ConfigError("dynamic connectomes need connectome.window or connectome.window_seconds")
        QCThresholds.from_dict(self.thresholds)  # fail early on unknown keys

    def fingerprint(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("cache_dir",)}
        return d


def _ts_hash(ts: np.ndarray) -> str:
    a = np.ascontiguousarray(ts, dtype=np.float32)
    h = hashlib.sha256(str(a.shape).encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _cached(cache: Path, what: str, ts: np.ndarray, params: dict[str, Any], compute: Any) -> tuple[np.ndarray, str, bool]:
    """(array, key, hit): read ``<cache>/<what>/<key>.npy`` or compute and store it."""
    from graphbrain.cache import content_key

    key = content_key([ts], {"what": what, **params})
    path = cache / what / f"{key}.npy"
    if path.exists():
        try:
            return np.load(path, allow_pickle=False), key, True
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)  # a torn entry from an old crash: recompute
    arr = np.asarray(compute(), dtype=np.float32)
    save_npy(path, arr, durable=False)  # a store entry torn by a power cut is detected above
    return arr, key, False


def _static_fc(ts: np.ndarray, s: Settings) -> np.ndarray:
    from graphbrain.connectome.static import ConnectivityTransformer

    t = ConnectivityTransformer(kind=s.kind, estimator=s.estimator, fisher_z=s.fisher_z)
    return t.fit([ts]).transform([ts])[0]


def _dynamic_fc(ts: np.ndarray, tr: float | None, s: Settings) -> np.ndarray:
    from graphbrain.connectome.dynamic import seconds_to_timepoints, sliding_window_fc
    window = s.window
    if s.window_seconds is not None:
        if tr is None:
            raise DataError("connectome.window_seconds needs the TR, which is unknown for this scan", reason="missing_tr")
        window = seconds_to_timepoints(s.window_seconds, tr)
    fc = sliding_window_fc(ts, int(window), int(s.stride), backend="numpy", fisher_z=s.fisher_z)
    iu = np.triu_indices(fc.shape[-1], k=1)
    return fc[:, iu[0], iu[1]]  # (W, R(R-1)/2): each window's upper triangle, np.triu_indices order


def process_subject(task: SubjectTask, settings: Settings) -> dict[str, Any]:
    """Process one subject; returns its outcome (never raises)."""
    t0 = time.perf_counter()
    status: dict[str, Any] = {
        "index": task.index,
        "subject_id": task.subject_id,
        "site": None,
        "label": None,
        "participant": None,
        "source": task.payload.get("path"),
        "status": "ok",
        "reason": None,
        "message": None,
        "ts_sha256": None,
        "static_key": None,
        "dynamic_key": None,
        "n_windows": None,
        "cache_hit": None,
    }
    out: dict[str, Any] = {"status": status, "qc": None, "tsnr": None, "features": None, "error": None, "roi_names": None}
    stage = "load"
    thr = QCThresholds.from_dict(settings.thresholds)
    try:
        subj = load_subject(task)
        status.update(
            site=subj.site,
            label=subj.label,
            participant=getattr(subj, "participant", None) or subj.covariates.get("participant_id"),
            source=subj.source,
        )
        if subj.timeseries is None:
            raise DataError("batch processing needs ROI time series, this subject only has a connectivity matrix",
                            source=subj.source, reason="no_timeseries")
        stage = "validate"
        from graphbrain.data.validation import check_subject

        try:
            check_subject(subj, min_timepoints=1, n_rois=settings.n_rois, constant_roi="keep")
        except DataError as err:
            status.update(status="excluded", reason=err.reason, message=str(err))
            return out
        ts = subj.timeseries
        status["ts_sha256"] = _ts_hash(ts)
        stage = "qc"
        fd = fd_from_confounds(confounds_of(task))
        qc, snr = compute_qc(ts, tr=subj.tr, roi_names=subj.roi_names, fd=fd, covariates=subj.covariates,
                             fd_spike_mm=thr.fd_spike_mm)
        qc = {"index": task.index, "subject_id": task.subject_id, "site": subj.site, "label": subj.label, **qc}
        out["qc"], out["tsnr"], out["roi_names"] = qc, snr, subj.roi_names
        failed = thr.check(qc)
        if failed:
            status.update(status="excluded", reason=failed[0][0], message="; ".join(m for _, m in failed))
            return out
        stage = "static_fc"
        cache = Path(settings.cache_dir)
        params = {"kind": settings.kind, "estimator": settings.estimator, "fisher_z": settings.fisher_z}
        fc, key, hit = _cached(cache, "static", ts, params, lambda: _static_fc(ts, settings))
        status.update(static_key=key, cache_hit=hit)
        iu = np.triu_indices(fc.shape[0], k=1)
        out["features"] = np.asarray(fc[iu], dtype=np.float32)
        if settings.dynamic:
            stage = "dynamic_fc"
            dparams = {"window": settings.window, "window_seconds": settings.window_seconds, "tr": subj.tr,
                       "stride": settings.stride, "fisher_z": settings.fisher_z}
            try:
                dfc, dkey, dhit = _cached(cache, "dynamic", ts, dparams, lambda: _dynamic_fc(ts, subj.tr, settings))
            except DataError as err:
                if err.reason in ("too_short", "missing_tr"):
                    status.update(status="excluded", reason=err.reason, message=f"dynamic FC: {err}")
                    return out
                raise
            status.update(dynamic_key=dkey, n_windows=int(dfc.shape[0]), cache_hit=hit and dhit)
    except DataError as err:
        if err.reason not in VALIDATION_REASONS:
            _record_failure(out, task, stage, err)
        else:  # a reader's own validation (NaN, too short, no label ...): an exclusion
            status.update(status="excluded", reason=err.reason, message=str(err))
    except Exception as err:  # noqa: BLE001 - per-subject isolation: record and go on
        _record_failure(out, task, stage, err)
    finally:
        status["seconds"] = time.perf_counter() - t0
    return out


def _record_failure(out: dict[str, Any], task: SubjectTask, stage: str, err: BaseException) -> None:
    """Status "failed" plus an error record (subject, stage, error type, message, traceback)."""
    reason = getattr(err, "reason", None)
    out["status"].update(status="failed", reason=reason or type(err).__name__, message=str(err))
    out["error"] = {
        "index": task.index,
        "subject_id": task.subject_id,
        "stage": stage,
        "error_type": type(err).__name__,
        "reason": reason,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(err))[-4000:],
    }
    out["features"] = None
