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

Finding relations work on any graph: :data:`FINDING_RELATIONS` maps the relation names of the
Disease Ontology, HPO and UMLS (``has_manifestation``, ``manifestation_of``,
``has_finding_site``, ``finding_site_of``, ``clinically_associated_with`` ...) to the end that
is the disease (``"head"``, ``"tail"`` or ``"either"``). By default :func:`diagnose` uses the
ones present in the graph; ``finding_relations=`` (CLI ``--relations``) chooses others. A
graph without any finding relation raises :class:`DiagnosisError`; findings that reach no
disease are listed in :attr:`DiagnosisResult.unlinked`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from graphbrain.errors import DataError
from graphbrain.kg.backends.memory import MemoryBackend, _gather
from graphbrain.kg.lookup import normalise_text
from graphbrain.kg.model import DISEASE_TUIS, IS_A, check_relation_name
from graphbrain.kg.paths import Path

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph

DEFAULT_FINDING_RELATIONS = ("has_symptom", "has_phenotype", "located_in", "has_feature")

DISEASE_ENDS = ("head", "tail", "either")
# relation type -> the end that is the disease. UMLS names are MRREL RELA values as read by
# read_rrf (a row becomes CUI2 -RELA-> CUI1, so "D has_manifestation F" has the disease at the head).
FINDING_RELATIONS: dict[str, str] = {
    # Disease Ontology, HPO, graphbrain
    "has_symptom": "head",
    "has_phenotype": "head",
    "located_in": "head",
    "has_feature": "head",
    "symptom_of": "tail",
    "phenotype_of": "tail",
    # UMLS (SNOMED CT, NCI, MedDRA ... relation attributes)
    "has_manifestation": "head",
    "manifestation_of": "tail",
    "has_finding_site": "head",
    "finding_site_of": "tail",
    "has_associated_finding": "head",
    "associated_finding_of": "tail",
    "has_associated_morphology": "head",
    "associated_morphology_of": "tail",
    "disease_has_finding": "head",
    "is_finding_of_disease": "tail",
    "disease_may_have_finding": "head",
    "may_be_finding_of_disease": "tail",
    "has_sign_or_symptom": "head",
    "sign_or_symptom_of": "tail",
    "disease_has_associated_anatomic_site": "head",
    "is_associated_anatomic_site_of": "tail",
    "disease_has_primary_anatomic_site": "head",
    "is_primary_anatomic_site_of_disease": "tail",
    "disease_has_abnormal_cell": "head",
    "abnormal_cell_affected_by_disease": "tail",
    "clinically_associated_with": "either",
}


class DiagnosisError(DataError):
    """Diagnosis cannot run on this graph as asked (no finding relation, unknown relation)."""


def detect_finding_relations(relation_types: Iterable[str]) -> dict[str, str]:
    """The built-in finding relations among ``relation_types``, with their disease end."""
    return {r: FINDING_RELATIONS[r] for r in sorted(set(relation_types)) if r in FINDING_RELATIONS}


def finding_relation_spec(
    spec: Sequence[str] | Mapping[str, str] | str | None, relation_types: Iterable[str]
) -> tuple[tuple[str, str], ...]:
    """Normalise ``finding_relations`` to sorted ``(relation, disease_end)`` pairs, checked
    against the graph's ``relation_types``.

    ``spec``: ``None`` (auto-detect from :data:`FINDING_RELATIONS`), names (``"NAME"`` or
    ``"NAME=head|tail|either"``; the disease end of a name not in the built-in map is the
    head) or a mapping name -> disease end.
    """
    available = sorted(set(relation_types))
    if spec is None:
        found = detect_finding_relations(available)
        if not found:
            raise DiagnosisError(
                "this graph has no finding relation that diagnosis knows "
                f"({', '.join(sorted(FINDING_RELATIONS))}); its relation types are "
                f"{', '.join(available) or 'none'}. Name the relations that link diseases to "
                "findings with finding_relations=[...] (CLI: --relations NAME[=head|tail|either])",
                reason="no_finding_relation",
            )
        return tuple(sorted(found.items()))
    if isinstance(spec, str):
        spec = [spec]
    items: list[tuple[str, str]] = []
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    else:
        for x in spec:
            name, sep, end = str(x).partition("=")
            name = name.strip()
            items.append((name, end.strip() if sep else FINDING_RELATIONS.get(name, "head")))
    if not items:
        raise DiagnosisError("finding_relations is empty; pass None to auto-detect", reason="empty")
    for name, end in items:
        check_relation_name(name)
        if end not in DISEASE_ENDS:
            raise DiagnosisError(
                f"the disease end of {name!r} must be one of {DISEASE_ENDS}, got {end!r}",
                reason="bad_direction",
            )
    missing = sorted({n for n, _ in items} - set(available))
    if missing:
        raise DiagnosisError(
            f"finding relation(s) {', '.join(missing)} not in this graph; its relation types are "
            f"{', '.join(available) or 'none'}",
            reason="unknown_relation",
        )
    return tuple(sorted(set(items)))


def _pairs(finding_relations: Iterable[Any]) -> list[tuple[str, str]]:
    out = []
    for x in finding_relations:
        if isinstance(x, str):
            out.append((x, FINDING_RELATIONS.get(x, "head")))
        else:
            name, end = x
            out.append((str(name), str(end)))
    return out

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
    confidence: float = 1.0  # the look-up score (see graphbrain.kg.lookup); 1.0 = exact
    low_confidence: bool = False  # a fuzzy link the caller should confirm


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
    unlinked: list[Finding] = field(default_factory=list)  # resolved, but reach no disease
    finding_relations: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.__dict__ for f in self.findings],
            "unresolved": self.unresolved,
            "unlinked": [f.concept_id for f in self.unlinked],
            "finding_relations": self.finding_relations,
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def problems(self) -> list[str]:
        """Why findings did not count (empty when every finding reached a disease)."""
        out = []
        if self.unresolved:
            out.append("no concept matches " + ", ".join(repr(q) for q in self.unresolved))
        if self.unlinked:
            rels = ", ".join(self.finding_relations) or "none"
            out.append(
                "linked to no disease through the finding relations (" + rels + "): "
                + ", ".join(f"{f.name} [{f.concept_id}]" for f in self.unlinked)
            )
        if not self.candidates:
            out.append("no candidate disease")
        return out

    def table(self) -> str:
        lines = ["findings: " + ", ".join(f"{f.name} [{f.concept_id}]" for f in self.findings)]
        if self.unresolved:
            lines.append("unresolved: " + ", ".join(self.unresolved))
        if self.unlinked:
            lines.append("linked to no disease: " + ", ".join(f.name for f in self.unlinked))
        for f in self.findings:
            if f.low_confidence:
                lines.append(
                    f"low-confidence link: {f.query!r} -> {f.name} [{f.concept_id}] "
                    f"(confidence {f.confidence:.2f}; give the concept id or exact name to be sure)"
                )
        if not self.candidates:
            lines.append("no candidate disease (" + "; ".join(self.problems()[:-1] or ["-"]) + ")")
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
        self.finding_relations = dict(_pairs(finding_relations))
        ends = {"head": [], "tail": []}  # type: dict[str, list[int]]
        for name, end in self.finding_relations.items():
            c = mem.relation_code(name)
            if c >= 0:
                for e in (("head", "tail") if end == "either" else (end,)):
                    ends[e].append(c)
        sel = {
            e: np.flatnonzero(np.isin(cols.relation, np.array(c, dtype=np.int32))).astype(np.int32)
            for e, c in ends.items()
        }
        if not self.is_disease.any():  # untyped graph: the disease end of a directed finding edge
            for name, end in self.finding_relations.items():
                c = mem.relation_code(name)
                if c >= 0 and end != "either":
                    e = np.flatnonzero(cols.relation == c)
                    self.is_disease[(cols.head if end == "head" else cols.tail)[e]] = True
        # (edge, disease, finding) for both orientations; keep edges whose disease end is a disease
        fe = np.concatenate([sel["head"], sel["tail"]])
        dis = np.concatenate([cols.head[sel["head"]], cols.tail[sel["tail"]]]).astype(np.int64)
        fnd = np.concatenate([cols.tail[sel["head"]], cols.head[sel["tail"]]]).astype(np.int64)
        keep = self.is_disease[dis] if dis.size else np.zeros(0, dtype=bool)
        fe, dis, fnd = fe[keep], dis[keep], fnd[keep]
        # finding -> diseases CSR (with edge ids, for evidence)
        order = np.lexsort((dis, fnd))
        self.f_edges = fe[order]
        self.f_dis = dis[order]
        self.f_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(fnd, minlength=n), out=self.f_ptr[1:])
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
        # equal scores: the disease with fewer annotated findings first (the findings are a
        # larger share of its presentation), then by id (concept rows are in id order)
        if getattr(self, "_n_findings", None) is None:
            self._n_findings = np.bincount(np.asarray(self.f_dis), minlength=self.n)
        order = cand[np.lexsort((cand, self._n_findings[cand], -total[cand]))][:top_k]
        return order.astype(np.int64), total, per

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
    finding_relations: Sequence[str] | Mapping[str, str] | str | None = None,
) -> DiagnosisResult:
    """Rank diseases explaining ``findings`` (concept ids, codes, names or free text).

    ``finding_relations``: the relations linking diseases to findings (see
    :func:`finding_relation_spec`); default: the built-in ones present in the graph.
    Raises :class:`DiagnosisError` when the graph has none of them.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if max_hops not in (1, 2, 3):
        raise ValueError(f"max_hops must be 1, 2 or 3, got {max_hops}")
    items = [findings] if isinstance(findings, str) else list(findings)
    if not items:
        raise ValueError("diagnose needs at least one finding")
    spec = finding_relation_spec(finding_relations, kg.relation_types())
    idx = kg.diagnosis_index(spec)
    mem = idx.mem
    resolved: list[Finding] = []
    unresolved: list[str] = []
    for q in items:
        f = _resolve(kg, mem, q, fuzzy, idx)
        if f is None:
            unresolved.append(q)
        elif all(f.concept_id != r.concept_id for r in resolved):
            resolved.append(f)
    result = DiagnosisResult(resolved, unresolved, finding_relations=dict(spec))
    if not resolved:
        return result
    fnodes = [mem.index[f.concept_id] for f in resolved]
    order, total, per = idx.rank(fnodes, top_k, max_hops)
    for f, fi, (s, _) in zip(resolved, fnodes, per):
        reach = s * idx.is_disease
        reach[fi] = 0.0
        if not reach.any():
            result.unlinked.append(f)
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


def _resolve(
    kg: KnowledgeGraph, mem: MemoryBackend, q: str, fuzzy: bool, idx: DiagnosisIndex | None = None
) -> Finding | None:
    q = q.strip()
    if not q:
        return None
    if q in mem.index:
        return Finding(q, q, mem.name_of(q), "id")
    matches = mem.lookup(q, mode="auto" if fuzzy else "ci", limit=20)
    if not matches and not fuzzy:
        matches = mem.lookup(q, mode="code", limit=20)
    if idx is not None and len(matches) > 1:
        # among equally good labels ("dementia": a DO disease and the HPO phenotype), prefer
        # a concept that is a finding of some disease in this graph
        def is_finding(m: Any) -> bool:
            i = mem.index[m.concept_id]
            return bool(idx.f_ptr[i + 1] > idx.f_ptr[i])

        order = {id(m): k for k, m in enumerate(matches)}
        matches = sorted(matches, key=lambda m: (-m.score, not is_finding(m), order[id(m)]))
    for m in matches:
        if m.score >= 1.0:
            return Finding(q, m.concept_id, mem.name_of(m.concept_id), m.kind)
        # A fuzzy match must match every word of the finding: "seizures" -> "seizure" is
        # fine, "abnormal EEG" -> "abnormal feces" is not (character similarity 0.85).
        if words_agree(q, m.label):
            return Finding(
                q, m.concept_id, mem.name_of(m.concept_id), "fuzzy", m.score,
                bool(getattr(m, "low_confidence", m.score < 0.9)),
            )
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
