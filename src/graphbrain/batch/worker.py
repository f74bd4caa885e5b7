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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphbrain.batch.atomic import save_npy
from graphbrain.batch.qc import QCThresholds, compute_qc, fd_from_confounds
from graphbrain.batch.tasks import SubjectTask, confounds_of, load_subject
from graphbrain.data.records import Subject
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


def _lookup(cache: Path, what: str, ts: np.ndarray, params: dict[str, Any]) -> tuple[str, np.ndarray | None]:
    """(key, array or None): ``<cache>/<what>/<key>.npy`` if it exists and parses."""
    from graphbrain.cache import content_key

    key = content_key([ts], {"what": what, **params})
    path = cache / what / f"{key}.npy"
    if path.exists():
        try:
            return key, np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)  # a torn entry from an old crash: recompute
    return key, None


def _store(cache: Path, what: str, key: str, arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr, dtype=np.float32)  # C order: np.save writes it in one call
    save_npy(cache / what / f"{key}.npy", arr, durable=False)  # a torn entry is detected by _lookup
    return arr


def _cached(cache: Path, what: str, ts: np.ndarray, params: dict[str, Any], compute: Any) -> tuple[np.ndarray, str, bool]:
    """(array, key, hit): read ``<cache>/<what>/<key>.npy`` or compute and store it."""
    key, arr = _lookup(cache, what, ts, params)
    if arr is not None:
        return arr, key, True
    return _store(cache, what, key, compute()), key, False


def _static_fc(ts: np.ndarray | list[np.ndarray], s: Settings) -> np.ndarray:
    """Static connectome ``(R, R)`` of one series, or ``(N, R, R)`` of a list of series with
    the same ROI count (the batched kernels: one Gram product per scan length)."""
    from graphbrain.connectome.static import ConnectivityTransformer

    xs = ts if isinstance(ts, list) else [ts]
    t = ConnectivityTransformer(kind=s.kind, estimator=s.estimator, fisher_z=s.fisher_z)
    fc = t.fit(xs).transform(xs)
    return fc if isinstance(ts, list) else fc[0]


def _window(tr: float | None, s: Settings) -> int:
    from graphbrain.connectome.dynamic import seconds_to_timepoints

    if s.window_seconds is not None:
        if tr is None:
            raise DataError("connectome.window_seconds needs the TR, which is unknown for this scan", reason="missing_tr")
        return int(seconds_to_timepoints(s.window_seconds, tr))
    return int(s.window)  # type: ignore[arg-type]


def _dynamic_fc(ts: np.ndarray, tr: float | None, s: Settings) -> np.ndarray:
    """``(W, R(R-1)/2)`` for one ``(T, R)`` series, or ``(B, W, R(R-1)/2)`` for a ``(B, T, R)``
    stack (one batched sliding-window kernel call)."""
    from graphbrain.connectome.dynamic import sliding_window_fc

    fc = sliding_window_fc(ts, _window(tr, s), int(s.stride), backend="numpy", fisher_z=s.fisher_z)
    iu = np.triu_indices(fc.shape[-1], k=1)
    # each window's upper triangle, np.triu_indices order; advanced indexing returns odd
    # strides, and np.save of a non-contiguous array is ~10x slower than of a C-ordered one
    return np.ascontiguousarray(fc[..., iu[0], iu[1]])


def _static_params(s: Settings) -> dict[str, Any]:
    return {"kind": s.kind, "estimator": s.estimator, "fisher_z": s.fisher_z}


def _dynamic_params(s: Settings, tr: float | None) -> dict[str, Any]:
    return {"window": s.window, "window_seconds": s.window_seconds, "tr": tr, "stride": s.stride,
            "fisher_z": s.fisher_z}


def _outcome(task: SubjectTask) -> dict[str, Any]:
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
    return {"status": status, "qc": None, "tsnr": None, "features": None, "error": None, "roi_names": None}


def _data_error(out: dict[str, Any], task: SubjectTask, stage: str, err: DataError) -> None:
    if err.reason not in VALIDATION_REASONS:
        _record_failure(out, task, stage, err)
    else:  # a reader's own validation (NaN, too short, no label ...): an exclusion
        out["status"].update(status="excluded", reason=err.reason, message=str(err))


def _dynamic_excluded(out: dict[str, Any], err: DataError) -> bool:
    """A scan too short for the windows, or without the TR a window in seconds needs: excluded."""
    if err.reason in ("too_short", "missing_tr"):
        out["status"].update(status="excluded", reason=err.reason, message=f"dynamic FC: {err}")
        return True
    return False


class _Stage:
    def __init__(self, name: str) -> None:
        self.name = name


@contextmanager
def _isolated(out: dict[str, Any], task: SubjectTask, stage: str = "load",
              t0: float | None = None) -> Iterator[_Stage]:
    """Per-subject isolation of a block: a DataError becomes an exclusion (a finding about
    the data) or a failure, any other exception a failure recorded with the block's current
    stage; the subject's seconds are recorded either way."""
    t0 = time.perf_counter() if t0 is None else t0
    current = _Stage(stage)
    try:
        yield current
    except DataError as err:
        _data_error(out, task, current.name, err)
    except Exception as err:  # noqa: BLE001 - per-subject isolation: record and go on
        _record_failure(out, task, current.name, err)
    finally:
        out["status"]["seconds"] = time.perf_counter() - t0


def _prepare(task: SubjectTask, settings: Settings, thr: QCThresholds) -> tuple[dict[str, Any], Subject | None]:
    """load -> validate -> QC of one subject (never raises): ``(outcome, subject)``, the
    subject ``None`` when the outcome is final (excluded or failed)."""
    out = _outcome(task)
    status = out["status"]
    with _isolated(out, task) as stage:
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
        stage.name = "validate"
        from graphbrain.data.validation import check_subject

        try:
            check_subject(subj, min_timepoints=1, n_rois=settings.n_rois, constant_roi="keep")
        except DataError as err:
            status.update(status="excluded", reason=err.reason, message=str(err))
            return out, None
        ts = subj.timeseries
        status["ts_sha256"] = _ts_hash(ts)
        stage.name = "qc"
        fd = fd_from_confounds(confounds_of(task))
        qc, snr = compute_qc(ts, tr=subj.tr, roi_names=subj.roi_names, fd=fd, covariates=subj.covariates,
                             fd_spike_mm=thr.fd_spike_mm)
        qc = {"index": task.index, "subject_id": task.subject_id, "site": subj.site, "label": subj.label, **qc}
        out["qc"], out["tsnr"], out["roi_names"] = qc, snr, subj.roi_names
        failed = thr.check(qc)
        if failed:
            status.update(status="excluded", reason=failed[0][0], message="; ".join(m for _, m in failed))
            return out, None
        return out, subj
    return out, None


def process_subject(task: SubjectTask, settings: Settings) -> dict[str, Any]:
    """Process one subject; returns its outcome (never raises)."""
    t0 = time.perf_counter()
    thr = QCThresholds.from_dict(settings.thresholds)
    out, subj = _prepare(task, settings, thr)
    if subj is None:
        return out
    status = out["status"]
    ts = subj.timeseries
    with _isolated(out, task, "static_fc", t0) as stage:
        cache = Path(settings.cache_dir)
        fc, key, hit = _cached(cache, "static", ts, _static_params(settings), lambda: _static_fc(ts, settings))
        status.update(static_key=key, cache_hit=hit)
        iu = np.triu_indices(fc.shape[0], k=1)
        out["features"] = np.asarray(fc[iu], dtype=np.float32)
        if settings.dynamic:
            stage.name = "dynamic_fc"
            dparams = _dynamic_params(settings, subj.tr)
            try:
                dfc, dkey, dhit = _cached(cache, "dynamic", ts, dparams, lambda: _dynamic_fc(ts, subj.tr, settings))
            except DataError as err:
                if _dynamic_excluded(out, err):
                    return out
                raise
            status.update(dynamic_key=dkey, n_windows=int(dfc.shape[0]), cache_hit=hit and dhit)
    return out


def process_batch(tasks: list[SubjectTask], settings: Settings) -> list[dict[str, Any]]:
    """Process a micro-batch of subjects; returns their outcomes in task order (never raises).

    Each subject is loaded, validated and QC'd on its own (a bad file is recorded and
    the others go on); the connectomes of the subjects that pass are computed together
    with the batched kernels (static FC: one Gram product per scan length; dynamic FC:
    one sliding-window call per scan length and window). If that batched step raises,
    every subject of the micro-batch is processed again alone with
    :func:`process_subject`, so only the subject at fault is recorded as failed. The
    outcomes equal :func:`process_subject`'s (``tests/batch/test_micro_batch.py``).
    """
    if len(tasks) <= 1:
        return [process_subject(t, settings) for t in tasks]
    try:
        return _process_batched(tasks, settings)
    except Exception:  # noqa: BLE001 - isolate: each subject alone, only the bad one is recorded
        return [process_subject(t, settings) for t in tasks]


def _batched(cache: Path, what: str, items: list[tuple[np.ndarray, dict[str, Any], Any]],
             compute: Any) -> list[tuple[np.ndarray | DataError, str, bool]]:
    """Store lookups for every ``(series, params, group)``, then ONE ``compute(series_list,
    group)`` per group of misses; ``[(array or the group's DataError, key, hit)]``."""
    res: list[Any] = [None] * len(items)
    groups: dict[Any, list[int]] = {}
    for i, (ts, params, group) in enumerate(items):
        key, arr = _lookup(cache, what, ts, params)
        res[i] = (arr, key, arr is not None)
        if arr is None:
            groups.setdefault(group, []).append(i)
    for group, idx in groups.items():
        try:
            arrs = compute([items[i][0] for i in idx], group)
        except DataError as err:  # e.g. scans too short for the windows: the whole group
            for i in idx:
                res[i] = (err, res[i][1], False)
            continue
        for i, arr in zip(idx, arrs, strict=True):
            res[i] = (_store(cache, what, res[i][1], arr), res[i][1], False)
    return res


def _process_batched(tasks: list[SubjectTask], settings: Settings) -> list[dict[str, Any]]:
    thr = QCThresholds.from_dict(settings.thresholds)
    prepared = [_prepare(t, settings, thr) for t in tasks]
    live = [(out, subj) for out, subj in prepared if subj is not None]
    if not live:
        return [out for out, _ in prepared]
    t0 = time.perf_counter()
    cache = Path(settings.cache_dir)
    sp = _static_params(settings)
    static = _batched(
        cache, "static", [(s.timeseries, sp, s.timeseries.shape[1]) for _, s in live],
        lambda xs, _r: _static_fc(xs, settings),
    )
    for (out, _), (fc, key, hit) in zip(live, static, strict=True):
        if isinstance(fc, DataError):
            raise fc  # not expected after validation: let process_subject record it per subject
        out["status"].update(static_key=key, cache_hit=hit)
        iu = np.triu_indices(fc.shape[0], k=1)
        out["features"] = np.asarray(fc[iu], dtype=np.float32)
    if settings.dynamic:
        items, todo = [], []
        for out, s in live:
            try:
                window = _window(s.tr, settings)
            except DataError as err:
                if not _dynamic_excluded(out, err):
                    raise
                continue
            items.append((s.timeseries, _dynamic_params(settings, s.tr), (s.timeseries.shape, window, s.tr)))
            todo.append(out)

        def compute(xs: list[np.ndarray], group: tuple[Any, int, float | None]) -> np.ndarray:
            return _dynamic_fc(np.stack(xs), group[2], settings)

        for out, (dfc, dkey, dhit) in zip(todo, _batched(cache, "dynamic", items, compute), strict=True):
            if isinstance(dfc, DataError):
                if not _dynamic_excluded(out, dfc):
                    raise dfc
                continue
            out["status"].update(dynamic_key=dkey, n_windows=int(dfc.shape[0]),
                                 cache_hit=out["status"]["cache_hit"] and dhit)
    share = (time.perf_counter() - t0) / len(live)
    for out, _ in live:
        out["status"]["seconds"] += share
    return [out for out, _ in prepared]


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
