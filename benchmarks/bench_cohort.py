"""Batch cohort processing: throughput and peak memory, serial / process pool / Dask,
against the in-memory path on the same subjects, in one run (issue 12).

A synthetic cohort of ROI time series (default 2,000 subjects, 111 ROIs x 200 TRs, the
Harvard-Oxford size of ABIDE-PCP) is written as one ``.npy`` per subject plus a labels
table with a phenotypic mean-FD column. Each measured run is a fresh Python process (so
its peak resident memory is its own):

* ``serial`` / ``process`` / ``dask``: ``graphbrain.batch.process_cohort`` end to end
  (read -> validate -> QC -> static Ledoit-Wolf correlation -> dynamic FC, window 50 /
  stride 10 -> Parquet parts + content-hash store -> consolidated tables), with
  ``batch.micro_batch`` subjects per task through the batched FC kernels; ``--micro``
  sets the micro-batch sizes, ``--per-subject`` adds serial runs with micro_batch=1
  (one task per subject: what the batch layer did before micro-batches);
* ``inmemory``: the in-memory path, ``load_cohort("precomputed")`` of every subject,
  then ``graphbrain.connectome`` on the whole cohort: static FC (the same estimator,
  batched kernels) and dynamic FC (``sliding_window_fc``, same window, batches of 64
  subjects, upper triangles kept); no QC, nothing written. Its static-only time is
  reported too (``static_seconds``).

``driver_peak_mb`` is the measured process's peak RSS (with ``serial`` it does all the
work), ``worker_peak_mb`` the largest finished child (pool workers, Dask nanny/worker).
Memory should stay flat from the smallest to the largest size for the batch runs; the
in-memory path grows with the cohort.

    python benchmarks/bench_cohort.py --sizes 500 2000 --out /tmp/gb_bench   # ~10-20 min, 2 cores

Prints a Markdown table and writes ``results.json`` and ``results.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW, STRIDE = 50, 10


def write_cohort(folder: Path, n: int, n_rois: int, n_trs: int, seed: int = 0) -> None:
    ts_dir = folder / "ts"
    if (folder / "done").exists() and len(list(ts_dir.glob("*.npy"))) >= n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    ts_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        mix = rng.standard_normal((8, n_rois))
        x = rng.standard_normal((n_trs, 8)) @ mix + rng.standard_normal((n_trs, n_rois))
        np.save(ts_dir / f"sub{i:05d}.npy", x.astype(np.float32))
    (folder / "done").write_text(str(n))


def labels_for(folder: Path, n: int) -> Path:
    path = folder / f"labels_{n}.csv"
    rng = np.random.default_rng(1)
    pd.DataFrame({
        "subject_id": [f"sub{i:05d}" for i in range(n)],
        "label": np.arange(n) % 2,
        "site": [f"site{i % 7}" for i in range(n)],
        "func_mean_fd": rng.gamma(2.0, 0.05, n),
    }).to_csv(path, index=False)
    return path


def in_memory(files: list[str], labels: Path) -> dict:
    """The in-memory path: read the whole cohort, then FC of all subjects at once."""
    from graphbrain.connectome.dynamic import sliding_window_fc
    from graphbrain.connectome.static import ConnectivityTransformer
    from graphbrain.data import load_cohort

    t0 = time.perf_counter()
    cohort = load_cohort("precomputed", path_or_files=files, labels_table=str(labels))
    ts = cohort.timeseries()
    t1 = time.perf_counter()
    fc = ConnectivityTransformer(kind="correlation", vectorize=True).fit(ts).transform(ts)
    t2 = time.perf_counter()
    r = ts[0].shape[1]
    iu = np.triu_indices(r, k=1)
    dyn = []
    for start in range(0, len(ts), 64):
        batch = np.stack(ts[start:start + 64])  # one scan length here
        d = sliding_window_fc(batch, WINDOW, STRIDE, backend="numpy")
        dyn.append(d[..., iu[0], iu[1]])
    dyn = np.concatenate(dyn)
    t3 = time.perf_counter()
    return {"ok": int(fc.shape[0]), "read_seconds": t1 - t0, "static_seconds": t2 - t1,
            "dynamic_seconds": t3 - t2, "dynamic_shape": list(dyn.shape)}


def worker_costs(files: list[str], micro: int, repeats: int = 2) -> dict:
    """Where a subject's time goes in a worker (no driver): the FC compute one subject at a
    time vs in micro-batches, and the worker end to end (read, validate, QC, hash, FC,
    store writes) per subject vs per micro-batch; milliseconds per subject, best of
    ``repeats``."""
    import tempfile

    from graphbrain.batch import worker
    from graphbrain.batch.tasks import plan_tasks

    tasks = plan_tasks({"source": "precomputed", "path_or_files": files}).tasks
    xs = [np.load(f) for f in files]
    n = len(xs)
    out: dict[str, float] = {}

    def best(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(dir=Path(files[0]).parent.parent) as d:
                settings = worker.Settings(cache_dir=d, window=WINDOW, stride=STRIDE)
                t = time.perf_counter()
                fn(settings)
                times.append(time.perf_counter() - t)
        out[name] = 1e3 * min(times) / n

    chunks = [slice(i, i + micro) for i in range(0, n, micro)]
    best("static_fc_per_subject_ms", lambda s: [worker._static_fc(x, s) for x in xs])
    best("static_fc_micro_ms", lambda s: [worker._static_fc(xs[c], s) for c in chunks])
    best("dynamic_fc_per_subject_ms", lambda s: [worker._dynamic_fc(x, None, s) for x in xs])
    best("dynamic_fc_micro_ms", lambda s: [worker._dynamic_fc(np.stack(xs[c]), None, s) for c in chunks])
    best("worker_per_subject_ms", lambda s: [worker.process_subject(t, s) for t in tasks])
    best("worker_micro_ms", lambda s: [worker.process_batch(tasks[c], s) for c in chunks])
    out["timed_subjects"] = n
    return out


def child(args: argparse.Namespace) -> None:
    """One measured run (in its own process)."""
    folder = Path(args.data)
    n = args.n
    micro = args.micro[0]
    files = [str(folder / "ts" / f"sub{i:05d}.npy") for i in range(n)]
    labels = labels_for(folder, n)
    import graphbrain.batch.runner  # noqa: F401 - imports are not part of the measured time
    import graphbrain.connectome.static  # noqa: F401

    t0 = time.perf_counter()
    if args.executor == "inmemory":
        out = in_memory(files, labels)
    elif args.executor == "worker":
        out = worker_costs(files[:256], micro)
    else:
        from graphbrain.batch.runner import process_cohort

        spec = "serial" if args.executor == "serial" else {"name": args.executor, "n_workers": args.workers}
        res = process_cohort(
            {"source": "precomputed", "path_or_files": files, "labels_table": str(labels)},
            output_dir=args.run_dir, connectome={"window": WINDOW, "stride": STRIDE}, qc={"max_mean_fd": 0.3},
            executor=spec, batch_size=64, micro_batch=micro, progress=False, plots=False, overwrite=True,
        )
        out = {"ok": res.counts["ok"], "excluded": res.counts["excluded"], "failed": res.counts["failed"]}
    seconds = time.perf_counter() - t0
    out.update(
        executor=args.executor, n=n, micro_batch=micro if args.executor != "inmemory" else None,
        seconds=seconds, subjects_per_s=n / seconds,
        driver_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        worker_peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )
    print("RESULT " + json.dumps(out), flush=True)


def _label(r: dict) -> str:
    if r["executor"] == "worker":
        return f"worker costs, micro_batch={r['micro_batch']}"
    if r["executor"] == "inmemory":
        return "in memory (`graphbrain.connectome`, static + dynamic)"
    return f"{r['executor']}, micro_batch={r['micro_batch']}"


def table(results: list[dict], load: str) -> str:
    lines = [f"Load average during the runs: {load}.", "",
             "| run | subjects | subjects/s | seconds | driver peak MB | worker peak MB |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r["executor"] == "worker":
            continue
        lines.append(f"| {_label(r)} | {r['n']:,} | {r['subjects_per_s']:.1f} | {r['seconds']:.1f} | "
                     f"{r['driver_peak_mb']:.0f} | {r['worker_peak_mb']:.0f} |" if r["executor"] != "inmemory" else
                     f"| {_label(r)} | {r['n']:,} | {r['subjects_per_s']:.1f} | {r['seconds']:.1f} "
                     f"(read {r['read_seconds']:.1f}, static {r['static_seconds']:.1f}, dynamic "
                     f"{r['dynamic_seconds']:.1f}) | {r['driver_peak_mb']:.0f} | - |")
    for r in results:
        if r["executor"] == "worker":
            lines += ["", f"Worker costs (no driver; {r['timed_subjects']} subjects, micro_batch={r['micro_batch']}), "
                      "ms per subject, "
                      "one subject at a time / micro-batched: static FC "
                      f"{r['static_fc_per_subject_ms']:.2f} / {r['static_fc_micro_ms']:.2f}, dynamic FC "
                      f"{r['dynamic_fc_per_subject_ms']:.2f} / {r['dynamic_fc_micro_ms']:.2f}, worker end to end "
                      f"(read, validate, QC, hash, FC, store writes) {r['worker_per_subject_ms']:.2f} / "
                      f"{r['worker_micro_ms']:.2f}."]
    results = [r for r in results if r["executor"] != "worker"]
    lines.append("")
    keys = sorted({(r["executor"], r["micro_batch"]) for r in results}, key=str)
    for e, m in keys:
        rs = sorted((r for r in results if (r["executor"], r["micro_batch"]) == (e, m)), key=lambda r: r["n"])
        if len(rs) >= 2:
            lines.append(f"* {_label(rs[0])}: peak memory at {rs[-1]['n']:,} / at {rs[0]['n']:,} subjects = "
                         f"{rs[-1]['driver_peak_mb'] / rs[0]['driver_peak_mb']:.2f}x (driver)")
    ref = {r["n"]: r for r in results if r["executor"] == "inmemory"}
    for r in results:
        if r["executor"] != "inmemory" and r["n"] in ref:
            lines.append(f"* {_label(r)}, {r['n']:,} subjects: {r['subjects_per_s'] / ref[r['n']]['subjects_per_s']:.2f}x "
                         "the in-memory path's subjects/s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--executors", nargs="+", default=["serial", "process", "dask"])
    ap.add_argument("--micro", type=int, nargs="+", default=[16], help="micro-batch sizes of the batch runs")
    ap.add_argument("--per-subject", action=argparse.BooleanOptionalAction, default=True,
                    help="also run serial with micro_batch=1 (one task per subject)")
    ap.add_argument("--reference-sizes", type=int, nargs="*", default=None,
                    help="sizes for the in-memory path (default: every size)")
    ap.add_argument("--worker-costs", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the worker alone (FC compute and end to end, per subject vs micro-batch)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rois", type=int, default=111)
    ap.add_argument("--trs", type=int, default=200)
    ap.add_argument("--out", default="/tmp/gb_bench")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--executor", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    t = time.perf_counter()
    write_cohort(data, max(args.sizes), args.rois, args.trs)
    print(f"cohort of {max(args.sizes)} subjects ({args.rois} ROIs x {args.trs} TRs) ready "
          f"in {time.perf_counter() - t:.0f} s", flush=True)
    ref_sizes = args.reference_sizes if args.reference_sizes is not None else args.sizes
    plan = []
    for n in args.sizes:  # sizes outermost: each size's runs see about the same machine load
        plan += [(e, n, m) for e in args.executors for m in args.micro]
        if args.per_subject and 1 not in args.micro:
            plan.append(("serial", n, 1))
        if n in ref_sizes:
            plan.append(("inmemory", n, 0))
    if args.worker_costs:
        plan.append(("worker", max(args.sizes), max(args.micro)))
    results = []
    loads = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for executor, n, micro in plan:
        run_dir = out / f"run_{executor}_{n}_{micro}"
        cmd = [sys.executable, __file__, "--child", "--executor", executor, "--n", str(n), "--data", str(data),
               "--run-dir", str(run_dir), "--workers", str(args.workers), "--micro", str(max(micro, 1))]
        loads.append(os.getloadavg()[0])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{executor} n={n} failed:\n{proc.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(line[0][len("RESULT "):])
        results.append(r)
        print(f"{_label(r):>58} n={n:>5}: {r['subjects_per_s']:7.1f} subjects/s, {r['seconds']:7.1f} s, "
              f"driver peak {r['driver_peak_mb']:6.0f} MB, worker peak {r['worker_peak_mb']:6.0f} MB", flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    load = f"{min(loads):.1f}-{max(loads):.1f} (1-minute, 2 cores)" if loads else "unknown"
    md = table(results, load)
    (out / "results.json").write_text(json.dumps({"results": results, "load": load}, indent=2))
    (out / "results.md").write_text(md + "\n")
    print("\n" + md)


if __name__ == "__main__":
    main()
