"""Training / inference throughput and peak memory of the torch models; STAGIN dense vs sparse.

Workload (PERFORMANCE.md): ABIDE-sized inputs, R = 110 ROIs; STAGIN 4 x 128 GIN, SERO,
top 30 % edges, 196 TRs -> 49 windows (window 50, stride 3); static models on (R, R) FC.
Inputs are random time series (speed does not depend on the values); every step is
forward + backward + AdamW step (training) or a no-grad forward (inference).

Dense vs sparse: the same STAGIN (same weights, logits checked equal to 1e-4) with its
GIN layers run as dense batched matmuls or as torch_geometric ``GINConv`` message
passing; and the GIN stack alone (4 x 128, 480 window graphs). Ratio = sparse time /
dense time.

    .venv/bin/python benchmarks/bench_models.py [--device cpu|cuda] [--threads 1] [--quick]

Each model runs in a fresh subprocess so that peak RSS (CPU) is per model; on CUDA the
peak is ``torch.cuda.max_memory_allocated``. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

R = 110


def _inputs(name: str, b: int, device: str, t: int = 196) -> dict[str, torch.Tensor]:
    from graphbrain.connectome.dynamic import sliding_window_fc

    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, t, R, generator=g).to(device)
    if name.startswith("stagin"):
        return {"dfc": sliding_window_fc(x, 50, 3)}
    return {"fc": sliding_window_fc(x, t, 1)[:, 0]}


def _build(name: str, n_windows: int) -> torch.nn.Module:
    from graphbrain.models import get_model_spec

    if name == "stagin_sparse":
        return get_model_spec("stagin").builder(n_rois=R, n_windows=n_windows, gnn="sparse")
    return get_model_spec(name).builder(n_rois=R, n_windows=n_windows)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(name: str, batch: int, device: str, amp: str, seconds: float) -> dict:
    """Subjects/s training and inference of one model (run in its own process)."""
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    inp = _inputs(name, batch, device)
    w = inp["dfc"].shape[1] if "dfc" in inp else None
    model = _build(name, w).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    y = (torch.arange(batch, device=device) % 2)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp == "bf16" else torch.autocast
    use_amp = amp == "bf16" and device == "cuda"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with ctx() if use_amp else torch.autocast(device, enabled=False):
            out = model(inp)
            loss = F.cross_entropy(out.logits.float(), y)
            if out.aux_loss is not None:
                loss = loss + out.aux_loss.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(fn) -> float:
        fn()  # warm-up
        _sync(device)
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            _sync(device)
            el = time.perf_counter() - t0
            if el > seconds and n >= 2:
                return n * batch / el

    model.train()
    train_sps = timed(step)

    @torch.inference_mode()
    def infer() -> None:
        with ctx() if use_amp else torch.autocast(device, enabled=False):
            model(inp)

    model.eval()
    infer_sps = timed(infer)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    return {"model": name, "batch": batch, "train_sps": train_sps, "infer_sps": infer_sps, "peak_mib": peak}


def dense_vs_sparse(device: str, batch: int, seconds: float) -> dict:
    """Same STAGIN weights, dense vs torch_geometric GIN layers; plus the GIN stack alone."""
    from graphbrain.connectome.graphs import dense_to_pyg, topk_sparsify
    from graphbrain.models.layers import DenseGIN

    torch.manual_seed(0)
    inp = _inputs("stagin", batch, device)
    w = inp["dfc"].shape[1]
    dense = _build("stagin", w).to(device)
    sparse = _build("stagin_sparse", w).to(device)
    sparse.load_state_dict(dense.state_dict())
    dense.eval()
    sparse.eval()
    with torch.no_grad():
        diff = (dense(inp).logits - sparse(inp).logits).abs().max().item()
    dense.train()
    sparse.train()
    y = torch.arange(batch, device=device) % 2

    def train_rate(model) -> float:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            out = model(inp)
            loss = F.cross_entropy(out.logits, y) + out.aux_loss
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        _sync(device)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 2:
            step()
            n += 1
        _sync(device)
        return n * batch / (time.perf_counter() - t0)

    d_sps, s_sps = train_rate(dense), train_rate(sparse)

    # GIN stack alone: 4 x 128 on 480 window graphs (forward + backward)
    g = 480
    adj = topk_sparsify(torch.randn(g, R, R, device=device), 30.0)
    h0 = torch.randn(g, R, 128, device=device, requires_grad=True)
    layers = torch.nn.ModuleList(DenseGIN(128, 128) for _ in range(4)).to(device)
    convs = [layer.as_pyg() for layer in layers]
    ei = dense_to_pyg(adj, h0.detach(), edge_weight=False).edge_index

    def run_dense():
        h = h0
        for layer in layers:
            h = layer(h, adj)
        h.sum().backward()
        return h

    def run_sparse():
        h = h0.reshape(g * R, 128)
        for conv in convs:
            h = conv(h, ei)
        h.sum().backward()
        return h

    with torch.no_grad():
        layers.eval()
        hd, hs = h0, h0.reshape(g * R, 128)
        for layer, conv in zip(layers, convs):
            hd, hs = layer(hd, adj), conv(hs, ei)
        stack_diff = (hd.reshape(g * R, -1) - hs).abs().max().item()
        layers.train()

    def rate(fn) -> float:
        fn()
        _sync(device)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 2:
            fn()
            n += 1
        _sync(device)
        return (time.perf_counter() - t0) / n

    td, ts = rate(run_dense), rate(run_sparse)
    return {
        "stagin_dense_sps": d_sps,
        "stagin_sparse_sps": s_sps,
        "stagin_ratio": d_sps / s_sps,
        "stagin_max_logit_diff": diff,
        "gin_stack_dense_ms": td * 1e3,
        "gin_stack_sparse_ms": ts * 1e3,
        "gin_stack_ratio": ts / td,
        "gin_stack_max_diff": stack_diff,
    }


PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "stagin"


def load_original() -> tuple[Any, Any] | None:
    """STAGIN's original ``model`` and ``bold`` modules from ../shared/peers/stagin (GPL-3.0,
    imported at run time for measurement only, never copied), or ``None`` when absent."""
    if not (PEERS / "model.py").is_file():
        return None
    try:
        import einops  # noqa: F401 - the original code needs it
    except ImportError:
        return None
    import importlib.util

    mods = []
    for name in ("model", "bold"):
        spec = importlib.util.spec_from_file_location(f"stagin_original_{name}", PEERS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        mods.append(mod)
    return mods[0], mods[1]


def _abide_series(n: int, t: int) -> torch.Tensor | None:
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "abide_pcp"
    if not (root / "ABIDE_pcp").is_dir():
        return None
    from graphbrain.data import read_abide_pcp

    # default policy: subjects with a constant ROI are left out (the original's corrcoef gives NaN)
    ts = [s.timeseries[:t] for s in read_abide_pcp(root) if s.n_timepoints >= t][:n]
    return torch.from_numpy(np.stack(ts).astype(np.float32))


def original_step_fn(orig_model: Any, orig_bold: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     window: int, stride: int, reg_lambda: float) -> Any:
    """One training step exactly as STAGIN's experiment.py: dynamic FC by its window loop,
    identity node features, GRU time-stamping over the series, per-window percentile
    threshold + nonzero into a torch.sparse matrix, cross-entropy + reg_lambda * ortho."""
    from einops import rearrange, repeat

    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    b, _, r = x.shape

    def step() -> float:
        dyn_a, points = orig_bold.process_dynamic_fc(x, window, stride)
        ends = [p + window for p in points]
        dyn_v = repeat(torch.eye(r, device=x.device), "n1 n2 -> b t n1 n2", t=len(points), b=b)
        logit, _, _, reg = model(dyn_v, dyn_a, rearrange(x, "b t c -> t b c"), ends)
        loss = F.cross_entropy(logit, y) + reg_lambda * reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def graphbrain_step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, window: int, stride: int,
                       amp: bool = False) -> Any:
    """One graphbrain STAGIN training step from the same series (dynamic FC included)."""
    from graphbrain.connectome.dynamic import sliding_window_fc

    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    dev = x.device.type

    def step() -> float:
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            out = model({"dfc": sliding_window_fc(x, window, stride)})
            loss = F.cross_entropy(out.logits.float(), y) + out.aux_loss.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    return step


def check_shared_maths(orig_model: Any, model: torch.nn.Module, dfc: torch.Tensor) -> dict[str, float]:
    """Copy the original's GIN and SERO weights into graphbrain's STAGIN and feed both the
    original's own adjacency (percentile threshold, self-loops): GIN outputs, SERO readouts
    and the orthogonality regulariser must agree. (Full logits differ by design: graphbrain
    encodes window position with an embedding instead of the GRU over all TRs, and its
    temporal transformer keeps residual connections.)"""
    from graphbrain.models.layers import orthogonality_penalty

    orig_model.eval()
    model.eval()
    deep = getattr(model, "deep", model)
    with torch.no_grad():
        for og, gg, orr, gr in zip(orig_model.gnn_layers, deep.gin, orig_model.readout_modules, deep.readouts):
            gg.mlp.load_state_dict(og.mlp.state_dict())
            gg.eps.copy_(og.epsilon.reshape(1))
            gr.embed.load_state_dict(orr.embed.state_dict())
            gr.attend.load_state_dict(orr.attend.state_dict())
        b, w, r, _ = dfc.shape
        a_sparse = orig_model._collate_adjacency(dfc, orig_model.sparsity)
        a_dense = a_sparse.to_dense().reshape(b, w, r, b, w, r)
        idx = torch.arange(b * w)
        a_dense = a_dense.reshape(b * w, r, b * w, r)[idx, :, idx, :]  # (G, R, R) diagonal blocks
        eye = torch.eye(r)
        h0 = torch.randn(b * w * r, deep.hidden)
        ho, hg = h0, h0.reshape(b * w, r, -1)
        diffs = {"gin": 0.0, "sero": 0.0, "ortho": 0.0}  # gin, sero: relative to the max; ortho: absolute
        for og, gg, orr, gr in zip(orig_model.gnn_layers, deep.gin, orig_model.readout_modules, deep.readouts):
            ho = og(ho, a_sparse)
            hg = gg(hg, a_dense - eye)  # graphbrain adds the self term as (1 + eps) h
            # relative to the largest activation (float32, 4 layers with BatchNorm)
            diffs["gin"] = max(diffs["gin"], float((ho.reshape(b * w, r, -1) - hg).abs().max() / ho.abs().max()))
            bridge = ho.reshape(b, w, r, -1).transpose(0, 1)  # 't b n c' as in the original
            ro, _ = orr(bridge, node_axis=2)
            rg, _ = gr(hg)
            diffs["sero"] = max(diffs["sero"], float((ro.transpose(0, 1).reshape(b * w, -1) - rg).abs().max()
                                                     / ro.abs().max()))
            lat = bridge.reshape(w * b, r, -1)
            inner = torch.bmm(lat, lat.permute(0, 2, 1))
            ref = (inner / inner.max(-1)[0].unsqueeze(-1) - eye).triu().norm(dim=(1, 2)).mean()
            diffs["ortho"] = max(diffs["ortho"], float((ref - orthogonality_penalty(lat)).abs()))
    return diffs


def stagin_vs_original(device: str, batch: int, rounds: int, steps: int, big_batch: int | None = None) -> dict:
    """Original STAGIN training step against graphbrain's, same subjects, interleaved rounds;
    with ``big_batch``, graphbrain also at that minibatch (the subjects repeated)."""
    loaded = load_original()
    if loaded is None:
        return {"skipped": "original STAGIN code (../shared/peers/stagin) or einops not available"}
    orig_m, orig_b = loaded
    window, stride, t = 50, 3, 196
    x = _abide_series(max(batch, big_batch or 0), t)
    src = "ABIDE-PCP" if x is not None else "synthetic"
    if x is None:
        x = torch.randn(max(batch, big_batch or 0), t, 111, generator=torch.Generator().manual_seed(0))
    x_big = x.to(device)
    x = x_big[:batch]
    r = x.shape[-1]
    y = (torch.arange(batch, device=device) % 2)
    torch.manual_seed(0)
    orig = orig_m.ModelSTAGIN(input_dim=r, hidden_dim=128, num_classes=2, num_heads=1, num_layers=4,
                              sparsity=30, dropout=0.5, cls_token="sum", readout="sero").to(device)
    from graphbrain.connectome.dynamic import sliding_window_fc
    from graphbrain.models import get_model_spec

    nw = sliding_window_fc(x[:1], window, stride).shape[1]
    ours = get_model_spec("stagin").builder(n_rois=r, n_windows=nw, hidden=128, n_layers=4, top_percent=30.0,
                                            linear_path=False).to(device)
    dfc_orig, _ = orig_b.process_dynamic_fc(x.cpu(), window, stride)
    dfc_diff = float((dfc_orig - sliding_window_fc(x.cpu(), window, stride)).abs().max())
    diffs = check_shared_maths(orig, ours, dfc_orig[: min(batch, 2)])
    orig.train()
    ours.train()
    torch.manual_seed(0)
    ours_onehot = get_model_spec("stagin").builder(n_rois=r, n_windows=nw, hidden=128, n_layers=4, top_percent=30.0,
                                                   linear_path=False, node_features="onehot").to(device).train()
    fns = {"original": original_step_fn(orig_m, orig_b, orig, x, y, window, stride, 1e-5),
           "graphbrain": graphbrain_step_fn(ours, x, y, window, stride),
           "graphbrain onehot": graphbrain_step_fn(ours_onehot, x, y, window, stride)}
    sizes = {"original": batch, "graphbrain": batch, "graphbrain onehot": batch}
    if big_batch:
        torch.manual_seed(0)
        ours_big = get_model_spec("stagin").builder(n_rois=r, n_windows=nw, hidden=128, n_layers=4,
                                                    top_percent=30.0, linear_path=False).to(device).train()
        key = f"graphbrain batch {big_batch}"
        fns[key] = graphbrain_step_fn(ours_big, x_big[:big_batch], torch.arange(big_batch, device=device) % 2,
                                      window, stride)
        sizes[key] = big_batch
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(device)
            times[k].append(sizes[k] * steps / (time.perf_counter() - t0))
    sps = {k: float(np.median(v)) for k, v in times.items()}
    floor = gemm_floor(fns, sizes, device, 1.0 / sps["original"])
    return {"gemm_floor": floor, "data": f"{src}, {batch} subjects x {t} TRs, {r} ROIs, {nw} windows", "batch": batch,
            "subjects_per_s": sps, "spread": {k: [float(min(v)), float(max(v))] for k, v in times.items()},
            "ratio": sps["graphbrain"] / sps["original"], "dfc_max_diff": dfc_diff, "shared_maths_max_diff": diffs,
            "ratios_vs_original": {k: v / sps["original"] for k, v in sps.items()}}


def gemm_floor(fns: dict[str, Any], sizes: dict[str, int], device: str, original_s_per_subject: float) -> dict:
    """The matmul floor of each graphbrain step: its matmul FLOPs (``FlopCounterMode``: mm, bmm,
    addmm, forward and backward) over the float32 GEMM rate measured now on the step's main
    shape ((16,317 x 128) x (128 x 128), 1 call = one GIN Linear) and on a large square GEMM.
    ``ceiling`` = the original's measured time per subject / the floor's: the ratio no implementation
    of the same matmuls can beat on this machine, even with everything else free."""
    from torch.utils.flop_counter import FlopCounterMode

    def rate(m: int, k: int, n: int) -> float:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        a @ b
        ts = []
        for _ in range(7):
            _sync(device)
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            ts.append(time.perf_counter() - t0)
        return 2 * m * k * n / float(np.median(ts)) / 1e9

    rates = {"gin_linear_16317x128x128": rate(16317, 128, 128), "square_2048": rate(2048, 2048, 2048)}
    best = max(rates.values())
    out: dict = {"gemm_GFLOPs": rates}
    for k, fn in fns.items():
        if k == "original":  # FlopCounterMode counts torch.sparse.mm as dense: not meaningful there
            continue
        with FlopCounterMode(display=False) as fc:
            fn()
        gflop = fc.get_total_flops() / 1e9
        floor_s = gflop / best
        shape_s = gflop / rates["gin_linear_16317x128x128"]
        out[k] = {"matmul_GFLOP": gflop, "floor_s": floor_s,
                  "ceiling_vs_original": original_s_per_subject / (floor_s / sizes[k]),
                  "floor_at_step_shape_rate_s": shape_s,
                  "ceiling_at_step_shape_rate": original_s_per_subject / (shape_s / sizes[k])}
    return out


def profile_step(device: str, batch: int, rows: int = 15) -> str:
    """torch.profiler table (self CPU time) of graphbrain's STAGIN training step."""
    from torch.profiler import ProfilerActivity, profile

    from graphbrain.models import get_model_spec

    x = torch.randn(batch, 196, R, device=device)
    # the configuration timed against the original: 4 x 128 GIN, SERO, top 30 %
    model = get_model_spec("stagin").builder(n_rois=R, n_windows=49, hidden=128, n_layers=4, top_percent=30.0,
                                             linear_path=False).to(device)
    step = graphbrain_step_fn(model, x, torch.arange(batch, device=device) % 2, 50, 3)
    step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(2):
            step()
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0, help="timing budget per measurement")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--only-original", action="store_true", help="only STAGIN vs its original code")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds, STAGIN vs original")
    ap.add_argument("--steps", type=int, default=2, help="training steps per round, STAGIN vs original")
    ap.add_argument("--big-batch", type=int, default=0, help="also graphbrain at this minibatch")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table of the STAGIN step")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--_child", nargs=2, metavar=("MODEL", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._child:
        res = measure(args._child[0], int(args._child[1]), args.device, args.amp, args.seconds)
        print("RESULT " + json.dumps(res))
        return 0
    cpu = args.device == "cpu"
    print(f"device={args.device} threads={args.threads} torch={torch.__version__}")
    vs = stagin_vs_original(args.device, 3, args.rounds, args.steps, args.big_batch or None)
    if "skipped" in vs:
        print(f"STAGIN vs original: skipped ({vs['skipped']})")
    else:
        sps, sp = vs["subjects_per_s"], vs["spread"]
        print(f"STAGIN training vs the original code ({vs['data']}, minibatch {vs['batch']}, "
              f"{args.rounds} interleaved rounds x {args.steps} steps, median [min-max]):")
        print("| implementation | train subjects/s | vs original |\n|---|---|---|")
        for k in sps:
            print(f"| {k} | {sps[k]:.2f} [{sp[k][0]:.2f}-{sp[k][1]:.2f}] | {vs['ratios_vs_original'][k]:.2f}x |")
        print(f"ratio graphbrain / original: {vs['ratio']:.2f}x; dynamic FC max |diff| {vs['dfc_max_diff']:.1e}; "
              f"same weights, shared maths max |diff|: " +
              ", ".join(f"{k} {v:.1e}" for k, v in vs["shared_maths_max_diff"].items()), flush=True)
        fl = vs["gemm_floor"]
        print("float32 GEMM now: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in fl["gemm_GFLOPs"].items()))
        for k, v in fl.items():
            if k != "gemm_GFLOPs":
                print(f"{k}: {v['matmul_GFLOP']:.1f} GFLOP of matmuls per step -> floor {v['floor_s'] * 1e3:.0f} ms "
                      f"at the best rate ({v['floor_at_step_shape_rate_s'] * 1e3:.0f} ms at the GIN-Linear rate); "
                      f"ceiling vs the original {v['ceiling_vs_original']:.2f}x "
                      f"({v['ceiling_at_step_shape_rate']:.2f}x)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"stagin_vs_original": vs}, indent=2))
    if args.profile:
        print(profile_step(args.device, 3))
    if args.only_original:
        return 0
    plan = [("stagin", 3), ("stagin", 16 if cpu else 256), ("bnt", 32 if cpu else 256),
            ("brainnetcnn", 32 if cpu else 256), ("gin", 32 if cpu else 256), ("gcn", 32 if cpu else 256),
            ("gat", 32 if cpu else 256)]
    if args.quick:
        plan = plan[:2]
    print(f"device={args.device} threads={args.threads} torch={torch.__version__} amp={args.amp}")
    print("| model | batch | train subjects/s | inference subjects/s | peak memory (MiB) |")
    print("|---|---|---|---|---|")
    for name, b in plan:
        cmd = [sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
               "--seconds", str(args.seconds), "--amp", args.amp, "--_child", name, str(b)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        print(f"| {r['model']} | {r['batch']} | {r['train_sps']:.1f} | {r['infer_sps']:.1f} | {r['peak_mib']:.0f} |", flush=True)
    ds = dense_vs_sparse(args.device, 16 if cpu else 64, args.seconds)
    print()
    print("| comparison | dense | sparse (PyG GINConv) | ratio | max abs diff |")
    print("|---|---|---|---|---|")
    print(f"| STAGIN 4x128 training, subjects/s | {ds['stagin_dense_sps']:.2f} | {ds['stagin_sparse_sps']:.2f} | "
          f"{ds['stagin_ratio']:.2f}x | {ds['stagin_max_logit_diff']:.1e} |")
    print(f"| GIN stack 4x128, 480 graphs, fwd+bwd ms | {ds['gin_stack_dense_ms']:.0f} | {ds['gin_stack_sparse_ms']:.0f} | "
          f"{ds['gin_stack_ratio']:.2f}x | {ds['gin_stack_max_diff']:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
