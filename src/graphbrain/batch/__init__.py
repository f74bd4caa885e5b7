"""Batch cohort analysis: streaming processing, per-subject isolation, resume, QC,
leakage audit, executors (serial, process pool, Dask). See ``docs/batch.md``."""

from graphbrain.batch.audit import AuditReport, audit_run
from graphbrain.batch.executors import make_executor
from graphbrain.batch.qc import QCThresholds
from graphbrain.batch.runner import BatchResult, process_cohort, read_features

__all__ = [
    "AuditReport",
    "BatchResult",
    "QCThresholds",
    "audit_run",
    "make_executor",
    "process_cohort",
    "read_features",
]
