"""Static and dynamic FC against nilearn's ConnectivityMeasure: same data, same run, interleaved.

Workloads:

* dynamic FC (PERFORMANCE.md): 100 ABIDE-PCP subjects (Harvard-Oxford, 111 ROIs), first
  196 TRs, window 50 TRs, stride 3 (49 windows -> 4,900 window matrices); nilearn
  ``ConnectivityMeasure(kind="correlation", EmpiricalCovariance)`` per subject against
  ``sliding_window_fc`` (numpy syrk kernel; torch on the CPU routes to it).
* static FC: all 323 ABIDE development subjects at their own scan lengths (7 lengths),
  every kind, Ledoit-Wolf (nilearn's default); and a synthetic 2,000-subject cohort
  (111 ROIs, 196 TRs), the four non-tangent kinds (``--cohort-kinds``). graphbrain =
  ``ConnectivityTransformer`` (default engine, input checks included) and the bare kernel;
  "floor: Gram only" times the per-subject BLAS ``syrk`` ``X^T X`` alone (float32 for
  correlation, float64 for the other kinds), which any exact method must do: its ratio to
  nilearn is the ceiling on this machine and load; "floor: kernel's padded Gram" times the
  Gram as the kernel takes it (batched per chunk of same-length subjects, ROIs padded to a
  multiple of 8, series prepared outside the timing). For correlation, "kernel, numpy only
  (no numba, the default)" times the kernel with its opt-in numba loops off (checked equal too).

Every pair is timed interleaved (reference, ours, reference, ours ...) with the same
thread count for every library (``--threads``, default 1: torch.set_num_threads plus
threadpoolctl for BLAS), medians of ``--repeats`` with min-max spread; results are
checked equal (1e-5) before any ratio is printed. The script also measures this
machine's memory bandwidth (numpy copy) and single-thread float32 GEMM rate, and prints
the memory-traffic and FLOP floor of the dynamic-FC workload and the fraction reached.

    python benchmarks/bench_fc.py [--repeats 5] [--threads 1] [--json out.json] [--quick]
"""

from __future__ import annotations

import os
import sys

_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from nilearn.connectome import ConnectivityMeasure  # noqa: E402
from sklearn.covariance import EmpiricalCovariance, LedoitWolf  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from graphbrain.connectome import kernels  # noqa: E402
from graphbrain.connectome.dynamic import sliding_window_fc  # noqa: E402
from graphbrain.connectome.static import ConnectivityTransformer  # noqa: E402

ABIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "abide_pcp"


def load_abide() -> list[np.ndarray] | None:
    if not (ABIDE / "ABIDE_pcp").is_dir():
        return None
    from graphbrain.data import read_abide_pcp

    return [s.timeseries for s in read_abide_pcp(ABIDE, constant_roi="keep")]


def synthetic(n: int, t: int, r: int = 111, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((r, r)) / np.sqrt(r)
    return [(rng.standard_normal((t, r)) @ mix).astype(np.float32) for _ in range(n)]


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, sync=lambda: None,
                warm: tuple[str, ...] = ()) -> dict[str, dict]:
    """``repeats`` rounds of every function in turn; median/min/max s. Functions not in
    ``warm`` (already run once, e.g. for the equality check) get one warm-up call first.
    The order is shuffled every round (fixed seed), so no function always runs right after
    the same one (the call right after nilearn's ran ~15% slower on the 2-core machine:
    caches and allocator state it leaves behind)."""
    for k, fn in fns.items():
        if k not in warm:
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    order = np.random.default_rng(0)
    for _ in range(repeats):
        for k in order.permutation(keys):
            fn = fns[k]
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: {"median_s": float(np.median(v)), "min_s": float(min(v)), "max_s": float(max(v)), "runs": len(v)}
            for k, v in times.items()}


def fmt(st: dict) -> str:
    return f"{st['median_s'] * 1e3:9.1f} ms [{st['min_s'] * 1e3:.1f}-{st['max_s'] * 1e3:.1f}]"


def machine_rates(repeats: int) -> dict[str, float]:
    """Memory bandwidth (numpy copy of 256 MiB: read + write) and float32 GEMM GFLOP/s."""
    a = np.ones(2**26, dtype=np.float32)
    b = np.empty_like(a)
    bw = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        np.copyto(b, a)
        bw.append(2 * a.nbytes / (time.perf_counter() - t0))
    m = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    gf = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        m @ m
        gf.append(2 * 1024**3 / (time.perf_counter() - t0))
    return {"copy_bandwidth_GBs": float(np.max(bw)) / 1e9, "gemm_f32_GFLOPs": float(np.max(gf)) / 1e9}


def _numpy_only(fn: Callable[[], object]) -> object:
    """``fn()`` with the kernels' numba loops switched off (the numpy fallback)."""
    before = kernels._ACCEL
    kernels._ACCEL = "numpy"
    try:
        return fn()
    finally:
        kernels._ACCEL = before


def _padded_gram_floor(data: list[np.ndarray], gdt: type) -> Callable[[], object]:
    """The kernel's Gram alone: centred series of each chunk (same length, ``kernels._CHUNK``
    subjects) stacked in a buffer with ``R`` padded as the kernel pads it; times the batched
    ``matmul`` calls only."""
    r = data[0].shape[1]
    p = kernels._padded(r)
    chunks = []
    for _t, idx in kernels._length_chunks(data, kernels._CHUNK):
        y = np.zeros((len(idx), data[idx[0]].shape[0], p), dtype=gdt)
        for j, i in enumerate(idx):
            y[j, :, :r] = data[i] - data[i].mean(0)
        chunks.append((y, np.empty((len(idx), p, p), dtype=gdt)))
    return lambda: [np.matmul(y.transpose(0, 2, 1), y, out=g) for y, g in chunks]


def first_call_cost() -> dict:
    """What a new process pays before the numba loops run: ``import numba`` and the first
    ``correlation`` call (8 small subjects) with a cold numba cache (JIT compile) and with
    the cache filled by that run, against the numpy path's first call. Fresh interpreters."""
    import subprocess
    import sys
    import tempfile

    code = ("import time, numpy as np; t0 = time.perf_counter(); import {imp}; t1 = time.perf_counter(); "
            "from graphbrain.connectome import kernels; kernels.set_accel('{mode}'); "
            "x = [np.random.default_rng(0).standard_normal((100, 20)).astype(np.float32) for _ in range(8)]; "
            "t2 = time.perf_counter(); kernels.connectivity(x, 'correlation'); "
            "print(t1 - t0, time.perf_counter() - t2)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for key, mode, imp in (("cold", "numba", "numba"), ("cached", "numba", "numba"), ("numpy", "numpy", "math")):
            res = subprocess.run([sys.executable, "-c", code.format(mode=mode, imp=imp)], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            out[key] = [float(v) for v in res]
    return {"import_numba_s": out["cached"][0], "cold_first_call_s": out["cold"][1],
            "cached_first_call_s": out["cached"][1], "numpy_first_call_s": out["numpy"][1]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=100, help="subjects for dynamic FC")
    ap.add_argument("--timepoints", type=int, default=196)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="threads for every library (BLAS and torch)")
    ap.add_argument("--cohort", type=int, default=2000, help="synthetic static-FC cohort size")
    ap.add_argument("--tangent-subjects", type=int, default=323, help="ABIDE subjects for the tangent kind")
    ap.add_argument("--cohort-kinds", default="correlation,partial correlation,covariance,precision",
                    help="static kinds on the synthetic cohort (comma-separated; tangent there is slow in nilearn)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (a smoke run)")
    ap.add_argument("--skip-dynamic", action="store_true", help="static FC only")
    ap.add_argument("--kinds", default="correlation,partial correlation,covariance,precision,tangent",
                    help="static kinds on ABIDE (comma-separated)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--accel", default="auto", choices=kernels.ACCEL_MODES,
                    help="kernels' correlation path for 'ConnectivityTransformer' and 'kernel' (library default: "
                         "numpy; auto = the opt-in numba loops when numba is installed)")
    args = ap.parse_args(argv)
    if args.quick:
        args.subjects, args.cohort, args.repeats, args.tangent_subjects = 10, 50, 2, 20
    kernels.set_accel(args.accel)
    if kernels._fused() is not None:
        fc = first_call_cost()
        print(f"kernels accel {args.accel} -> numba loops (opt-in). Once per process: import numba "
              f"{fc['import_numba_s']:.2f} s; first correlation call {fc['cold_first_call_s']:.2f} s with a cold "
              f"numba cache (compile), {fc['cached_first_call_s']:.2f} s from the cache; numpy path's first call "
              f"{fc['numpy_first_call_s']:.2f} s", flush=True)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    res: dict = {"threads": args.threads, "machine": f"{platform.machine()} {os.cpu_count()} cores",
                 "load_average": os.getloadavg(), "torch": torch.__version__, "numpy": np.__version__}
    print(f"machine: {res['machine']}, load average {res['load_average']}, torch {torch.__version__}, "
          f"numpy {np.__version__}, {args.threads} thread(s) for every library")

    abide = None if args.quick else load_abide()
    t, w, s = args.timepoints, args.window, args.stride
    if abide is not None:
        dyn = [x[:t] for x in abide if x.shape[0] >= t][: args.subjects]
        desc = f"ABIDE-PCP, {len(dyn)} subjects, 111 ROIs, {t} TRs"
    else:
        dyn = synthetic(args.subjects, t)
        desc = f"synthetic, {len(dyn)} subjects, 111 ROIs, {t} TRs"
    x = np.stack(dyn).astype(np.float32)
    if args.skip_dynamic:
        x = x[:0]
    n, _, r = x.shape
    starts = range(0, t - w + 1, s)
    nw = len(starts)
    emp = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())

    def nilearn_dyn():
        return np.stack([emp.fit_transform([xi[a : a + w] for a in starts]) for xi in x])

    xt = torch.from_numpy(x)
    if args.skip_dynamic:
        return _static(args, abide, res)
    raw = nilearn_dyn()
    # A constant window signal has undefined correlations: NaN in nilearn, 0 in graphbrain
    # (its diagonal too, by sliding_window_fc's contract; nilearn writes 1 there).
    undef = np.isnan(raw).sum(-1) == raw.shape[-1] - 1  # (N, W, R): a constant ROI's whole row
    n_undefined = int(np.isnan(raw).sum())
    ref = np.nan_to_num(raw)
    b_, w_, r_ = np.nonzero(undef)
    ref[b_, w_, r_, r_] = 0.0
    err_np = float(np.abs(sliding_window_fc(x, w, s, backend="numpy") - ref).max())
    err_t = float(np.abs(sliding_window_fc(xt, w, s).numpy() - ref).max())
    if not max(err_np, err_t) <= 1e-5:  # also fails on NaN
        raise SystemExit(f"dynamic FC differs from nilearn: {err_np:.2e} / {err_t:.2e}")
    st = interleaved({
        "nilearn": nilearn_dyn,
        "graphbrain numpy": lambda: sliding_window_fc(x, w, s, backend="numpy"),
        "graphbrain torch (cpu)": lambda: sliding_window_fc(xt, w, s),
    }, max(1, args.repeats // 2 + 1), warm=("nilearn", "graphbrain numpy", "graphbrain torch (cpu)"))
    rates = machine_rates(args.repeats)
    out_bytes = n * nw * r * r * 4
    in_bytes = x.nbytes
    flops_gemm = n * nw * 2 * w * r * r  # general matmul of each window
    flops_syrk = flops_gemm / 2  # one triangle
    mem_floor = (out_bytes + in_bytes) / (rates["copy_bandwidth_GBs"] * 1e9)
    flop_floor = flops_syrk / (rates["gemm_f32_GFLOPs"] * 1e9)
    floor = max(mem_floor, flop_floor)
    best = min(st["graphbrain numpy"]["median_s"], st["graphbrain torch (cpu)"]["median_s"])
    print(f"\ndynamic FC: {desc}; {n * nw} windows ({n} x {nw}), window {w}, stride {s}; "
          f"max |diff| vs nilearn numpy {err_np:.1e}, torch {err_t:.1e} ({n_undefined} undefined entries of "
          f"constant window signals: NaN in nilearn, 0 here, compared as 0)")
    for k, v in st.items():
        print(f"  {k:<26} {fmt(v)}  {st['nilearn']['median_s'] / v['median_s']:7.1f}x nilearn")
    print(f"  machine: copy bandwidth {rates['copy_bandwidth_GBs']:.1f} GB/s, float32 GEMM "
          f"{rates['gemm_f32_GFLOPs']:.1f} GFLOP/s ({args.threads} thread)")
    print(f"  floor: memory {(out_bytes + in_bytes) / 1e6:.0f} MB -> {mem_floor * 1e3:.1f} ms; "
          f"FLOPs {flops_syrk / 1e9:.2f} GFLOP (syrk; gemm {flops_gemm / 1e9:.2f}) -> {flop_floor * 1e3:.1f} ms; "
          f"reached {floor / best:.0%} of the floor")
    res["dynamic"] = {"data": desc, "windows": n * nw, "timing": st, "max_abs_diff": max(err_np, err_t),
                      "ratio": st["nilearn"]["median_s"] / best, "rates": rates,
                      "memory_floor_s": mem_floor, "flop_floor_s": flop_floor, "fraction_of_floor": floor / best}

    return _static(args, abide, res)


def _static(args: argparse.Namespace, abide: list[np.ndarray] | None, res: dict) -> dict:
    t = args.timepoints
    kinds_abide = [k.strip() for k in args.kinds.split(",")]
    static_sets = []
    if abide is not None:
        static_sets.append(("ABIDE 323", abide, kinds_abide))
    else:
        static_sets.append(("synthetic mixed lengths", synthetic(args.subjects * 3, t) +
                            synthetic(args.subjects, t + 40, seed=1), ["correlation", "partial correlation",
                                                                       "covariance", "precision", "tangent"]))
    static_sets.append((f"synthetic {args.cohort}", synthetic(args.cohort, t, seed=2),
                        [k.strip() for k in args.cohort_kinds.split(",") if k.strip()]))
    res["static"] = {}
    print()
    for name, series, kinds in static_sets:
        series64 = [np.asarray(a, dtype=np.float64) for a in series]
        for kind in kinds:
            data = series[: args.tangent_subjects] if kind == "tangent" else series
            data64 = series64[: len(data)]
            reps = 1 if kind == "tangent" else args.repeats

            def nil(k=kind, d=data64):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return np.asarray(ConnectivityMeasure(kind=k, cov_estimator=LedoitWolf(store_precision=False))
                                      .fit_transform(d))

            def ours(k=kind, d=data):
                return ConnectivityTransformer(kind=k).fit(d).transform(d)

            fns = {"nilearn": nil, "ConnectivityTransformer": ours}
            if kind != "tangent":
                fns["kernel"] = lambda k=kind, d=data: kernels.connectivity(d, k, out_dtype="float32", finite=True)
                # the floor of any exact method: the Gram X^T X of every subject alone (one BLAS
                # syrk each, in the dtype the kernel accumulates in), nothing else
                gdt = np.float32 if kind == "correlation" else np.float64
                fns["floor: Gram only"] = lambda d=data, gdt=gdt: [np.matmul(x.T, x) for x in
                                                                   (np.asarray(a, dtype=gdt) for a in d)]
                # the Gram as the kernel takes it: one batched call per chunk of same-length
                # subjects on their centred series in a zero-padded buffer (built outside the timing)
                fns["floor: kernel's padded Gram"] = _padded_gram_floor(data, gdt)
                if kind == "correlation" and kernels._fused() is not None:
                    fns["kernel, numpy only (no numba, the default)"] = lambda k=kind, d=data: _numpy_only(
                        lambda: kernels.connectivity(d, k, out_dtype="float32", finite=True))
            ref = np.nan_to_num(nil())
            got = ours()
            scale = max(1.0, float(np.abs(ref).max())) if kind in ("covariance", "precision") else 1.0
            err = float(np.abs(got - ref).max()) / scale
            if "kernel, numpy only (no numba, the default)" in fns:  # the default path must agree as well
                err = max(err, float(np.abs(np.nan_to_num(fns["kernel, numpy only (no numba, the default)"]())
                                         - ref).max()))
            if not err <= 1e-5:
                raise SystemExit(f"static {kind} on {name} differs from nilearn: {err:.2e}")
            stt = interleaved(fns, reps, warm=("nilearn", "ConnectivityTransformer"))
            base = stt["nilearn"]["median_s"]
            line = "  ".join(f"{k} {fmt(v)} ({base / v['median_s']:.1f}x)" for k, v in stt.items() if k != "nilearn")
            print(f"static {kind:<19} {name} ({len(data)} subj.): nilearn {fmt(stt['nilearn'])}  {line}  "
                  f"max |diff|{'/scale' if scale > 1 else ''} {err:.1e}", flush=True)
            res["static"][f"{name}/{kind}"] = {"subjects": len(data), "timing": stt, "max_abs_diff": err,
                                              "ratio": base / stt["ConnectivityTransformer"]["median_s"]}
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
