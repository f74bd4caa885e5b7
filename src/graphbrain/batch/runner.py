"""Resumable, streaming batch processing of a cohort: :func:`process_cohort`.

Run folder (``output_dir``)::

    run.json          settings fingerprint, attempts, ROI names, executor
    parts/            one set of Parquet files per committed batch of subjects:
                      features-<part>.parquet, qc-<part>.parquet, tsnr-<part>.parquet,
                      errors-<part>.parquet, then status-<part>.parquet (written last:
                      the commit marker of the batch)
    cache/static/     <sha256>.npy  static connectome (R, R) per distinct time series
    cache/dynamic/    <sha256>.npy  dynamic connectome (W, R(R-1)/2) upper triangles
    status.parquet    one row per subject: status ok | excluded | failed | missing_input,
                      reason, message, content hashes, cache keys, seconds
    qc.parquet        QC measures per subject (scan length, tSNR, constant ROIs, motion)
    tsnr.parquet      tSNR per ROI (one column per ROI)
    features.parquet  vectorised static connectome (upper triangle) per usable subject
    errors.parquet    subject, stage, error type, message, traceback of every failure
    excluded.parquet  every subject not usable, with its reason (QC, validation, failures,
                      and listed subjects without a file / label)
    summary.json      counts, throughput, executor;  qc.png  cohort QC plots

Memory is bounded by ``max_in_flight`` + ``batch_size`` subjects, whatever the cohort
size. Every file is written atomically (temporary file + rename); a batch counts as done
only once its ``status`` part exists, so a run killed at any instant resumes from the
last committed batch: finished subjects are skipped, not recomputed, and half-written
files never exist under their final name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from graphbrain.batch import atomic
from graphbrain.batch.executors import Executor, make_executor
from graphbrain.batch.qc import QCThresholds, plot_cohort_qc
from graphbrain.batch.tasks import Plan, SubjectTask, plan_tasks
from graphbrain.batch.worker import Settings, process_batch
from graphbrain.data.records import Cohort
from graphbrain.errors import ConfigError

RUN_FILE = "run.json"
TABLES = ("status", "qc", "tsnr", "features", "errors", "excluded")
STATUS_COLUMNS = [
    "index", "subject_id", "site", "label", "participant", "source", "status", "reason", "message",
    "ts_sha256", "static_key", "dynamic_key", "n_windows", "cache_hit", "seconds", "attempt",
]
ERROR_COLUMNS = ["index", "subject_id", "stage", "error_type", "reason", "message", "traceback", "attempt"]
CONNECTOME_KEYS = ("kind", "estimator", "fisher_z", "window", "window_seconds", "stride")


@dataclass
class BatchResult:
    """What :func:`process_cohort` did, and access to the run folder's outputs."""

    output_dir: Path
    status: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return int(self.counts.get("failed", 0))

    def summary_line(self) -> str:
        c = self.counts
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(c.get("excluded_by_reason", {}).items()))
        line = (
            f"{c['n_subjects']} subjects: {c['ok']} ok, {c['excluded']} excluded"
            + (f" ({reasons})" if reasons else "")
            + f", {c['failed']} failed"
            + (" (see errors.parquet)" if c["failed"] else "")
        )
        if c.get("missing_input"):
            line += f"; {c['missing_input']} listed without a file or label (not counted as subjects)"
        line += f"; {c['processed_now']} processed now, {c['skipped_done']} already done"
        if c.get("subjects_per_s"):
            line += f", {c['subjects_per_s']:.1f} subjects/s"
        return line

    def table(self, name: str) -> pd.DataFrame:
        """One of the run's tables: status, qc, tsnr, features, errors, excluded."""
        if name not in TABLES:
            raise ConfigError(f"unknown table {name!r}; tables: {TABLES}")
        return pd.read_parquet(self.output_dir / f"{name}.parquet")

    def features(self) -> tuple[list[str], np.ndarray]:
        """``(subject_ids, X)``: the usable subjects' vectorised static connectomes."""
        return read_features(self.output_dir / "features.parquet")

    def _row(self, subject_id: str) -> pd.Series:
        rows = self.status[self.status["subject_id"] == subject_id]
        if rows.empty or rows.iloc[0]["status"] != "ok":
            raise ConfigError(f"subject {subject_id!r} has no connectome in {self.output_dir} (see status.parquet)")
        return rows.iloc[0]

    def static_fc(self, subject_id: str) -> np.ndarray:
        """The subject's static connectome ``(R, R)``."""
        return np.load(self._cache() / "static" / f"{self._row(subject_id)['static_key']}.npy", allow_pickle=False)

    def dynamic_fc(self, subject_id: str) -> np.ndarray:
        """The subject's dynamic connectome as upper triangles ``(W, R(R-1)/2)``."""
        key = self._row(subject_id)["dynamic_key"]
        if key is None:
            raise ConfigError("this run computed no dynamic connectomes (batch.dynamic=false)")
        return np.load(self._cache() / "dynamic" / f"{key}.npy", allow_pickle=False)

    def _cache(self) -> Path:
        return Path(json.loads((self.output_dir / RUN_FILE).read_text())["cache_dir"])

    @classmethod
    def load(cls, output_dir: str | Path) -> BatchResult:
        d = Path(output_dir)
        if not (d / "status.parquet").is_file():
            raise ConfigError(f"{d}: no status.parquet; not a finished `graphbrain cohort process` folder")
        counts = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
        return cls(d, pd.read_parquet(d / "status.parquet"), counts)


def _fingerprint(data: Any, plan: Plan, settings: Settings) -> dict[str, Any]:
    from graphbrain._version import __version__

    src = json.loads(json.dumps(data, default=str, sort_keys=True)) if data is not None else {
        "in_memory": plan.name, "subjects": [t.subject_id for t in plan.tasks][:5], "n": len(plan.tasks)}
    return {"data": src, "settings": settings.fingerprint(), "version": __version__}


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def _committed_parts(parts: Path) -> list[str]:
    return sorted(p.name[len("status-"):-len(".parquet")] for p in parts.glob("status-*.parquet"))


def _remove_orphans(parts: Path, committed: set[str]) -> int:
    """Data parts whose batch never committed (killed before its status part)."""
    n = 0
    for p in parts.glob("*.parquet"):
        kind, _, rest = p.name.partition("-")
        if kind != "status" and rest[: -len(".parquet")] not in committed:
            p.unlink()
            n += 1
    return n


def _acquire_lock(out: Path) -> Path:
    lock = out / "run.lock"
    if lock.exists():
        try:
            pid = int(lock.read_text().strip() or 0)
        except ValueError:
            pid = 0
        if pid and pid != os.getpid():
            try:
                os.kill(pid, 0)
                alive = True
            except (ProcessLookupError, PermissionError):
                alive = False
            if alive and Path(f"/proc/{pid}").exists():
                raise ConfigError(f"{out}: another process (pid {pid}) is processing this run folder; wait or remove {lock}")
    atomic.write_text(lock, str(os.getpid()))
    return lock


def _failure_outcomes(tasks: list[SubjectTask], err: BaseException) -> list[dict[str, Any]]:
    """The outcomes of a micro-batch whose worker died (after isolation: one subject)."""
    return [_failure_outcome(t, err) for t in tasks]


def _split(tasks: list[SubjectTask]) -> list[list[SubjectTask]] | None:
    """A micro-batch that lost its worker is retried subject by subject."""
    return [[t] for t in tasks] if len(tasks) > 1 else None


def _failure_outcome(task: SubjectTask, err: BaseException) -> dict[str, Any]:
    """The outcome of a task whose worker died (the worker function itself never raises)."""
    status = {c: None for c in STATUS_COLUMNS}
    status.update(index=task.index, subject_id=task.subject_id, status="failed", reason="worker_lost",
                  message=f"{type(err).__name__}: {err}", seconds=0.0)
    error = {"index": task.index, "subject_id": task.subject_id, "stage": "executor", "error_type": type(err).__name__,
             "reason": "worker_lost", "message": str(err), "traceback": ""}
    return {"status": status, "qc": None, "tsnr": None, "features": None, "error": error, "roi_names": None}


def _features_table(ok: list[dict[str, Any]]) -> Any:
    """index, subject_id, fc: the static connectome's upper triangle (np.triu_indices(R, 1)
    order) as one fixed-size list column (thousands of scalar columns are slow in Parquet)."""
    import pyarrow as pa

    mat = np.stack([o["features"] for o in ok]).astype(np.float32)
    fc = pa.FixedSizeListArray.from_arrays(pa.array(mat.ravel()), mat.shape[1])
    table = pa.table({
        "index": pa.array([o["status"]["index"] for o in ok], pa.int64()),
        "subject_id": pa.array([o["status"]["subject_id"] for o in ok], pa.string()),
        "fc": fc,
    })
    return table


def read_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(subject_ids, X)`` from a ``features.parquet``: X is ``(N, R(R-1)/2)`` float32, rows in
    file order; ``X[k]`` is the upper triangle (``np.triu_indices(R, 1)``) of subject k's FC."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    ids = table.column("subject_id").to_pylist()
    col = table.column("fc").combine_chunks()
    if len(ids) == 0:
        return ids, np.zeros((0, 0), dtype=np.float32)
    width = col.type.list_size
    return ids, col.values.to_numpy(zero_copy_only=False).reshape(len(ids), width).astype(np.float32, copy=False)


class _Writer:
    """Buffers outcomes and commits them as one part per ``batch_size`` subjects."""

    def __init__(self, parts: Path, attempt: int, batch_size: int, run_info: dict[str, Any], run_path: Path) -> None:
        self.parts, self.attempt, self.batch_size = parts, attempt, batch_size
        self.buf: list[dict[str, Any]] = []
        self.seq = 0
        self.info, self.run_path = run_info, run_path

    def add(self, outcome: dict[str, Any]) -> None:
        self.buf.append(outcome)
        if len(self.buf) >= self.batch_size:
            self.flush()

    def _check_rois(self, o: dict[str, Any]) -> None:
        feats = o["features"]
        if feats is None:
            return
        n_rois = self.info.get("n_rois")
        r = int(round((1 + np.sqrt(1 + 8 * feats.size)) / 2))
        if n_rois is None:
            self.info["n_rois"] = r
            self.info["roi_names"] = o["roi_names"]
            atomic.write_json(self.run_path, self.info)
        elif r != n_rois:
            o["features"] = None
            o["status"].update(status="excluded", reason="roi_mismatch",
                               message=f"{r} ROIs, the run has {n_rois} (the first processed subject's count)")

    def flush(self) -> None:
        if not self.buf:
            return
        name = f"{self.attempt:03d}-{self.seq:06d}"
        self.seq += 1
        for o in self.buf:
            self._check_rois(o)
            o["status"]["attempt"] = self.attempt
        ok = [o for o in self.buf if o["features"] is not None and o["status"]["status"] == "ok"]
        if ok:
            atomic.write_parquet(self.parts / f"features-{name}.parquet", _features_table(ok))
        qc = [o["qc"] for o in self.buf if o["qc"] is not None]
        if qc:
            atomic.write_parquet(self.parts / f"qc-{name}.parquet", pd.DataFrame(qc))
            snr = [o for o in self.buf if o["tsnr"] is not None]
            names = self.info.get("roi_names") or snr[0]["roi_names"]
            width = max(o["tsnr"].size for o in snr)
            cols = list(names) if names is not None and len(names) == width else [str(i) for i in range(width)]
            mat = np.full((len(snr), width), np.nan, dtype=np.float32)
            for k, o in enumerate(snr):
                mat[k, : o["tsnr"].size] = o["tsnr"]
            t = pd.DataFrame(mat, columns=[f"tsnr_{c}" for c in cols])
            t.insert(0, "subject_id", [o["status"]["subject_id"] for o in snr])
            t.insert(0, "index", [o["status"]["index"] for o in snr])
            atomic.write_parquet(self.parts / f"tsnr-{name}.parquet", t)
        errors = [{**o["error"], "attempt": self.attempt} for o in self.buf if o["error"] is not None]
        if errors:
            atomic.write_parquet(self.parts / f"errors-{name}.parquet", pd.DataFrame(errors, columns=ERROR_COLUMNS))
        status = pd.DataFrame([o["status"] for o in self.buf], columns=STATUS_COLUMNS)
        atomic.write_parquet(self.parts / f"status-{name}.parquet", status)  # the commit
        self.buf = []


def _concat_parts(parts: Path, kind: str, committed: list[str], columns: list[str] | None = None) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for name in committed if (p := parts / f"{kind}-{name}.parquet").is_file()]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns or ["index", "subject_id"])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values("index", kind="stable").reset_index(drop=True)


def _write_features(parts: Path, committed: list[str], path: Path) -> int:
    """Stream the features parts into one Parquet file, one row group per part."""
    import pyarrow.parquet as pq

    n = 0
    tmp = path.with_name(path.name + atomic.TMP_SUFFIX)
    writer = None
    try:
        for name in committed:
            p = parts / f"features-{name}.parquet"
            if not p.is_file():
                continue
            table = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            n += table.num_rows
        if writer is None:
            pd.DataFrame(columns=["index", "subject_id"]).to_parquet(tmp, index=False)
        else:
            writer.close()
            writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return n


def consolidate(output_dir: str | Path, unmatched: list[Any] | None = None, plots: bool = True,
                thresholds: QCThresholds | None = None) -> dict[str, Any]:
    """Gather the committed parts into the run's tables; returns the counts."""
    out = Path(output_dir)
    parts = out / "parts"
    committed = _committed_parts(parts)
    status = _concat_parts(parts, "status", committed, STATUS_COLUMNS)
    status = status.drop_duplicates("subject_id", keep="last")
    missing = pd.DataFrame(
        [{"subject_id": e.subject_id, "source": e.source, "status": "missing_input", "reason": e.reason,
          "message": e.message} for e in (unmatched or [])],
        columns=STATUS_COLUMNS,
    )
    full = pd.concat([status, missing], ignore_index=True) if len(missing) else status
    atomic.write_parquet(out / "status.parquet", full)
    qc = _concat_parts(parts, "qc", committed)
    atomic.write_parquet(out / "qc.parquet", qc)
    atomic.write_parquet(out / "tsnr.parquet", _concat_parts(parts, "tsnr", committed))
    errors = _concat_parts(parts, "errors", committed, ERROR_COLUMNS)
    atomic.write_parquet(out / "errors.parquet", errors)
    _write_features(parts, committed, out / "features.parquet")
    bad = full[full["status"] != "ok"]
    excluded = pd.DataFrame({
        "subject_id": bad["subject_id"], "source": bad["source"], "reason": bad["reason"].fillna("unknown"),
        "message": bad["message"], "status": bad["status"],
    })
    atomic.write_parquet(out / "excluded.parquet", excluded)
    if plots:
        plot_cohort_qc(qc, full, out / "qc.png", thresholds)
    ex = status[status["status"] == "excluded"]
    return {
        "n_subjects": int(len(status)),
        "ok": int((status["status"] == "ok").sum()),
        "excluded": int(len(ex)),
        "excluded_by_reason": {str(k): int(v) for k, v in ex["reason"].value_counts().items()},
        "failed": int((status["status"] == "failed").sum()),
        "missing_input": int(len(missing)),
        "missing_input_by_reason": {str(k): int(v) for k, v in missing["reason"].value_counts().items()},
    }


def process_cohort(
    data: Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path,
    cohort: Cohort | None = None,
    connectome: Mapping[str, Any] | None = None,
    qc: Mapping[str, Any] | None = None,
    executor: str | Mapping[str, Any] | Executor | None = "serial",
    batch_size: int = 64,
    max_in_flight: int | None = None,
    micro_batch: int = 16,
    dynamic: bool = True,
    cache_dir: str | Path | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    plots: bool = True,
) -> BatchResult:
    """Files -> validated time series -> QC -> static and dynamic connectomes, in a run folder.

    Args:
        data: a data configuration (``{"source": "abide_pcp", "root": ...}``, the same keys
            as ``graphbrain run data=...``); or pass ``cohort``.
        output_dir: the run folder (see the module docstring); rerunning into the same
            folder resumes.
        cohort: an in-memory cohort instead of ``data``.
        connectome: ``kind`` (correlation, partial_correlation, covariance, precision),
            ``estimator``, ``fisher_z``, ``window`` / ``window_seconds``, ``stride``; other
            keys of the connectome presets are ignored (they concern model training).
        qc: thresholds, see :class:`~graphbrain.batch.qc.QCThresholds`.
        executor: ``"serial"``, ``"process"``, ``"dask"``, a dict (``{"name": "dask",
            "address": "tcp://host:8786"}``) or an :class:`Executor`.
        batch_size: subjects per committed part (the unit lost by a kill).
        max_in_flight: subjects submitted at once (default ``2 * batch_size``).
        micro_batch: subjects per task: a worker loads and QCs each subject on its own,
            then computes the connectomes of the micro-batch with the batched kernels (if
            that step fails, the subjects are redone one by one, so only the bad one is
            recorded). 1 gives one task per subject.
        dynamic: also compute sliding-window connectomes.
        cache_dir: the content-hash store (default ``output_dir/cache``; share it between
            runs to reuse connectomes).
        resume: skip subjects committed by an earlier attempt in ``output_dir`` (a folder
            made with other settings is refused unless ``overwrite``).
        overwrite: discard earlier parts of ``output_dir`` and start again.
        progress: show a progress bar (subjects/s and ETA).
        plots: write ``qc.png``.

    Returns:
        A :class:`BatchResult`; ``result.n_failed`` subjects raised an exception (recorded
        in ``errors.parquet``), the rest went on.
    """
    if int(batch_size) < 1:
        raise ConfigError(f"batch.size must be >= 1, got {batch_size}")
    if int(micro_batch) < 1:
        raise ConfigError(f"batch.micro_batch must be >= 1, got {micro_batch}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    conn = {k: v for k, v in dict(connectome or {}).items() if k in CONNECTOME_KEYS}
    thresholds = QCThresholds.from_dict(qc)
    n_rois = None if data is None else dict(data).get("n_rois") if dict(data).get("source") != "synthetic" else None
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    settings = Settings(cache_dir=str(cache.resolve()), dynamic=bool(dynamic), thresholds=thresholds.as_dict(),
                        n_rois=n_rois, **conn)
    plan = plan_tasks(data, cohort=cohort)
    lock = _acquire_lock(out)
    try:
        return _run(out, data, plan, settings, thresholds, executor, int(batch_size), max_in_flight,
                    int(micro_batch), resume, overwrite, progress, plots)
    finally:
        lock.unlink(missing_ok=True)


def _run(out: Path, data: Any, plan: Plan, settings: Settings, thresholds: QCThresholds, executor: Any,
         batch_size: int, max_in_flight: int | None, micro_batch: int, resume: bool, overwrite: bool,
         progress: bool, plots: bool) -> BatchResult:
    parts = out / "parts"
    run_path = out / RUN_FILE
    fp = _fingerprint(data, plan, settings)
    info: dict[str, Any] = {}
    if run_path.is_file():
        info = json.loads(run_path.read_text())
        if overwrite or not resume:
            if not overwrite:
                raise ConfigError(f"{out} already holds a batch run; resume it (batch.resume=true), "
                                  "pass batch.overwrite=true to start again, or choose another output_dir")
            for p in parts.glob("*.parquet"):
                p.unlink()
            for t in TABLES:
                (out / f"{t}.parquet").unlink(missing_ok=True)
            info = {}
        elif info.get("fingerprint") != fp:
            diff = _diff(info.get("fingerprint", {}), fp)
            raise ConfigError(f"{out} holds a batch run with other settings ({'; '.join(diff[:6])}); "
                              "use another output_dir, or batch.overwrite=true to start again")
    parts.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_tmp(out)
    committed = _committed_parts(parts)
    _remove_orphans(parts, set(committed))
    done = set(_concat_parts(parts, "status", committed)["subject_id"]) if committed else set()
    attempt = int(info.get("attempts", 0)) + 1
    info.update(fingerprint=fp, attempts=attempt, cache_dir=settings.cache_dir, n_tasks=len(plan.tasks),
                n_rois=info.get("n_rois"), roi_names=info.get("roi_names"))
    pending = [t for t in plan.tasks if t.subject_id not in done]
    t0 = time.perf_counter()
    writer = _Writer(parts, attempt, batch_size, info, run_path)
    ex = make_executor(executor)
    info["executor"] = ex.describe()
    atomic.write_json(run_path, info)
    try:
        bar = tqdm(total=len(plan.tasks), initial=len(plan.tasks) - len(pending), unit="subj",
                   desc="cohort", disable=not progress, smoothing=0.05)
        limit = max_in_flight or 2 * batch_size  # subjects in flight: bounds the driver's memory
        micro = min(micro_batch, limit)
        chunks = (pending[i:i + micro] for i in range(0, len(pending), micro))
        in_flight = max(1, limit // micro)
        for outcomes in ex.map_unordered(process_batch, chunks, settings, max_in_flight=in_flight,
                                         on_error=_failure_outcomes, split=_split):
            for outcome in outcomes:
                writer.add(outcome)
            bar.update(len(outcomes))
        writer.flush()
        bar.close()
    finally:
        if ex is not executor:
            ex.close()
    seconds = time.perf_counter() - t0
    counts = consolidate(out, plan.unmatched, plots=plots, thresholds=thresholds)
    counts.update(
        processed_now=len(pending), skipped_done=len(plan.tasks) - len(pending), attempt=attempt,
        seconds=seconds, subjects_per_s=(len(pending) / seconds) if seconds > 0 and pending else None,
        executor=info["executor"],
    )
    atomic.write_json(out / "summary.json", counts)
    return BatchResult(out, pd.read_parquet(out / "status.parquet"), counts)
