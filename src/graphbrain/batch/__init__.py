"""Batch cohort analysis: streaming processing, per-subject isolation, resume, QC,
leakage audit, executors (serial, process pool, Dask).
"""
