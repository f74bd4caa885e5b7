"""Micro-batches through the batched FC kernels give the per-subject outputs; a failing
batched step falls back to one subject at a time; a pool worker killed by a real SIGKILL
is recorded for its subject only, and the run goes on."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from crash_helpers import KillOnArrival

from graphbrain.batch import worker
from graphbrain.batch.runner import process_cohort, read_features
from graphbrain.batch.tasks import plan_tasks
from graphbrain.data.records import Cohort, Subject

VOLATILE = ["seconds", "cache_hit"]


def _mixed_tasks(tmp_path):
    """Subjects of three scan lengths (one too short for the dynamic windows), a NaN, an
    unreadable file, a constant ROI: the batched path must group and isolate them."""
    rng = np.random.default_rng(5)
    for i, t in enumerate([60, 80, 60, 80, 60, 15, 60, 80, 60, 60]):
        ts = (rng.standard_normal((t, 3)) @ rng.standard_normal((3, 9)) + rng.standard_normal((t, 9)) + 2)
        ts = ts.astype(np.float32)
        if i == 3:
            ts[2, 4] = np.nan
        if i == 6:
            ts[:, 0] = 1.0
        np.save(tmp_path / f"s{i}.npy", ts)
    (tmp_path / "s8.npy").write_bytes(b"garbage")
    tasks = plan_tasks({"source": "precomputed", "path_or_files": str(tmp_path), "tr": 2.0}).tasks
    assert [t.subject_id for t in tasks] == [f"s{i}" for i in range(10)]
    return tasks


def _compare(a, b):
    sa, sb = dict(a["status"]), dict(b["status"])
    for k in VOLATILE:
        sa.pop(k), sb.pop(k)
    assert sa == sb
    for key in ("qc", "roi_names"):
        assert a[key] == b[key]
    assert (a["error"] is None) == (b["error"] is None)
    if a["error"] is not None:
        assert {k: a["error"][k] for k in ("stage", "error_type", "reason")} == \
            {k: b["error"][k] for k in ("stage", "error_type", "reason")}
    for key in ("features", "tsnr"):
        if a[key] is None:
            assert b[key] is None
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=2e-6)


@pytest.mark.parametrize("window_seconds", [None, 40.0])
def test_micro_batch_equals_per_subject(tmp_path, monkeypatch, window_seconds):
    tasks = _mixed_tasks(tmp_path)
    kw = {"window": 20, "stride": 5} if window_seconds is None else {"window": None, "window_seconds": 40.0, "stride": 5}
    one = worker.Settings(cache_dir=str(tmp_path / "c1"), **kw)
    many = worker.Settings(cache_dir=str(tmp_path / "c2"), **kw)
    ref = [worker.process_subject(t, one) for t in tasks]
    calls = []
    original = worker._static_fc
    monkeypatch.setattr(worker, "_static_fc", lambda ts, s: calls.append(len(ts)) or original(ts, s))
    got = worker.process_batch(tasks, many)
    assert calls == [8]  # one batched call for the 8 subjects that pass QC (three scan lengths)
    st = {o["status"]["subject_id"]: o["status"] for o in got}
    assert (st["s3"]["reason"], st["s5"]["reason"], st["s8"]["status"]) == ("non_finite", "too_short", "failed")
    assert st["s0"]["n_windows"] == 9 and st["s1"]["n_windows"] == 13
    for a, b in zip(ref, got, strict=True):
        _compare(a, b)
    for o_ref, o in zip(ref, got, strict=True):  # the stores hold the same connectomes
        for what in ("static", "dynamic"):
            k = o["status"][f"{what}_key"]
            assert k == o_ref["status"][f"{what}_key"]
            if k is not None:
                np.testing.assert_allclose(np.load(tmp_path / "c2" / what / f"{k}.npy"),
                                           np.load(tmp_path / "c1" / what / f"{k}.npy"), rtol=0, atol=2e-6)


def test_failing_batched_step_isolates_the_bad_subject(tmp_path, monkeypatch):
    tasks = [t for t in _mixed_tasks(tmp_path) if t.subject_id in ("s0", "s2", "s4", "s7", "s9")]
    s = worker.Settings(cache_dir=str(tmp_path / "c"), window=20, stride=5)
    ref = {t.subject_id: worker.process_subject(t, s) for t in tasks}
    bad = np.load(tmp_path / "s4.npy")
    original = worker._static_fc
    calls = []

    def flaky(ts, settings):
        calls.append(len(ts) if isinstance(ts, list) else 1)
        xs = ts if isinstance(ts, list) else [ts]
        if any(x.shape == bad.shape and np.array_equal(x, bad) for x in xs):
            raise RuntimeError("kernel blew up on this scan")
        return original(ts, settings)

    monkeypatch.setattr(worker, "_static_fc", flaky)
    s2 = worker.Settings(cache_dir=str(tmp_path / "c2"), window=20, stride=5)
    got = {o["status"]["subject_id"]: o for o in worker.process_batch(tasks, s2)}
    assert calls[0] == 5  # the batched call failed, then one subject at a time
    assert got["s4"]["status"]["status"] == "failed" and got["s4"]["error"]["stage"] == "static_fc"
    assert got["s4"]["error"]["error_type"] == "RuntimeError"
    for sid in ("s0", "s2", "s7", "s9"):
        assert got[sid]["status"]["status"] == "ok"
        np.testing.assert_allclose(got[sid]["features"], ref[sid]["features"], rtol=0, atol=2e-6)


def _cohort(n=9, crash=None):
    rng = np.random.default_rng(1)
    subs = []
    for i in range(n):
        ts = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 6)) + rng.standard_normal((50, 6))
        cov = {"crash": KillOnArrival()} if i == crash else {}
        subs.append(Subject(f"p{i}", ts.astype(np.float32), label=i % 2, site="a", covariates=cov))
    return Cohort(subs, name="mem")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_pool_worker_killed_by_a_signal_is_recorded_and_the_run_goes_on(tmp_path):
    process_cohort(cohort=_cohort(), output_dir=tmp_path / "ref", dynamic=False, micro_batch=3,
                         progress=False, plots=False)
    res = process_cohort(cohort=_cohort(crash=4), output_dir=tmp_path / "run", dynamic=False, micro_batch=3,
                         executor={"name": "process", "n_workers": 2, "mp_context": "fork"}, progress=False, plots=False)
    st = res.status.set_index("subject_id")
    assert st.loc["p4", ["status", "reason"]].tolist() == ["failed", "worker_lost"]
    assert (st.drop(index="p4")["status"] == "ok").all() and res.n_failed == 1
    errors = pd.read_parquet(tmp_path / "run" / "errors.parquet")
    assert errors[["subject_id", "stage", "error_type"]].values.tolist() == [["p4", "executor", "BrokenProcessPool"]]
    ids, x = read_features(tmp_path / "run" / "features.parquet")
    ids_ref, x_ref = read_features(tmp_path / "ref" / "features.parquet")
    keep = [ids_ref.index(i) for i in ids]
    assert sorted(ids) == sorted(i for i in ids_ref if i != "p4")
    np.testing.assert_array_equal(x, x_ref[keep])


def _lost_on_three(items):
    if 3 in items:
        raise RuntimeError("worker lost")  # what a KilledWorker looks like to the driver
    return [10 * i for i in items]


def test_dask_splits_a_failed_micro_batch_into_subjects():
    pytest.importorskip("distributed")
    from graphbrain.batch.executors import DaskExecutor

    ex = DaskExecutor(n_workers=1, processes=False)
    try:
        got = list(ex.map_unordered(_lost_on_three, [[0, 1], [2, 3, 5], [4]], max_in_flight=2,
                                    on_error=lambda item, err: [f"failed {item}: {err}"],
                                    split=lambda b: [[x] for x in b] if len(b) > 1 else None))
    finally:
        ex.close()
    assert sorted(map(str, got)) == sorted(map(str, [[0, 10], [20], [50], [40], ["failed [3]: worker lost"]]))
