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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0, help="timing budget per measurement")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--_child", nargs=2, metavar=("MODEL", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._child:
        res = measure(args._child[0], int(args._child[1]), args.device, args.amp, args.seconds)
        print("RESULT " + json.dumps(res))
        return 0
    cpu = args.device == "cpu"
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
