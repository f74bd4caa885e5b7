"""Knowledge-graph benchmarks (CPU).

Run: .venv/bin/python benchmarks/bench_kg.py [--rrf-rows 1000000] [--out benchmarks/kg_bench.json]

1. default KG load time (fresh process) and memory;
2. diagnose() latency p50 / p95 (ranked diseases *with evidence paths*), 100 queries of
   1-3 symptoms sampled from Disease Ontology disease -> symptom links;
3. ancestors queries: in-memory CSR vs rdflib and Oxigraph SPARQL property paths
   (``rel:is_a+``) on the same graph, equal answers checked, ratio reported;
4. RRF streaming: rows/s and peak Python memory reading a generated MRCONSO/MRREL pair.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def bench_load() -> dict:
    code = (
        "import time, resource, tracemalloc; t=time.perf_counter(); tracemalloc.start();"
        "from graphbrain.kg import KnowledgeGraph; t1=time.perf_counter();"
        "kg=KnowledgeGraph.default(); t2=time.perf_counter();"
        "kg.lookup('seizure'); t3=time.perf_counter(); cur,peak=tracemalloc.get_traced_memory();"
        "print(t1-t, t2-t1, t3-t2, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        runs.append([float(x) for x in out])
    med = [statistics.median(r[i] for r in runs) for i in range(5)]
    return {
        "import_s": round(med[0], 3),
        "load_s": round(med[1], 3),
        "first_lookup_index_s": round(med[2], 3),
        "python_peak_MB": round(med[3] / 2**20, 1),
        "process_maxrss_MB": round(med[4] / 1024, 1),
    }


def bench_diagnose(kg, n: int = 100) -> dict:
    mem = kg.memory()
    c = mem.columns
    code = mem.relation_code("has_symptom")
    by: dict[int, list[str]] = {}
    for h, r, t in zip(c.head, c.relation, c.tail):
        if r == code:
            by.setdefault(int(h), []).append(mem.ids[t])
    rng = random.Random(0)
    keys = sorted(by)
    queries = []
    for _ in range(n):
        syms = sorted(set(by[rng.choice(keys)]))
        queries.append(rng.sample(syms, min(len(syms), rng.randint(1, 3))))
    t = time.perf_counter()
    kg.diagnose(queries[0])
    first = time.perf_counter() - t
    times, n_paths = [], 0
    for q in queries:
        t = time.perf_counter()
        res = kg.diagnose(q, top_k=10)
        times.append(time.perf_counter() - t)
        n_paths += sum(len(cand.evidence) for cand in res.candidates)
    return {
        "queries": n,
        "first_call_incl_index_ms": round(first * 1e3, 2),
        "p50_ms": round(pct(times, 0.5) * 1e3, 3),
        "p95_ms": round(pct(times, 0.95) * 1e3, 3),
        "mean_evidence_paths_per_query": round(n_paths / n, 1),
    }


def bench_paths(kg, n: int = 100) -> dict:
    from graphbrain.kg.backends.rdf import PREFIXES, Iri
    from graphbrain.kg.model import concept_iri

    rng = random.Random(1)
    ids = sorted(c.id for c in kg.iter_concepts() if c.id.startswith("DOID:"))
    sample = rng.sample(ids, n)
    out = {}
    t = time.perf_counter()
    ox = kg.with_backend("oxigraph")
    out["oxigraph_load_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    rl = kg.with_backend("rdflib")
    out["rdflib_load_s"] = round(time.perf_counter() - t, 2)
    q = PREFIXES + "PREFIX rel: <https://w3id.org/graphbrain/kg/relation/> SELECT DISTINCT ?c ?a WHERE { ?c rel:is_a+ ?a }"
    res = {}
    for name, fn in {
        "memory": lambda x: kg.ancestors(x),
        "oxigraph_sparql": lambda x: sorted(r["a"] for r in ox.sparql(q, {"c": Iri(concept_iri(x))})),
        "rdflib_sparql": lambda x: sorted(r["a"] for r in rl.sparql(q, {"c": Iri(concept_iri(x))})),
    }.items():
        times, answers = [], []
        for x in sample:
            t = time.perf_counter()
            answers.append(fn(x))
            times.append(time.perf_counter() - t)
        res[name] = (times, answers)
    mem_ans = [[concept_iri(a) for a in ans] for ans in res["memory"][1]]
    for name in ("oxigraph_sparql", "rdflib_sparql"):
        if [sorted(a) for a in mem_ans] != res[name][1]:
            raise RuntimeError(f"{name} ancestors differ from the memory backend")
    for name, (times, _) in res.items():
        out[f"ancestors_{name}_p50_ms"] = round(pct(times, 0.5) * 1e3, 4)
    out["equal_answers"] = True
    m = out["ancestors_memory_p50_ms"]
    out["ratio_rdflib_over_memory"] = round(out["ancestors_rdflib_sparql_p50_ms"] / m, 1)
    out["ratio_oxigraph_over_memory"] = round(out["ancestors_oxigraph_sparql_p50_ms"] / m, 1)
    # shortest paths between random disease pairs, memory backend, undirected
    times = []
    for _ in range(30):
        a, b = rng.sample(ids, 2)
        t = time.perf_counter()
        kg.shortest_path(a, b)
        times.append(time.perf_counter() - t)
    out["shortest_path_memory_p50_ms"] = round(pct(times, 0.5) * 1e3, 2)
    return out


def make_rrf(folder: Path, rows: int) -> None:
    rng = random.Random(0)
    n_cui = rows // 4
    with open(folder / "MRCONSO.RRF", "w") as fh:
        for i in range(rows):
            cui = f"C{(i % n_cui):07d}"
            lat = "ENG" if rng.random() < 0.8 else "FRE"
            sab = rng.choice(["MSH", "SNOMEDCT_US", "ICD10CM", "NCI"])
            supp = "N" if rng.random() < 0.95 else "O"
            ts = "P" if i < n_cui else "S"
            fh.write(f"{cui}|{lat}|{ts}|L{i:07d}|PF|S{i:07d}|Y|A{i:08d}||||{sab}|PT|X{i}|synthetic term {i}|0|{supp}|256|\n")
    with open(folder / "MRREL.RRF", "w") as fh:
        for i in range(rows):
            a, b = rng.randrange(n_cui), rng.randrange(n_cui)
            rel, rela = rng.choice([("PAR", "inverse_isa"), ("CHD", "isa"), ("RO", "has_finding_site"), ("RO", "")])
            fh.write(f"C{a:07d}|A1|SCUI|{rel}|C{b:07d}|A2|SCUI|{rela}|R{i}||SNOMEDCT_US||0|Y|N||\n")


def bench_rrf(rows: int) -> dict:
    from graphbrain.kg.readers.rrf import DEFAULT_COLUMNS, iter_rrf, read_rrf

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        make_rrf(folder, rows)
        size = sum(p.stat().st_size for p in folder.iterdir())
        t = time.perf_counter()
        n = sum(1 for _ in iter_rrf(folder / "MRCONSO.RRF", DEFAULT_COLUMNS["MRCONSO.RRF"]))
        stream_s = time.perf_counter() - t
        tracemalloc.start()
        t = time.perf_counter()
        res = read_rrf(folder)
        build_s = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    total = res.stats["MRCONSO.RRF:rows"] + res.stats["MRREL.RRF:rows"]
    return {
        "rows_per_file": rows,
        "bytes_on_disk_MB": round(size / 2**20, 1),
        "iter_mrconso_rows_per_s": int(n / stream_s),
        "read_rrf_rows_per_s": int(total / build_s),
        "read_rrf_seconds": round(build_s, 1),
        "concepts": len(res.concepts),
        "relations": len(res.relations),
        "read_rrf_python_peak_MB": round(peak / 2**20, 1),
        "note": "peak grows with kept concepts/relations, not with rows read",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rrf-rows", type=int, default=1_000_000)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from graphbrain.kg import KnowledgeGraph

    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}",
        "load": bench_load(),
    }
    print(json.dumps(out["load"]), flush=True)
    kg = KnowledgeGraph.default()
    out["diagnose"] = bench_diagnose(kg)
    print(json.dumps(out["diagnose"]), flush=True)
    out["paths"] = bench_paths(kg)
    print(json.dumps(out["paths"]), flush=True)
    out["rrf"] = bench_rrf(args.rrf_rows)
    out["max_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
