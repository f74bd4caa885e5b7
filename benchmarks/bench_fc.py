"""Static and dynamic FC throughput against nilearn's ConnectivityMeasure, same data, same run.

Workload (as in PERFORMANCE.md): 100 ABIDE-PCP subjects (Harvard-Oxford, 111 ROIs),
first 196 TRs; dynamic FC with window 50 TRs, stride 3 (49 windows -> 4,900 window
matrices). Uses ../shared/data/abide_pcp when present, a synthetic cohort of the same
shape otherwise. Results are checked equal before any ratio is printed.

    python benchmarks/bench_fc.py [--subjects 100] [--repeats 5] [--device cuda]
"""

from __future__ import annotations

import os
import sys

# Same thread count for every library, set before numpy/torch load their BLAS: on a shared
# 2-core machine, multi-threaded BLAS spin-waits and distorts the comparison.
_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from nilearn.connectome import ConnectivityMeasure  # noqa: E402
from sklearn.covariance import EmpiricalCovariance  # noqa: E402

from graphbrain.connectome.dynamic import sliding_window_fc  # noqa: E402
from graphbrain.connectome.static import ConnectivityTransformer  # noqa: E402

ABIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "abide_pcp"


def load(n: int, t: int) -> tuple[np.ndarray, str]:
    if (ABIDE / "ABIDE_pcp").is_dir():
        from graphbrain.data import read_abide_pcp

        cohort = read_abide_pcp(ABIDE)
        ts = [s.timeseries[:t] for s in cohort if s.n_timepoints >= t][:n]
        return np.stack(ts).astype(np.float32), f"ABIDE-PCP ({len(ts)} subjects, {ts[0].shape[1]} ROIs, {t} TRs)"
    from graphbrain.data import make_synthetic_cohort

    c = make_synthetic_cohort(n_subjects=n, n_rois=111, n_timepoints=t)
    return np.stack(c.timeseries()), f"synthetic ({n} subjects, 111 ROIs, {t} TRs)"


def best(fn, repeats: int, sync=lambda: None) -> float:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--timepoints", type=int, default=196)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="threads for every library (BLAS and torch)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, desc = load(args.subjects, args.timepoints)
    n, t, r = x.shape
    w, s = args.window, args.stride
    starts = range(0, t - w + 1, s)
    print(f"data: {desc}; machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, device {args.device}")

    # --- dynamic FC ---
    cm = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())

    def nilearn_dyn():
        return [cm.fit_transform([xi[a : a + w] for a in starts]) for xi in x]

    ref = np.stack(nilearn_dyn())
    t_nil = best(nilearn_dyn, max(1, args.repeats // 2))

    xt = torch.from_numpy(x).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    out = sliding_window_fc(xt, w, s)
    err = float(np.abs(out.cpu().numpy() - ref).max())
    if err > 1e-5:
        raise SystemExit(f"dynamic FC differs from nilearn: max abs error {err:.2e}")
    t_gb = best(lambda: sliding_window_fc(xt, w, s), args.repeats, sync)
    t_np = best(lambda: sliding_window_fc(x, w, s, backend="numpy"), args.repeats)
    nwin = ref.shape[1] * n
    print(f"dynamic FC, {nwin} windows ({n} x {ref.shape[1]}), window {w}, stride {s}; max |diff| vs nilearn {err:.1e}")
    print(f"  nilearn ConnectivityMeasure per subject : {t_nil * 1e3:9.2f} ms")
    print(f"  graphbrain numpy back end               : {t_np * 1e3:9.2f} ms  ({t_nil / t_np:7.1f}x nilearn)")
    print(f"  graphbrain torch back end ({args.device:<4})        : {t_gb * 1e3:9.2f} ms  ({t_nil / t_gb:7.1f}x nilearn)")

    # --- static FC ---
    series = list(x)
    res = {}
    for kind in ("correlation", "tangent"):
        ref_cm = ConnectivityMeasure(kind=kind)
        ref_out = ref_cm.fit_transform(series)
        t_ref = best(lambda k=kind: ConnectivityMeasure(kind=k).fit_transform(series), 3)
        ours = ConnectivityTransformer(kind=kind)
        got = ours.fit(series).transform(series)
        serr = float(np.abs(got - ref_out).max())
        if serr > 1e-4:
            raise SystemExit(f"static {kind} differs from nilearn: {serr:.2e}")
        t_ours = best(lambda k=kind: ConnectivityTransformer(kind=k).fit(series).transform(series), 3)
        res[kind] = (t_ref, t_ours, serr)
        print(f"static {kind:<12} nilearn {t_ref * 1e3:8.1f} ms, graphbrain {t_ours * 1e3:8.1f} ms "
              f"({t_ref / t_ours:4.2f}x; max |diff| {serr:.1e})")
    if args.json:
        args.json.write_text(json.dumps({
            "data": desc, "device": args.device, "threads": args.threads,
            "dynamic": {"nilearn_s": t_nil, "numpy_s": t_np, "torch_s": t_gb, "ratio_torch": t_nil / t_gb,
                        "max_abs_diff": err},
            "static": {k: {"nilearn_s": a, "graphbrain_s": b, "max_abs_diff": e} for k, (a, b, e) in res.items()},
        }, indent=2))


if __name__ == "__main__":
    main()
