"""Rank candidate diseases from findings by multi-hop KG paths, with evidence (DR.KNOWS-style).

For every finding ``f`` (symptom, phenotype, anatomical site ...) each disease ``d`` gets
the weight of its best path type to ``f``; a disease's score is the sum over findings of
``idf(f) * weight``, where ``idf(f) = log(1 + N_diseases / (1 + df(f)))`` and ``df(f)`` is
the number of diseases linked to ``f`` directly (so "fever" counts less than "seizure").
Path types, best first (``R`` is a finding relation such as ``has_symptom``)::

    direct       d -R-> f                                   1.0   (1 hop)
    specific     d -R-> f' -is_a-> f       (f' narrower)    0.8   (2 hops, up to 2 levels)
    inherited    d -is_a-> p -R-> f                         0.7   (2 hops)
    general      d -R-> g <-is_a- f        (g broader)      0.5   (2 hops)
    inherited2   d -is_a-> p -is_a-> q -R-> f               0.5   (3 hops)
    sibling      d -is_a-> p <-is_a- d' -R-> f              0.4 * share of p's children with f

Everything runs on integer CSR arrays built once per graph (:class:`DiagnosisIndex`);
evidence paths are rebuilt only for the ``top_k`` answers.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from graphbrain.kg.backends.memory import MemoryBackend, _gather
from graphbrain.kg.lookup import normalise_text
from graphbrain.kg.model import DISEASE_TUIS, IS_A
from graphbrain.kg.paths import Path

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph

DEFAULT_FINDING_RELATIONS = ("has_symptom", "has_phenotype", "located_in", "has_feature")

_TYPES = ("direct", "specific", "inherited", "general", "inherited2", "sibling")
_W = {"direct": 1.0, "specific": 0.8, "inherited": 0.7, "general": 0.5, "inherited2": 0.5}
_SIBLING_W = 0.4
_HOPS = {"direct": 1, "specific": 2, "inherited": 2, "general": 2, "inherited2": 3, "sibling": 3}


@dataclass(frozen=True)
class Finding:
    """A finding as given by the user and the concept it was linked to."""

    query: str
    concept_id: str
    name: str
    match: str  # "id" | "code" | "name" | "synonym" | "fuzzy"


@dataclass(frozen=True)
class Candidate:
    rank: int
    concept_id: str
    name: str
    score: float
    matched: tuple[str, ...]  # finding concept ids with a path
    evidence: tuple[Path, ...]
    evidence_text: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.concept_id,
            "name": self.name,
            "score": round(self.score, 6),
            "matched_findings": list(self.matched),
            "evidence": list(self.evidence_text),
        }


@dataclass
class DiagnosisResult:
    findings: list[Finding]
    unresolved: list[str]
    candidates: list[Candidate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.__dict__ for f in self.findings],
            "unresolved": self.unresolved,
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def table(self) -> str:
        lines = ["findings: " + ", ".join(f"{f.name} [{f.concept_id}]" for f in self.findings)]
        if self.unresolved:
            lines.append("unresolved: " + ", ".join(self.unresolved))
        for c in self.candidates:
            lines.append(f"{c.rank:>3}. {c.name} [{c.concept_id}]  score={c.score:.3f}")
            lines.extend(f"       {t}" for t in c.evidence_text)
        return "\n".join(lines)


class DiagnosisIndex:
    """Integer arrays for fast diagnosis over a :class:`MemoryBackend`."""

    def __init__(
        self,
        mem: MemoryBackend,
        finding_relations: Sequence[str] = DEFAULT_FINDING_RELATIONS,
        disease_tuis: Iterable[str] = DISEASE_TUIS,
    ) -> None:
        self.mem = mem
        cols = mem.columns
        n = len(mem.ids)
        self.n = n
        tuis = set(disease_tuis)
        sty_ok = np.array([t.tui in tuis for t in cols.semantic_types] + [False], dtype=bool)
        self.is_disease = np.array([bool(sty_ok[t].any()) if t else False for t in cols.types], dtype=bool)
        codes = [mem.relation_code(r) for r in finding_relations]
        codes = [c for c in codes if c >= 0]
        fr_mask = np.isin(cols.relation, np.array(codes, dtype=np.int32)) & self.is_disease[cols.head]
        fe = np.flatnonzero(fr_mask).astype(np.int32)
        # finding -> diseases CSR (with edge ids, for evidence)
        order = np.lexsort((cols.head[fe], cols.tail[fe]))
        fe = fe[order]
        self.f_edges = fe
        self.f_dis = cols.head[fe].astype(np.int64)
        self.f_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols.tail[fe], minlength=n), out=self.f_ptr[1:])
        # is_a both ways
        isa = mem.relation_code(IS_A)
        ie = np.flatnonzero(cols.relation == isa).astype(np.int32) if isa >= 0 else np.zeros(0, np.int32)
        self.isa_code = isa
        o = np.lexsort((cols.tail[ie], cols.head[ie]))
        self.par_edges = ie[o]
        self.par = cols.tail[self.par_edges].astype(np.int64)
        self.par_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols.head[ie], minlength=n), out=self.par_ptr[1:])
        o = np.lexsort((cols.head[ie], cols.tail[ie]))
        self.chi_edges = ie[o]
        self.chi = cols.head[self.chi_edges].astype(np.int64)
        self.chi_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols.tail[ie], minlength=n), out=self.chi_ptr[1:])
        self.n_children = np.diff(self.chi_ptr)
        df = np.diff(self.f_ptr)
        n_dis = max(int(self.is_disease.sum()), 1)
        self.idf = np.log1p(n_dis / (1.0 + df))

    # -- small helpers
    def diseases_of(self, nodes: np.ndarray) -> np.ndarray:
        return _gather(self.f_dis, self.f_ptr[nodes], self.f_ptr[nodes + 1])

    def parents(self, nodes: np.ndarray) -> np.ndarray:
        return _gather(self.par, self.par_ptr[nodes], self.par_ptr[nodes + 1])

    def children(self, nodes: np.ndarray) -> np.ndarray:
        return _gather(self.chi, self.chi_ptr[nodes], self.chi_ptr[nodes + 1])

    def score_finding(self, f: int, max_hops: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Best path weight (float32) and path type index (int8, -1 none) for every node."""
        s = np.zeros(self.n, dtype=np.float32)
        typ = np.full(self.n, -1, dtype=np.int8)

        def put(idx: np.ndarray, w: float, k: int) -> None:
            if idx.size == 0:
                return
            idx = idx[s[idx] == 0]
            s[idx] = w
            typ[idx] = k

        fa = np.array([f], dtype=np.int64)
        d0 = self.diseases_of(fa)
        put(d0, _W["direct"], 0)
        if max_hops >= 2:
            c1 = self.children(fa)
            c2 = self.children(c1) if c1.size else c1
            put(self.diseases_of(np.unique(np.concatenate([c1, c2]))), _W["specific"], 1)
            if d0.size:
                put(self.children(d0), _W["inherited"], 2)
            put(self.diseases_of(self.parents(fa)), _W["general"], 3)
        if max_hops >= 3 and d0.size:
            put(self.children(self.children(d0)), _W["inherited2"], 4)
            p = self.parents(d0)
            if p.size:
                up, cnt = np.unique(p, return_counts=True)
                frac = cnt / np.maximum(self.n_children[up], 1)
                order = np.argsort(-frac, kind="stable")
                up, frac = up[order], frac[order]
                kids = _gather(self.chi, self.chi_ptr[up], self.chi_ptr[up + 1])
                w = np.repeat(_SIBLING_W * frac, self.n_children[up])
                # first occurrence = highest weight (parents sorted by weight)
                kids_u, first = np.unique(kids, return_index=True)
                keep = s[kids_u] == 0
                s[kids_u[keep]] = w[first[keep]]
                typ[kids_u[keep]] = 5
        return s, typ

    def rank(
        self, findings: Sequence[int], top_k: int = 10, max_hops: int = 3
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        total = np.zeros(self.n, dtype=np.float64)
        per = []
        for f in findings:
            s, typ = self.score_finding(f, max_hops)
            total += self.idf[f] * s
            per.append((s, typ))
        total[~self.is_disease] = 0.0
        total[np.asarray(findings, dtype=np.int64)] = 0.0
        cand = np.flatnonzero(total > 0)
        if cand.size > top_k:
            part = np.argpartition(-total[cand], top_k - 1)[:top_k]
            thresh = total[cand[part]].min()
            cand = cand[total[cand] >= thresh]
        ids = self.mem.ids
        order = sorted(cand.tolist(), key=lambda i: (-total[i], ids[i]))[:top_k]
        return np.array(order, dtype=np.int64), total, per

    # -- evidence
    def _edge_between(self, d: int, f: int) -> int:
        lo, hi = self.f_ptr[f], self.f_ptr[f + 1]
        seg = self.f_dis[lo:hi]
        j = np.searchsorted(seg, d)
        if j < seg.size and seg[j] == d:
            return int(self.f_edges[lo + j])
        return -1

    def _isa_edge(self, child: int, parent: int) -> int:
        lo, hi = self.par_ptr[child], self.par_ptr[child + 1]
        seg = self.par[lo:hi]
        j = np.searchsorted(seg, parent)
        if j < seg.size and seg[j] == parent:
            return int(self.par_edges[lo + j])
        return -1

    def evidence(self, d: int, f: int, typ: int) -> Path | None:
        m = self.mem
        ids = m.ids
        kind = _TYPES[typ] if typ >= 0 else None

        def path(nodes: list[int], edges: list[int]) -> Path:
            return Path(tuple(ids[x] for x in nodes), tuple(m.relation_at(e) for e in edges))

        if kind == "direct":
            return path([d, f], [self._edge_between(d, f)])
        if kind == "specific":
            for c in self.children(np.array([f])).tolist():
                e = self._edge_between(d, c)
                if e >= 0:
                    return path([d, c, f], [e, self._isa_edge(c, f)])
            for c in self.children(np.array([f])).tolist():
                for c2 in self.children(np.array([c])).tolist():
                    e = self._edge_between(d, c2)
                    if e >= 0:
                        return path([d, c2, c, f], [e, self._isa_edge(c2, c), self._isa_edge(c, f)])
        if kind == "inherited":
            for p in self.parents(np.array([d])).tolist():
                e = self._edge_between(p, f)
                if e >= 0:
                    return path([d, p, f], [self._isa_edge(d, p), e])
        if kind == "general":
            for g in self.parents(np.array([f])).tolist():
                e = self._edge_between(d, g)
                if e >= 0:
                    return path([d, g, f], [e, self._isa_edge(f, g)])
        if kind == "inherited2":
            for p in self.parents(np.array([d])).tolist():
                for q in self.parents(np.array([p])).tolist():
                    e = self._edge_between(q, f)
                    if e >= 0:
                        return path([d, p, q, f], [self._isa_edge(d, p), self._isa_edge(p, q), e])
        if kind == "sibling":
            best: tuple[float, int, int] | None = None
            d0 = set(self.diseases_of(np.array([f])).tolist())
            for p in self.parents(np.array([d])).tolist():
                kids = self.children(np.array([p])).tolist()
                hits = sorted(k for k in kids if k in d0 and k != d)
                if hits:
                    share = len([k for k in kids if k in d0]) / max(len(kids), 1)
                    if best is None or share > best[0]:
                        best = (share, p, hits[0])
            if best is not None:
                _, p, sib = best
                e = self._edge_between(sib, f)
                return path([d, p, sib, f], [self._isa_edge(d, p), self._isa_edge(sib, p), e])
        return None


def diagnose(
    kg: KnowledgeGraph,
    findings: Iterable[str],
    top_k: int = 10,
    *,
    max_hops: int = 3,
    fuzzy: bool = True,
    finding_relations: Sequence[str] | None = None,
) -> DiagnosisResult:
    """Rank diseases explaining ``findings`` (concept ids, codes, names or free text)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if max_hops not in (1, 2, 3):
        raise ValueError(f"max_hops must be 1, 2 or 3, got {max_hops}")
    items = [findings] if isinstance(findings, str) else list(findings)
    if not items:
        raise ValueError("diagnose needs at least one finding")
    idx = kg.diagnosis_index(tuple(finding_relations) if finding_relations else DEFAULT_FINDING_RELATIONS)
    mem = idx.mem
    resolved: list[Finding] = []
    unresolved: list[str] = []
    for q in items:
        f = _resolve(kg, mem, q, fuzzy)
        if f is None:
            unresolved.append(q)
        elif all(f.concept_id != r.concept_id for r in resolved):
            resolved.append(f)
    result = DiagnosisResult(resolved, unresolved)
    if not resolved:
        return result
    fnodes = [mem.index[f.concept_id] for f in resolved]
    order, total, per = idx.rank(fnodes, top_k, max_hops)
    names = mem.columns.names
    for rank, d in enumerate(order.tolist(), start=1):
        matched, ev = [], []
        contrib = []
        for fi, (s, typ) in zip(fnodes, per):
            if s[d] > 0:
                matched.append(mem.ids[fi])
                p = idx.evidence(d, fi, int(typ[d]))
                if p is not None:
                    contrib.append((-float(idx.idf[fi] * s[d]), mem.ids[fi], p))
        contrib.sort(key=lambda x: (x[0], x[1]))
        ev = [p for _, _, p in contrib]
        result.candidates.append(
            Candidate(
                rank=rank,
                concept_id=mem.ids[d],
                name=names[d],
                score=float(total[d]),
                matched=tuple(sorted(matched)),
                evidence=tuple(ev),
                evidence_text=tuple(p.describe(mem.name_of) for p in ev),
            )
        )
    return result


def _resolve(kg: KnowledgeGraph, mem: MemoryBackend, q: str, fuzzy: bool) -> Finding | None:
    q = q.strip()
    if not q:
        return None
    if q in mem.index:
        return Finding(q, q, mem.name_of(q), "id")
    matches = mem.lookup(q, mode="auto" if fuzzy else "ci", limit=5)
    if not matches and not fuzzy:
        matches = mem.lookup(q, mode="code", limit=5)
    for m in matches:
        if m.score >= 1.0:
            return Finding(q, m.concept_id, mem.name_of(m.concept_id), m.kind)
        # A fuzzy match must match every word of the finding: "seizures" -> "seizure" is
        # fine, "abnormal EEG" -> "abnormal feces" is not (character similarity 0.85).
        if words_agree(q, m.label):
            return Finding(q, m.concept_id, mem.name_of(m.concept_id), "fuzzy")
    return None


def words_agree(query: str, label: str, min_ratio: float = 0.8) -> bool:
    """Whether every word of ``query`` is close (ratio >= ``min_ratio``) to a word of ``label``."""
    label_words = normalise_text(label).split()
    return all(
        any(difflib.SequenceMatcher(None, w, lw).ratio() >= min_ratio for lw in label_words)
        for w in normalise_text(query).split()
    )


def idf_weight(df: int, n_diseases: int) -> float:
    return math.log1p(n_diseases / (1.0 + df))
