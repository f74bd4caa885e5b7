"""Held-out evaluation of :func:`~graphbrain.kg.diagnose.diagnose` on disease -> symptom links.

Protocol ``"holdout"``: sample diseases with at least ``min_symptoms`` ``has_symptom``
links, remove *all* their symptom links from the graph, then query each held-out disease
with its (removed) symptoms. The diagnosis ranker can only reach it through multi-hop
paths (is-a parents, siblings, specific/general symptoms); the symptom-overlap baseline
(rank diseases by the number of query symptoms they have in the training graph) ranks it
among the diseases with the same overlap.

Protocol ``"partial"``: keep the graph, query each sampled disease with half of its
symptoms (rounded up) — the usual incomplete-presentation setting.

Ranks are *realistic*: ties count half (rank = 1 + #better + #tied / 2), over all disease
concepts. Reported: Hits@1, Hits@10, MRR and mean rank for both methods. ``scoring``
(``"ic"`` default, or ``"legacy"``) and ``params`` choose the diagnosis scoring (see
:mod:`graphbrain.kg.diagnose`); :func:`protocol_queries` gives the training graph and the
queries, for comparing several scorings on the same queries
(``benchmarks/kg_diagnosis_tuning.py``).
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphbrain.kg.diagnose import DEFAULT_SCORING, SCORINGS, IcParams
from graphbrain.kg.graph import KnowledgeGraph


@dataclass
class RankingMetrics:
    hits_at_1: float
    hits_at_10: float
    mrr: float
    mean_rank: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {
            "hits@1": round(self.hits_at_1, 4),
            "hits@10": round(self.hits_at_10, 4),
            "mrr": round(self.mrr, 4),
            "mean_rank": round(self.mean_rank, 1),
            "n": self.n,
        }


def ranking_metrics(ranks: list[float]) -> RankingMetrics:
    if not ranks:
        raise ValueError("no queries were evaluated; lower min_symptoms or raise n_queries")
    r = np.asarray(ranks, dtype=np.float64)
    return RankingMetrics(
        float((r <= 1).mean()), float((r <= 10).mean()), float((1.0 / r).mean()), float(r.mean()), len(r)
    )


def realistic_rank(scores: np.ndarray, candidates: np.ndarray, target: int) -> float:
    s = scores[candidates]
    t = scores[target]
    better = int((s > t).sum())
    tied = int((s == t).sum()) - 1
    return 1.0 + better + tied / 2.0


def evaluate_diagnosis(
    kg: KnowledgeGraph,
    *,
    protocol: str = "holdout",
    n_queries: int = 200,
    min_symptoms: int = 2,
    seed: int = 0,
    relation: str = "has_symptom",
    max_hops: int = 3,
    holdout_relations: tuple[str, ...] | list[str] | None = None,
    scoring: str = DEFAULT_SCORING,
    params: IcParams | None = None,
) -> dict[str, Any]:
    """Diagnosis ranking vs the symptom-overlap baseline (see module doc).

    ``holdout_relations`` (protocol ``"holdout"``): the finding relations removed from the
    held-out diseases, default ``(relation,)``. On a graph where diseases reach findings
    through several relations (DO ``has_symptom`` and HPO ``has_phenotype``), hold out all
    of them, or the held-out disease stays reachable directly.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    train, idx, diseases, queries, inc = protocol_queries(
        kg, protocol=protocol, n_queries=n_queries, min_symptoms=min_symptoms, seed=seed,
        relation=relation, holdout_relations=holdout_relations,
    )
    tmem = train.memory()
    ours, base = [], []
    for qt, target in queries:
        if scoring == "ic":
            _, total, _ = idx.rank_ic(qt, top_k=1, max_hops=max_hops, params=params, per_finding=False)
        else:
            _, total, _ = idx.rank(qt, top_k=1, max_hops=max_hops)
            total = total.copy()
            total[qt] = -1.0
        ours.append(realistic_rank(total, diseases, target))
        v = np.zeros(len(tmem.ids))
        v[qt] = 1.0
        overlap = np.asarray(inc @ v).ravel()
        overlap[qt] = -1.0
        base.append(realistic_rank(overlap, diseases, target))
    return {
        "protocol": protocol,
        "queries": len(queries),
        "candidates": int(len(diseases)),
        "diagnose": ranking_metrics(ours).to_dict(),
        "symptom_overlap": ranking_metrics(base).to_dict(),
        "seed": seed,
        "min_symptoms": min_symptoms,
        "max_hops": max_hops,
        "scoring": scoring,
        "params": dataclasses.asdict(params or IcParams()) if scoring == "ic" else None,
        "holdout_relations": sorted(set(holdout_relations or (relation,))) if protocol == "holdout" else [],
    }


def protocol_queries(
    kg: KnowledgeGraph,
    *,
    protocol: str = "holdout",
    n_queries: int = 200,
    min_symptoms: int = 2,
    seed: int = 0,
    relation: str = "has_symptom",
    holdout_relations: tuple[str, ...] | list[str] | None = None,
) -> tuple[KnowledgeGraph, Any, np.ndarray, list[tuple[list[int], int]], Any]:
    """The training graph, its diagnosis index, the candidate diseases, the queries
    ``(finding nodes, target node)`` and the baseline's disease x finding incidence matrix
    of :func:`evaluate_diagnosis` (node numbers of the training graph)."""
    if protocol not in ("holdout", "partial"):
        raise ValueError(f"protocol must be 'holdout' or 'partial', got {protocol!r}")
    mem = kg.memory()
    code = mem.relation_code(relation)
    if code < 0:
        raise ValueError(f"the graph has no {relation!r} relations to evaluate on")
    cols = mem.columns
    sel = np.flatnonzero(cols.relation == code)
    symptoms: dict[int, list[int]] = {}
    for e in sel:
        symptoms.setdefault(int(cols.head[e]), []).append(int(cols.tail[e]))
    eligible = sorted(d for d, s in symptoms.items() if len(set(s)) >= min_symptoms)
    rng = random.Random(seed)
    chosen = rng.sample(eligible, min(n_queries, len(eligible)))
    if protocol == "holdout":
        held = {mem.ids[d] for d in chosen}
        drop = set(holdout_relations or (relation,))
        train = kg.filter_relations(lambda r: not (r.relation in drop and r.head in held))
    else:
        train = kg
    tmem = train.memory()
    idx = train.diagnosis_index(("has_symptom", "has_phenotype", "located_in", "has_feature"))
    diseases = np.flatnonzero(idx.is_disease)
    # baseline: disease x symptom incidence in the training graph
    tcode = tmem.relation_code(relation)
    tsel = np.flatnonzero(tmem.columns.relation == tcode)
    from scipy.sparse import csr_matrix

    inc = csr_matrix(
        (np.ones(len(tsel)), (tmem.columns.head[tsel], tmem.columns.tail[tsel])),
        shape=(len(tmem.ids), len(tmem.ids)),
    )
    inc.data[:] = 1.0
    queries = []
    for d in chosen:
        q = sorted(set(symptoms[d]))
        if protocol == "partial":
            q = sorted(rng.sample(q, math.ceil(len(q) / 2)))
        queries.append(([tmem.index[mem.ids[x]] for x in q], tmem.index[mem.ids[d]]))
    return train, idx, diseases, queries, inc
