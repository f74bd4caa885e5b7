"""Choose the ``scoring="ic"`` parameters on ``evaluate_diagnosis``'s protocols (never on the
ten clinical presentations of ``kg_clinical_cases.py``, which are the evaluation).

Seed 1 (the reported tables use seed 0), 200 queries per setting, six settings: DO
``has_symptom`` holdout / partial, DO + HPO ``has_symptom`` and ``has_phenotype`` holdout /
partial. Prints MRR per setting for every parameter set in the grid and the mean; writes JSON.

    GRAPHBRAIN_CACHE=/tmp/gbcache python benchmarks/kg_diagnosis_tuning.py --out /tmp/tuning.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.diagnose import IcParams
from graphbrain.kg.evaluate import protocol_queries, ranking_metrics, realistic_rank

HOLD = ("has_symptom", "has_phenotype")


def settings(n: int, seed: int):
    for label, sources in (("DO", ["do"]), ("DO+HPO", ["do", "hpo"])):
        kg = KnowledgeGraph.default(sources=sources)
        for rel in ["has_symptom"] + (["has_phenotype"] if label != "DO" else []):
            for proto in ("holdout", "partial"):
                t = time.perf_counter()
                prep = protocol_queries(kg, protocol=proto, n_queries=n, seed=seed, relation=rel,
                                        holdout_relations=HOLD)
                prep[1].ic_tables()
                print(f"prepared {label} {rel} {proto} in {time.perf_counter() - t:.1f} s", flush=True)
                yield f"{label} {rel} {proto}", prep


def mrrs(prep, grid: list[IcParams | None]) -> list[float]:
    """MRR for each entry of ``grid`` (``None`` = legacy scoring), query by query so that the
    per-finding matches are computed once."""
    _, idx, diseases, queries, _ = prep
    ranks: list[list[float]] = [[] for _ in grid]
    for qt, target in queries:
        for k, params in enumerate(grid):
            if params is not None:
                _, total, _ = idx.rank_ic(qt, top_k=1, max_hops=3, params=params, per_finding=False)
            else:
                _, total, _ = idx.rank(qt, top_k=1, max_hops=3)
                total = total.copy()
                total[qt] = -1.0
            ranks[k].append(realistic_rank(total, diseases, target))
    return [ranking_metrics(r).mrr for r in ranks]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    grid = [dict(size=s, specificity=b, inherit_penalty=ip, family_penalty=fp)
            for s, b, ip, fp in itertools.product((0.0, 0.25, 0.5, 1.0), (0.0, 0.5, 1.0), (1.0,), (0.1,))]
    grid += [dict(size=0.5, specificity=0.0, inherit_penalty=ip, family_penalty=0.1) for ip in (0.25, 2.0)]
    rows: dict[str, dict[str, float]] = {}
    keys = ["legacy"] + [json.dumps(g, sort_keys=True) for g in grid]
    for name, prep in settings(a.queries, a.seed):
        t = time.perf_counter()
        for key, v in zip(keys, mrrs(prep, [None] + [IcParams(**g) for g in grid])):
            rows.setdefault(key, {})[name] = v
        print(name, f"{time.perf_counter() - t:.0f} s", "legacy", round(rows["legacy"][name], 4),
              "best ic", round(max(rows[k][name] for k in keys[1:]), 4), flush=True)
    names = list(rows["legacy"])
    print("| params | " + " | ".join(names) + " | mean |")
    for key, r in sorted(rows.items(), key=lambda kv: -np.mean(list(kv[1].values()))):
        print(f"| {key} | " + " | ".join(f"{r[n]:.4f}" for n in names) + f" | {np.mean([r[n] for n in names]):.4f} |")
    if a.out:
        a.out.write_text(json.dumps({"seed": a.seed, "queries": a.queries, "mrr": rows,
                                     "default": dataclasses.asdict(IcParams())}, indent=1))


if __name__ == "__main__":
    main()
