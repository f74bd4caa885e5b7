"""Batch cohort processing: throughput and peak memory, serial / process pool / Dask.

A synthetic cohort of ROI time series (default 111 ROIs x 200 TRs, the Harvard-Oxford
size of ABIDE-PCP) is written as one ``.npy`` per subject plus a labels table with a
phenotypic mean-FD column; ``process_cohort`` then runs end to end (read -> validate ->
QC -> static Ledoit-Wolf correlation -> dynamic FC, window 50 / stride 10 -> Parquet
parts + content-hash store) in a fresh Python process per (executor, size), so the peak
resident memory of each run is measured on its own:

* ``driver_peak_mb``: the driver process (with ``serial`` it does all the work);
* ``worker_peak_mb``: the largest finished child (pool workers, Dask nanny/worker).

Reference in the same run: the in-memory way (``load_cohort`` of every subject, then the
same static FC for all of them at once), whose peak grows with the cohort. Memory should
stay flat from 500 to 2,000 subjects for the batch runs; the reference should not.

    python benchmarks/bench_batch.py --sizes 500 1000 2000 --executors serial process dask \
        --workers 2 --out /tmp/gb_bench          # about 15 min on 2 busy cores

Prints a Markdown table and writes ``results.json`` in ``--out``.
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


def child(args: argparse.Namespace) -> None:
    """One measured run (in its own process)."""
    folder = Path(args.data)
    n = args.n
    files = [str(folder / "ts" / f"sub{i:05d}.npy") for i in range(n)]
    import graphbrain.batch.runner  # noqa: F401 - imports are not part of the measured time
    import graphbrain.connectome.static  # noqa: F401

    t0 = time.perf_counter()
    if args.executor == "inmemory":
        from graphbrain.connectome.static import ConnectivityTransformer
        from graphbrain.data import load_cohort

        cohort = load_cohort("precomputed", path_or_files=files, labels_table=str(labels_for(folder, n)))
        ts = cohort.timeseries()
        fc = ConnectivityTransformer(kind="correlation", vectorize=True).fit(ts).transform(ts)
        out = {"ok": int(fc.shape[0])}
    else:
        from graphbrain.batch.runner import process_cohort

        spec = "serial" if args.executor == "serial" else {"name": args.executor, "n_workers": args.workers}
        res = process_cohort(
            {"source": "precomputed", "path_or_files": files, "labels_table": str(labels_for(folder, n))},
            output_dir=args.run_dir, connectome={"window": 50, "stride": 10}, qc={"max_mean_fd": 0.3},
            executor=spec, batch_size=64, progress=False, plots=False, overwrite=True,
        )
        out = {"ok": res.counts["ok"], "excluded": res.counts["excluded"], "failed": res.counts["failed"]}
    seconds = time.perf_counter() - t0
    out.update(
        executor=args.executor, n=n, seconds=seconds, subjects_per_s=n / seconds,
        driver_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        worker_peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    ap.add_argument("--executors", nargs="+", default=["serial", "process", "dask"])
    ap.add_argument("--reference-sizes", type=int, nargs="*", default=None,
                    help="sizes for the in-memory reference (default: the smallest and largest)")
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
    ref_sizes = args.reference_sizes if args.reference_sizes is not None else sorted({min(args.sizes), max(args.sizes)})
    plan = [(e, n) for e in args.executors for n in args.sizes] + [("inmemory", n) for n in ref_sizes]
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for executor, n in plan:
        run_dir = out / f"run_{executor}_{n}"
        cmd = [sys.executable, __file__, "--child", "--executor", executor, "--n", str(n), "--data", str(data),
               "--run-dir", str(run_dir), "--workers", str(args.workers)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{executor} n={n} failed:\n{proc.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(line[0][len("RESULT "):])
        results.append(r)
        print(f"{executor:>9} n={n:>5}: {r['subjects_per_s']:7.1f} subjects/s, {r['seconds']:7.1f} s, "
              f"driver peak {r['driver_peak_mb']:7.0f} MB, worker peak {r['worker_peak_mb']:7.0f} MB", flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| executor | subjects | subjects/s | seconds | driver peak MB | worker peak MB |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['executor']} | {r['n']} | {r['subjects_per_s']:.1f} | {r['seconds']:.0f} | "
              f"{r['driver_peak_mb']:.0f} | {r['worker_peak_mb']:.0f} |")
    for e in [*args.executors, "inmemory"]:
        rs = sorted((r for r in results if r["executor"] == e), key=lambda r: r["n"])
        if len(rs) >= 2:
            print(f"{e}: driver peak {rs[-1]['n']} / {rs[0]['n']} subjects = "
                  f"{rs[-1]['driver_peak_mb'] / rs[0]['driver_peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
