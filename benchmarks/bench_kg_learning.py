"""Learning on the default KG: KGE link prediction (4 models) and R-GCN zero-shot disease relations.

Run: .venv/bin/python benchmarks/bench_kg_learning.py [--epochs 50] [--out benchmarks/kg_learning.json]
Prints one JSON object with filtered MRR / Hits@10 / AUROC per KGE model and the R-GCN
zero-shot numbers next to the popularity baseline.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.embeddings import MODELS, split_triples, train_kge
from graphbrain.kg.gnn import zero_shot_disease_relation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--gnn-epochs", type=int, default=200)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kg = KnowledgeGraph.default()
    split = split_triples(kg, 0.05, seed=0)
    out: dict = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads={args.threads}",
        "kg": repr(kg),
        "kge": {},
    }
    for m in MODELS:
        t = time.perf_counter()
        res = train_kge(kg, m, dim=args.dim, epochs=args.epochs, batch_size=1024, lr=0.01, split=split, progress=False)
        res.metrics["total_seconds"] = round(time.perf_counter() - t, 1)
        out["kge"][m] = res.metrics
        print(m, res.metrics, flush=True)
    out["rgcn_zero_shot"] = zero_shot_disease_relation(
        kg, "has_symptom", holdout_frac=0.1, dim=args.dim, epochs=args.gnn_epochs, progress=False
    )
    print(json.dumps(out, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
