"""GPU suite: every speed figure of issue 13 in one run, written as JSON and a Markdown table.

Measures, on one device (CUDA when present), same data, results checked equal first:

1. dynamic FC: graphbrain ``sliding_window_fc`` vs STAGIN's ``process_dynamic_fc`` window
   loop (original code from ../shared/peers/stagin, on the same device) vs nilearn (CPU);
2. static FC: graphbrain's batched kernels (torch back end on the device) vs nilearn (CPU);
3. STAGIN training subjects/s: original code at minibatch 3 vs graphbrain at minibatch 3
   (float32) and at the best of ``--batches`` with bf16 autocast (CUDA) / float32 (CPU);
4. STAGIN inference subjects/s at that batch;
5. peak memory of each section (``torch.cuda.max_memory_allocated``; on the CPU the
   process's peak RSS, which only grows).

Workload by default (``../shared/PERFORMANCE.md``): 100 subjects x 196 TRs x 111 ROIs (ABIDE
when present, else synthetic), window 50, stride 3 (4,900 windows). ``--small`` shrinks
everything so the suite runs on a CPU in seconds (CI runs it that way; see
tests/benchmarks/test_gpu_suite.py). The original-code parts are skipped, and say so,
when ../shared/peers/stagin or einops is absent.

    python benchmarks/gpu_suite.py [--device cuda] [--out benchmarks/gpu_suite_out] [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import graphbrain_step_fn, load_original, original_step_fn  # noqa: E402

from graphbrain.connectome import kernels  # noqa: E402
from graphbrain.connectome.dynamic import sliding_window_fc  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS, MiB


def timeit(fn: Callable[[], Any], device: str, seconds: float, min_runs: int = 3) -> dict[str, float]:
    """Median / min / max seconds per call after one warm-up call."""
    fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return {"median_s": float(np.median(times)), "min_s": float(min(times)), "max_s": float(max(times)),
            "runs": len(times)}


def _data(n: int, t: int, r: int, small: bool) -> tuple[np.ndarray, str]:
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "abide_pcp"
    if not small and (root / "ABIDE_pcp").is_dir():
        from graphbrain.data import read_abide_pcp

        ts = [s.timeseries[:t] for s in read_abide_pcp(root) if s.n_timepoints >= t and s.n_rois == r][:n]
        if len(ts) == n:
            return np.stack(ts).astype(np.float32), f"ABIDE-PCP ({n} subjects, {r} ROIs, {t} TRs)"
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((r, r)) / np.sqrt(r)
    x = (rng.standard_normal((n, t, r)) @ mix).astype(np.float32)
    return x, f"synthetic ({n} subjects, {r} ROIs, {t} TRs)"


def dynamic_section(x: np.ndarray, w: int, s: int, device: str, seconds: float, orig: Any) -> dict:
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance

    n, t, r = x.shape
    xt = torch.from_numpy(x).to(device)
    starts = range(0, t - w + 1, s)
    emp = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())

    def nil() -> np.ndarray:
        return np.stack([emp.fit_transform([xi[a : a + w] for a in starts]) for xi in x])

    ref = nil()
    _peak_reset(device)
    got = sliding_window_fc(xt, w, s)
    err = float((got.cpu() - torch.from_numpy(ref)).abs().max())
    if err > 1e-5:
        raise SystemExit(f"dynamic FC differs from nilearn: {err:.2e}")
    res: dict[str, Any] = {"windows": n * len(starts), "max_abs_diff_vs_nilearn": err}
    res["graphbrain"] = timeit(lambda: sliding_window_fc(xt, w, s), device, seconds)
    res["graphbrain"]["peak_mib"] = _peak_mib(device)
    res["nilearn_cpu"] = timeit(nil, "cpu", seconds, min_runs=1)
    if orig is not None:
        # STAGIN's loop needs one extra TR past the last window start (range(0, T - w, s)).
        nw_orig = len(range(0, t - w, s))
        dyn, _ = orig[1].process_dynamic_fc(xt, w, s)
        d = float((dyn[:, :nw_orig].cpu() - torch.from_numpy(ref[:, :nw_orig])).abs().max())
        res["stagin_loop_max_abs_diff"] = d
        res["stagin_loop"] = timeit(lambda: orig[1].process_dynamic_fc(xt, w, s), device, seconds, min_runs=1)
        res["stagin_loop"]["windows"] = n * nw_orig
        res["ratio_vs_stagin_loop"] = (res["stagin_loop"]["median_s"] / nw_orig) / (
            res["graphbrain"]["median_s"] / len(starts))  # per window (the loop makes one fewer)
    else:
        res["stagin_loop"] = "skipped: original STAGIN code (../shared/peers/stagin) or einops absent"
    res["ratio_vs_nilearn"] = res["nilearn_cpu"]["median_s"] / res["graphbrain"]["median_s"]
    return res


def static_section(x: np.ndarray, device: str, seconds: float) -> dict:
    from nilearn.connectome import ConnectivityMeasure

    series = list(x)
    series64 = [a.astype(np.float64) for a in series]

    def nil() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(ConnectivityMeasure(kind="correlation").fit_transform(series64))

    ref = nil()
    xt = torch.from_numpy(x).to(device)
    _peak_reset(device)
    got = kernels.connectivity(xt, "correlation", backend="torch", device=device)
    err = float(np.abs(got.cpu().numpy() - ref).max())
    if err > 1e-5:
        raise SystemExit(f"static FC differs from nilearn: {err:.2e}")
    res = {"subjects": len(series), "max_abs_diff_vs_nilearn": err,
           "graphbrain": timeit(lambda: kernels.connectivity(xt, "correlation", backend="torch", device=device),
                                device, seconds)}
    res["graphbrain"]["peak_mib"] = _peak_mib(device)
    res["nilearn_cpu"] = timeit(nil, "cpu", seconds, min_runs=1)
    res["ratio_vs_nilearn"] = res["nilearn_cpu"]["median_s"] / res["graphbrain"]["median_s"]
    return res


def stagin_section(x: np.ndarray, w: int, s: int, device: str, seconds: float, orig: Any, batches: list[int],
                   hidden: int, layers: int) -> dict:
    from graphbrain.models import get_model_spec

    n, t, r = x.shape
    nw = len(range(0, t - w + 1, s))
    res: dict[str, Any] = {"hidden": hidden, "layers": layers, "windows": nw}
    cuda = device.startswith("cuda")

    def make(b: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        reps = -(-b // n)
        xb = torch.from_numpy(np.concatenate([x] * reps)[:b]).to(device)
        model = get_model_spec("stagin").builder(n_rois=r, n_windows=nw, hidden=hidden, n_layers=layers,
                                                 linear_path=False).to(device)
        return model, xb, torch.arange(b, device=device) % 2

    if orig is not None:
        torch.manual_seed(0)
        om = orig[0].ModelSTAGIN(input_dim=r, hidden_dim=hidden, num_classes=2, num_heads=1, num_layers=layers,
                                 sparsity=30, dropout=0.5, cls_token="sum", readout="sero").to(device)
        xb = torch.from_numpy(x[:3]).to(device)
        _peak_reset(device)
        st = timeit(original_step_fn(orig[0], orig[1], om, xb, torch.arange(3, device=device) % 2, w, s, 1e-5),
                    device, seconds, min_runs=2)
        st["subjects_per_s"] = 3 / st["median_s"]
        st["peak_mib"] = _peak_mib(device)
        res["original_b3"] = st
    else:
        res["original_b3"] = "skipped: original STAGIN code (../shared/peers/stagin) or einops absent"

    model, xb, y = make(3)
    model.train()
    _peak_reset(device)
    st = timeit(graphbrain_step_fn(model, xb, y, w, s), device, seconds, min_runs=2)
    st["subjects_per_s"] = 3 / st["median_s"]
    st["peak_mib"] = _peak_mib(device)
    res["graphbrain_b3"] = st
    if isinstance(res["original_b3"], dict):
        res["ratio_b3"] = st["subjects_per_s"] / res["original_b3"]["subjects_per_s"]

    amp = cuda  # bf16 autocast where it pays (tensor cores); float32 on the CPU
    sweep = {}
    for b in batches:
        try:
            model, xb, y = make(b)
            model.train()
            _peak_reset(device)
            st = timeit(graphbrain_step_fn(model, xb, y, w, s, amp=amp), device, seconds, min_runs=2)
        except torch.OutOfMemoryError:  # pragma: no cover - GPU only
            torch.cuda.empty_cache()
            sweep[b] = "out of memory"
            continue
        st["subjects_per_s"] = b / st["median_s"]
        st["peak_mib"] = _peak_mib(device)
        sweep[b] = st
    res["batch_sweep"] = {"amp": "bf16" if amp else "none", "results": sweep}
    ok = {b: v for b, v in sweep.items() if isinstance(v, dict)}
    best = max(ok, key=lambda b: ok[b]["subjects_per_s"])
    res["best_batch"] = best

    model, xb, _ = make(best)
    model.eval()

    @torch.inference_mode()
    def infer() -> None:
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            model({"dfc": sliding_window_fc(xb, w, s)})

    _peak_reset(device)
    st = timeit(infer, device, seconds, min_runs=2)
    st["subjects_per_s"] = best / st["median_s"]
    st["peak_mib"] = _peak_mib(device)
    res["inference"] = st
    return res


def markdown(res: dict) -> str:
    def ms(v: Any) -> str:
        return f"{v['median_s'] * 1e3:.3g} ms [{v['min_s'] * 1e3:.3g}-{v['max_s'] * 1e3:.3g}]" if isinstance(
            v, dict) else str(v)

    d, st, sg = res["dynamic_fc"], res["static_fc"], res["stagin"]
    rows = [
        "| measure | graphbrain | reference | ratio | check |",
        "|---|---|---|---|---|",
        f"| dynamic FC, {d['windows']} windows | {ms(d['graphbrain'])} | nilearn (CPU) {ms(d['nilearn_cpu'])} | "
        f"{d['ratio_vs_nilearn']:.1f}x | max diff {d['max_abs_diff_vs_nilearn']:.1e} |",
    ]
    if isinstance(d["stagin_loop"], dict):
        rows.append(f"| dynamic FC | (same) | STAGIN loop {ms(d['stagin_loop'])} ({d['stagin_loop']['windows']} "
                    f"windows) | {d['ratio_vs_stagin_loop']:.1f}x per window | max diff "
                    f"{d['stagin_loop_max_abs_diff']:.1e} |")
    rows.append(f"| static FC correlation, {st['subjects']} subjects | {ms(st['graphbrain'])} | nilearn (CPU) "
                f"{ms(st['nilearn_cpu'])} | {st['ratio_vs_nilearn']:.1f}x | max diff "
                f"{st['max_abs_diff_vs_nilearn']:.1e} |")
    g3 = sg["graphbrain_b3"]
    o3 = sg["original_b3"]
    ref3 = f"original {o3['subjects_per_s']:.2f}/s" if isinstance(o3, dict) else str(o3)
    ratio3 = f"{sg['ratio_b3']:.2f}x" if "ratio_b3" in sg else "-"
    rows.append(f"| STAGIN training, batch 3, subjects/s | {g3['subjects_per_s']:.2f} | {ref3} | {ratio3} | |")
    best = sg["batch_sweep"]["results"][sg["best_batch"]]
    rows.append(f"| STAGIN training, best batch {sg['best_batch']} ({sg['batch_sweep']['amp']}), subjects/s | "
                f"{best['subjects_per_s']:.1f} | {ref3} | "
                f"{best['subjects_per_s'] / o3['subjects_per_s']:.1f}x | |" if isinstance(o3, dict) else
                f"| STAGIN training, best batch {sg['best_batch']} ({sg['batch_sweep']['amp']}), subjects/s | "
                f"{best['subjects_per_s']:.1f} | - | - | |")
    rows.append(f"| STAGIN inference, batch {sg['best_batch']}, subjects/s | {sg['inference']['subjects_per_s']:.1f}"
                f" | | | |")
    mem = "peak GPU memory (MiB)" if res["device"].startswith("cuda") else "process peak RSS (MiB)"
    rows.append(f"| {mem}: dynamic FC / static FC / training best batch / inference | "
                f"{d['graphbrain']['peak_mib']:.0f} / {st['graphbrain']['peak_mib']:.0f} / "
                f"{best['peak_mib']:.0f} / {sg['inference']['peak_mib']:.0f} | | | |")
    head = (f"GPU suite on {res['device_name']} ({res['device']}), torch {res['torch']}, data {res['data']}, "
            f"window {res['window']}, stride {res['stride']}; medians [min-max].\n\n")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cuda, cpu or auto")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "gpu_suite_out")
    ap.add_argument("--small", action="store_true", help="tiny sizes: runs on a CPU in seconds")
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--timepoints", type=int, default=196)
    ap.add_argument("--rois", type=int, default=111)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--batches", default="3,32,128,256,512")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing budget per measurement")
    ap.add_argument("--no-original", action="store_true", help="skip the original STAGIN code")
    args = ap.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    hidden, layers = 128, 4
    if args.small:
        args.subjects, args.timepoints, args.rois, args.window, args.stride = 6, 60, 20, 20, 5
        args.batches, args.seconds, hidden, layers = "3,6", 0.05, 16, 2
    if device == "cpu":
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    orig = None if args.no_original else load_original()
    x, desc = _data(args.subjects, args.timepoints, args.rois, args.small)
    res: dict[str, Any] = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "CPU",
        "torch": torch.__version__, "data": desc, "window": args.window, "stride": args.stride,
        "small": args.small, "original_code": "../shared/peers/stagin" if orig else "absent",
    }
    print(f"GPU suite: {res['device_name']} ({device}); {desc}", flush=True)
    res["dynamic_fc"] = dynamic_section(x, args.window, args.stride, device, args.seconds, orig)
    print("  dynamic FC done", flush=True)
    res["static_fc"] = static_section(x, device, args.seconds)
    print("  static FC done", flush=True)
    res["stagin"] = stagin_section(x, args.window, args.stride, device, args.seconds, orig,
                                   [int(b) for b in args.batches.split(",")], hidden, layers)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_suite.json").write_text(json.dumps(res, indent=2, default=str))
    md = markdown(res)
    (args.out / "gpu_suite.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
