"""Serial, process-pool and Dask LocalCluster executors write identical run tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphbrain.batch.executors import make_executor
from graphbrain.batch.runner import process_cohort, read_features
from graphbrain.errors import ConfigError

CONN = {"kind": "correlation", "window": 20, "stride": 10}
VOLATILE = ["seconds", "attempt", "cache_hit", "source"]


def _tables(out):
    status = pd.read_parquet(out / "status.parquet").drop(columns=VOLATILE)
    qc = pd.read_parquet(out / "qc.parquet")
    tsnr = pd.read_parquet(out / "tsnr.parquet")
    errors = pd.read_parquet(out / "errors.parquet")[["subject_id", "stage", "error_type", "reason"]]
    ids, x = read_features(out / "features.parquet")
    order = np.argsort(ids)
    return status, qc, tsnr, errors, [ids[i] for i in order], x[order]


def test_executors_give_identical_outputs(bad_cohort, tmp_path):
    results = {}
    for name, spec in [
        ("serial", "serial"),
        ("process", {"name": "process", "n_workers": 2}),
        ("dask", {"name": "dask", "n_workers": 2, "processes": False}),  # real processes: the benchmark
    ]:
        pytest.importorskip("distributed") if name == "dask" else None
        out = tmp_path / name
        res = process_cohort(bad_cohort, output_dir=out, connectome=CONN, qc={"max_mean_fd": 0.5},
                             executor=spec, batch_size=3, progress=False, plots=False)
        assert res.counts["executor"]["executor"] == name
        results[name] = _tables(out)
    ref = results["serial"]
    assert len(ref[4]) == 9 and len(ref[3]) == 1  # 9 usable subjects, one failure
    for name in ("process", "dask"):
        got = results[name]
        for a, b in zip(ref[:4], got[:4], strict=True):
            pd.testing.assert_frame_equal(a, b)
        assert ref[4] == got[4]
        np.testing.assert_array_equal(ref[5], got[5])


def test_executor_config_errors():
    with pytest.raises(ConfigError, match="unknown executor 'slurm'"):
        make_executor("slurm")
    with pytest.raises(ConfigError, match="unknown executor key"):
        make_executor({"name": "process", "workers": 2})
