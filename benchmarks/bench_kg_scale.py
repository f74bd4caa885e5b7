"""UMLS-scale benchmark of the on-disk knowledge-graph store.

For each size (total RRF rows, split 20 % MRCONSO / 80 % MRREL like a real release's
16M + 60M): generate a synthetic release in the real column layout (benchmarks/gen_rrf.py),
build the store in a child process under ``/usr/bin/time -v`` (wall time, rows/s, peak RSS),
then, in a *new* process, open the store and answer a first look-up and a first diagnosis
(timed inside the process, interpreter and imports reported apart). At the smallest size the
line-by-line ``read_rrf`` + in-memory graph is measured in the same run as the reference.
Generated files are deleted after each size unless ``--keep`` (a kept release is reused).

Rows counted: MRCONSO + MRREL + MRSTY. Reported per build: wall time and rows/s, CPU-seconds
(user + system of the build process, all its threads, interpreter start and imports included),
rows per CPU-second, peak RSS, and the machine's 1-minute load average before and after (on a
shared machine the wall-clock rate depends on the load; the CPU figures do much less).
``--repeat N`` builds each size N times (the fastest wall and the lowest CPU are reported with
every run listed); ``--sequential`` also builds with the relation side after the concept side
(``build_store(concurrent=False)``) for comparison.

    python benchmarks/bench_kg_scale.py --sizes 1000000 5000000 20000000 --work /tmp/kgscale \
        --out benchmarks/results_kg_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FIRST_QUERY = r"""
import json, sys, time
t0 = time.perf_counter()
from graphbrain.kg import KnowledgeGraph
t1 = time.perf_counter()
kg = KnowledgeGraph.open(sys.argv[1])
t2 = time.perf_counter()
hits = kg.lookup(sys.argv[2], limit=5)
t3 = time.perf_counter()
import inspect
from graphbrain.kg.diagnose import diagnose as _d
# the memory-mapped index serves the legacy scoring; scoring="ic" builds an is-a closure in memory
kw = {"scoring": "legacy"} if "scoring" in inspect.signature(_d).parameters else {}
res = kg.diagnose(sys.argv[3:], top_k=10, **kw)
t4 = time.perf_counter()
res2 = kg.diagnose(sys.argv[3:4], top_k=10, **kw)
t5 = time.perf_counter()
fz = kg.lookup("tremor rigidity", mode="fuzzy", limit=5)
t6 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "first_lookup_s": t3 - t2,
                  "first_diagnose_s": t4 - t3, "second_diagnose_s": t5 - t4, "first_fuzzy_s": t6 - t5,
                  "open_to_first_diagnosis_s": t4 - t1, "hits": len(hits), "candidates": len(res.candidates),
                  "fuzzy_hits": len(fz), "diagnose_kwargs": kw}))
"""

REFERENCE = r"""
import json, sys, time, resource
t0 = time.perf_counter()
from graphbrain.kg.readers.rrf import read_rrf
kg = read_rrf(sys.argv[1]).to_kg()
t1 = time.perf_counter()
print(json.dumps({"wall_s": t1 - t0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "concepts": len(kg), "relations": kg.backend.num_relations()}))
"""


def _time_v(cmd: list[str], timeout: int) -> tuple[dict, str]:
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {p.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr)
    parts = [float(x) for x in w.group(1).split(":")] if w else [0.0]
    wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", p.stderr))
    return {"peak_rss_mb": int(m.group(1)) / 1024 if m else None, "wall_s": wall, "cpu_s": cpu}, p.stdout


def _build(meta: Path, store: Path, timeout: int, concurrent: bool) -> dict:
    shutil.rmtree(store, ignore_errors=True)
    build_py = (
        "import json, sys; from graphbrain.kg.store import build_store; "
        "m = build_store(sys.argv[1], sys.argv[2], concurrent=sys.argv[3] == '1'); "
        "print(json.dumps({k: m[k] for k in ('concepts', 'relations', 'build_seconds')}))"
    )
    load_before = os.getloadavg()
    tv, out = _time_v([sys.executable, "-c", build_py, str(meta), str(store), "1" if concurrent else "0"], timeout)
    load_after = os.getloadavg()
    built = json.loads(out.strip().splitlines()[-1])
    return {**tv, **built, "concurrent": concurrent,
            "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "phases": json.loads((store / "meta.json").read_text())["phases"]}


def run_size(n: int, work: Path, timeout: int, reference: bool, keep: bool = False, repeat: int = 1,
             sequential: bool = False) -> dict:
    sys.path.insert(0, str(HERE))
    from gen_rrf import generate

    meta, store = work / f"meta_{n}", work / f"store_{n}"
    n_conso, n_rel = n // 5, n - n // 5
    t = time.perf_counter()
    if not (keep and (meta / "MRREL.RRF").is_file() and (meta / "MRSTY.RRF").is_file()):
        shutil.rmtree(meta, ignore_errors=True)
        generate(meta, n_conso, n_rel, seed=0)
    gen_s = time.perf_counter() - t
    size_mb = sum(f.stat().st_size for f in meta.iterdir()) / 2**20
    runs = [_build(meta, store, timeout, True) for _ in range(repeat)]
    if sequential:
        runs += [_build(meta, store, timeout, False) for _ in range(repeat)]
        _build(meta, store, timeout, True)  # the store queried below is a concurrent build
    built = runs[0]
    rows = n_conso + n_rel + built["concepts"]  # + MRSTY (one row per concept)
    for r in runs:
        r["rows_per_s"] = round(rows / r["wall_s"])
        r["rows_per_cpu_s"] = round(rows / max(r["cpu_s"], 1e-9))
        r["cpu_us_per_row"] = round(1e6 * r["cpu_s"] / rows, 2)
    conc = [r for r in runs if r["concurrent"]]
    tv = min(conc, key=lambda r: r["wall_s"])
    phases = tv["phases"]
    store_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20
    # a finding with diseases: the tail of a has_manifestation edge
    from graphbrain.kg import KnowledgeGraph

    kg = KnowledgeGraph.open(store)
    be = kg.backend
    code = be.relation_code("has_manifestation")
    import numpy as np

    e = np.flatnonzero(np.asarray(be.rel[:200000]) == code)[:3]
    findings = [be.ids[int(be.tail[i])] for i in e]
    name = be.name_of(findings[0])
    del kg, be
    q = subprocess.run([sys.executable, "-c", FIRST_QUERY, str(store), name, *findings],
                       capture_output=True, text=True, timeout=300)
    if q.returncode != 0:
        raise RuntimeError(q.stderr[-2000:])
    first = json.loads(q.stdout.strip().splitlines()[-1])
    res = {
        "rows_total": n, "mrconso_rows": n_conso, "mrrel_rows": n_rel, "mrsty_rows": built["concepts"],
        "rrf_mb": round(size_mb, 1), "generate_s": round(gen_s, 1),
        "build_wall_s": round(tv["wall_s"], 2), "build_inner_s": tv["build_seconds"],
        "rows_per_s": tv["rows_per_s"], "build_cpu_s": round(tv["cpu_s"], 1),
        "rows_per_cpu_s": tv["rows_per_cpu_s"], "cpu_us_per_row": tv["cpu_us_per_row"],
        "lowest_cpu_us_per_row": min(r["cpu_us_per_row"] for r in conc),
        "peak_rss_mb": round(tv["peak_rss_mb"], 1),
        "highest_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "load_average_1min_before_after": tv["load_average_1min_before_after"],
        "phases": phases,
        "runs": [{k: v for k, v in r.items() if k != "phases"} for r in runs],
        "concepts": built["concepts"], "relations": built["relations"], "store_mb": round(store_mb, 1),
        "first_query": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in first.items()},
    }
    if reference:
        tr, out = _time_v([sys.executable, "-c", REFERENCE, str(meta)], timeout)
        ref = json.loads(out.strip().splitlines()[-1])
        res["reference_read_rrf"] = {"wall_s": round(tr["wall_s"], 2), "rows_per_s": round(rows / tr["wall_s"]),
                                     "peak_rss_mb": round(tr["peak_rss_mb"], 1)}
        res["speedup_vs_read_rrf"] = round(tr["wall_s"] / tv["wall_s"], 2)
        assert ref["concepts"] == built["concepts"] and ref["relations"] == built["relations"]
    if not keep:
        shutil.rmtree(meta, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--work", type=Path, default=Path("/tmp/kgscale"))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=3000)
    p.add_argument("--no-reference", action="store_true", help="skip the read_rrf reference at the first size")
    p.add_argument("--keep", action="store_true", help="keep (and reuse) the generated releases under --work")
    p.add_argument("--repeat", type=int, default=1, help="builds per size (fastest reported, all listed)")
    p.add_argument("--sequential", action="store_true", help="also build with concurrent=False")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    results = []
    for i, n in enumerate(a.sizes):
        r = run_size(n, a.work, a.timeout, reference=(i == 0 and not a.no_reference), keep=a.keep,
                     repeat=a.repeat, sequential=a.sequential)
        print(json.dumps(r), flush=True)
        results.append(r)
        if a.out:
            a.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
