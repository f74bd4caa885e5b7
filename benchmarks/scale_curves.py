"""Scale curves: time and peak memory of static FC, dynamic FC and one STAGIN epoch as the
number of subjects, ROIs and windows grows. Writes a Markdown table, JSON and a PNG plot.

* static FC: ``ConnectivityTransformer(kind="correlation")`` (graphbrain kernels, Ledoit-Wolf),
  196 TRs; subjects 100 -> 2,000 at 111 ROIs, ROIs 100 -> 400 at 250 subjects.
* dynamic FC: ``sliding_window_fc`` window 50 stride 3; subjects at 111 ROIs and 49 windows,
  ROIs at 10 subjects, windows (scan length 100 -> 800 TRs) at 10 subjects.
* STAGIN: one training epoch (dynamic FC included, minibatch 6, 4 x 128, top 30 %), sizes
  kept small for a shared 2-core CPU.

Peak memory = the largest resident-set growth over the step, sampled every millisecond by a
background thread (covers numpy and torch allocations alike; glibc's mmap threshold is fixed
so freed arrays leave the resident set); the largest over warm-up and repeats. Times:
medians of ``--repeats``.

    python benchmarks/scale_curves.py [--repeats 3] [--threads 1] [--out benchmarks] [--quick]
"""

from __future__ import annotations

import os
import sys

_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import argparse  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from graphbrain.connectome.dynamic import sliding_window_fc  # noqa: E402
from graphbrain.connectome.static import ConnectivityTransformer  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _fixed_mmap_threshold() -> None:
    """Large blocks always mmapped and returned on free (glibc would otherwise raise its
    mmap threshold after the first free and keep later arrays resident, hiding the peak)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except OSError:  # not glibc: peaks may read low after the first run
        pass


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakRSS:
    """Largest RSS growth (bytes) while the block runs, sampled every millisecond."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.001)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def measure(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    with PeakRSS() as p0:
        fn()  # warm-up; its peak counts too (first-touch of every buffer)
    times, mems = [], [p0.mib]
    for _ in range(repeats):
        with PeakRSS() as p:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            del out
        mems.append(p.mib)
    return {"median_s": float(np.median(times)), "min_s": float(min(times)), "max_s": float(max(times)),
            "peak_mib": float(max(mems))}


def series(n: int, t: int, r: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, t, r), dtype=np.float32)


def stagin_epoch(n: int, t: int, r: int, batch: int = 6) -> Callable[[], Any]:
    from graphbrain.models import get_model_spec

    x = torch.from_numpy(series(n, t, r))
    y = torch.arange(n) % 2
    nw = (t - 50) // 3 + 1
    torch.manual_seed(0)
    model = get_model_spec("stagin").builder(n_rois=r, n_windows=nw, linear_path=False)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    model.train()

    def epoch() -> None:
        for a in range(0, n, batch):
            out = model({"dfc": sliding_window_fc(x[a : a + batch], 50, 3)})
            loss = torch.nn.functional.cross_entropy(out.logits, y[a : a + batch]) + out.aux_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def plan(quick: bool) -> list[tuple[str, str, int, Callable[[], Callable[[], Any]]]]:
    """(workload, axis, x value, factory of the timed function)."""
    p: list[tuple[str, str, int, Callable[[], Callable[[], Any]]]] = []

    def static(n: int, r: int) -> Callable[[], Any]:
        xs = list(series(n, 196, r))
        return lambda: ConnectivityTransformer(kind="correlation").fit(xs).transform(xs)

    def dynamic(n: int, t: int, r: int) -> Callable[[], Any]:
        x = torch.from_numpy(series(n, t, r))
        return lambda: sliding_window_fc(x, 50, 3)

    subj = [20, 50] if quick else [100, 500, 1000, 2000]
    rois = [50, 100] if quick else [100, 200, 400]
    for n in subj:
        p.append(("static FC", "subjects", n, lambda n=n: static(n, 111)))
    for r in rois:
        p.append(("static FC", "ROIs", r, lambda r=r: static(20 if quick else 250, r)))
    for n in ([5, 10] if quick else [25, 50, 100]):
        p.append(("dynamic FC", "subjects", n, lambda n=n: dynamic(n, 196, 111)))
    for r in rois:
        p.append(("dynamic FC", "ROIs", r, lambda r=r: dynamic(10, 196, r)))
    for t in ([100, 196] if quick else [100, 196, 400]):
        p.append(("dynamic FC", "windows", (t - 50) // 3 + 1, lambda t=t: dynamic(10, t, 111)))
    if not quick:
        for n in [6, 12]:
            p.append(("STAGIN epoch", "subjects", n, lambda n=n: stagin_epoch(n, 196, 111)))
        for r in [100, 200]:
            p.append(("STAGIN epoch", "ROIs", r, lambda r=r: stagin_epoch(6, 196, r)))
        for t in [100, 196]:
            p.append(("STAGIN epoch", "windows", (t - 50) // 3 + 1, lambda t=t: stagin_epoch(6, t, 111)))
    else:
        p.append(("STAGIN epoch", "subjects", 6, lambda: stagin_epoch(6, 80, 20)))
    return p


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    axes_names = ["subjects", "ROIs", "windows"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    colours = {"static FC": "tab:blue", "dynamic FC": "tab:orange", "STAGIN epoch": "tab:green"}
    ticks: list[set] = [set(), set(), set()]
    for j, axis in enumerate(axes_names):
        for wl, c in colours.items():
            pts = sorted((r["x"], r["median_s"], r["peak_mib"]) for r in rows if r["workload"] == wl and r["axis"] == axis)
            if not pts:
                continue
            xs, ts, ms = zip(*pts)
            axes[0, j].plot(xs, ts, "o-", color=c, label=wl)
            axes[1, j].plot(xs, [max(m, 0.1) for m in ms], "o-", color=c, label=wl)
            ticks[j].update(xs)
        for i, lab in enumerate(["time (s)", "peak memory growth (MiB)"]):
            ax = axes[i, j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(axis)
            ax.set_xticks(sorted(ticks[j]))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.tick_params(axis="x", labelsize=7, rotation=45)
            ax.set_ylabel(lab)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("graphbrain scale curves (CPU, 1 thread, shared loaded machine; medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    _fixed_mmap_threshold()
    rows = []
    from tqdm import tqdm

    for wl, axis, x, factory in tqdm(plan(args.quick), desc="scale curves"):
        fn = factory()
        reps = 1 if wl == "STAGIN epoch" else args.repeats
        st = measure(fn, reps)
        rows.append({"workload": wl, "axis": axis, "x": x, **st})
        del fn
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"Load average at the end: {os.getloadavg()}; {args.threads} thread(s); medians [min-max].", "",
             "| workload | axis | value | time (s) | peak memory growth (MiB) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['axis']} | {r['x']} | {r['median_s']:.3g} "
                     f"[{r['min_s']:.3g}-{r['max_s']:.3g}] | {r['peak_mib']:.0f} |")
    (args.out / "scale_curves.md").write_text("\n".join(lines) + "\n")
    (args.out / "scale_curves.json").write_text(json.dumps(rows, indent=2))
    plot(rows, args.out / "scale_curves.png")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
