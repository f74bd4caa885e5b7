"""rdflib backend on the default KG: counts, listings, look-ups and diagnose within a time budget.

Each call is timed on the rdflib backend and on the memory backend (the reference, same
process, same run); the script fails (exit 1) when an rdflib call exceeds its budget.
Results go to stdout and to a JSON file.

    python benchmarks/bench_kg_rdflib.py [--budget 20] [--out /tmp/bench_kg_rdflib.json]

Before this change (issue 14): ``num_relations()`` over 15 minutes, ``diagnose`` over 250 s,
look-ups 9-11 s, all through SPARQL joins in rdflib.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds allowed per rdflib call")
    ap.add_argument("--build-budget", type=float, default=60.0, help="seconds allowed to build the store")
    ap.add_argument("--out", default="/tmp/bench_kg_rdflib.json")
    args = ap.parse_args(argv)

    from graphbrain.kg import KnowledgeGraph

    mem = KnowledgeGraph.default()
    t_build, rl = timed(lambda: mem.with_backend("rdflib"))
    calls = {
        "num_concepts": lambda kg: kg.backend.num_concepts(),
        "num_relations": lambda kg: kg.backend.num_relations(),
        "relation_types": lambda kg: kg.relation_types(),
        "repr": lambda kg: repr(kg),
        "concepts": lambda kg: len(kg.concepts()),
        "relations": lambda kg: len(kg.relations()),
        "lookup_exact": lambda kg: [m.concept_id for m in kg.lookup("seizure", mode="exact")],
        "lookup_ci": lambda kg: [m.concept_id for m in kg.lookup("Seizures", mode="ci")],
        "lookup_code": lambda kg: [m.concept_id for m in kg.lookup("C0014544")],
        "lookup_fuzzy": lambda kg: [m.concept_id for m in kg.lookup("epilepsi", mode="fuzzy")],
        "neighbors": lambda kg: len(kg.neighbors("DOID:1826", direction="both")),
        "ancestors": lambda kg: kg.ancestors("DOID:1826"),
        "descendants": lambda kg: len(kg.descendants("DOID:936")),
        "diagnose": lambda kg: [c.concept_id for c in kg.diagnose(["seizure", "stiff neck"], top_k=5).candidates],
    }
    rows, failed = [], []
    print(f"build rdflib store: {t_build:.1f} s (budget {args.build_budget:.0f} s)")
    if t_build > args.build_budget:
        failed.append("build")
    print(f"{'call':<16}{'rdflib s':>10}{'memory s':>10}{'ratio':>8}  same answer")
    for name, fn in calls.items():
        t_rl, a_rl = timed(lambda fn=fn: fn(rl))
        t_mem, a_mem = timed(lambda fn=fn: fn(mem))
        same = a_rl == a_mem if name != "repr" else a_rl.replace("rdflib", "memory") == a_mem
        rows.append({"call": name, "rdflib_s": round(t_rl, 4), "memory_s": round(t_mem, 4),
                     "ratio": round(t_rl / max(t_mem, 1e-6), 1), "same_answer": bool(same)})
        print(f"{name:<16}{t_rl:>10.3f}{t_mem:>10.4f}{t_rl / max(t_mem, 1e-6):>8.0f}  {same}")
        if t_rl > args.budget or not same:
            failed.append(name)
    Path(args.out).write_text(json.dumps({"build_s": round(t_build, 2), "budget_s": args.budget,
                                          "calls": rows, "failed": failed}, indent=2))
    print(f"saved {args.out}")
    if failed:
        print(f"FAILED (over budget or different answer): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
