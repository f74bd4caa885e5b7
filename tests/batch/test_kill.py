"""A real SIGKILL to a real `graphbrain cohort process` midway; the rerun finishes the job
without recomputing committed subjects and leaves no torn file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from batch_data import write_cohort

from graphbrain.batch.cli import main as cohort_main
from graphbrain.batch.runner import read_features

N = 60


def _readable(path: Path) -> None:
    """Every final-named file must parse completely."""
    if path.suffix == ".parquet":
        pd.read_parquet(path)
    elif path.suffix == ".npy":
        np.load(path, allow_pickle=False)
    elif path.suffix == ".json":
        json.loads(path.read_text())


def test_sigkill_midway_then_resume(tmp_path):
    data = write_cohort(tmp_path / "data", n=N, n_rois=30, n_timepoints=120, bad=False)
    out = tmp_path / "run"
    args = [
        "process", "data=precomputed", f"data.path_or_files={data['path_or_files']}",
        f"data.labels_table={data['labels_table']}", "connectome.window=10", "connectome.stride=1",
        "batch.size=2", "batch.plots=false", "progress=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphbrain", "cohort", *args, f"output_dir={out}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    parts = out / "parts"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts.glob("status-*.parquet"))) >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    proc.stderr.close()

    # killed midway: some batches committed, not all; every file under its final name parses
    committed = pd.concat([pd.read_parquet(p) for p in sorted(parts.glob("status-*.parquet"))])
    done_before = set(committed["subject_id"])
    assert 0 < len(done_before) < N
    for p in out.rglob("*"):
        if p.is_file() and not p.name.endswith((".gbtmp", ".tmp")):
            _readable(p)
    keys_before = committed.set_index("subject_id")["static_key"]
    cache_mtimes = {k: (out / "cache" / "static" / f"{k}.npy").stat().st_mtime_ns for k in keys_before}

    # rerun: finishes the remaining subjects only
    assert cohort_main([*args, f"output_dir={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processed_now"] == N - len(done_before)
    assert summary["skipped_done"] == len(done_before)
    status = pd.read_parquet(out / "status.parquet").set_index("subject_id")
    assert len(status) == N and (status["status"] == "ok").all()
    assert (status.loc[sorted(done_before), "attempt"] == 1).all()
    assert (status.drop(index=sorted(done_before))["attempt"] == 2).all()
    for k, t in cache_mtimes.items():  # not recomputed, not rewritten
        assert (out / "cache" / "static" / f"{k}.npy").stat().st_mtime_ns == t
    assert not [p for p in out.rglob("*") if p.name.endswith((".gbtmp", ".tmp"))]

    # the same result as an uninterrupted run
    ref = tmp_path / "ref"
    assert cohort_main([*args, f"output_dir={ref}", "batch.size=30"]) == 0
    ids_a, xa = read_features(out / "features.parquet")
    ids_b, xb = read_features(ref / "features.parquet")
    assert len(ids_a) == N and sorted(ids_a) == sorted(ids_b)
    order_a, order_b = np.argsort(ids_a), np.argsort(ids_b)
    np.testing.assert_array_equal(xa[order_a], xb[order_b])
    sa = status.sort_values("index")["dynamic_key"].tolist()
    sb = pd.read_parquet(ref / "status.parquet").sort_values("index")["dynamic_key"].tolist()
    assert sa == sb
