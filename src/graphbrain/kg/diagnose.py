"""Rank candidate diseases from findings over the KG, with evidence paths.

Two scorings (``diagnose(..., scoring=...)``).

``"ic"`` (default): information content over the finding hierarchy, a log-likelihood-ratio
style score. With ``N`` the number of diseases that have any finding and ``D*(t)`` the
diseases annotated with finding ``t`` *or a narrower one* (the true-path rule of the HPO),
``IC(t) = log(N / |D*(t)|)`` ("fever", carried by thousands of diseases, is worth less than
"malar rash"). For each query finding ``f`` a disease ``d`` gets the information it shares
with ``f``::

    m(f, d) = IC(f)                      d is annotated with f
            = IC(f) * 0.9 ** levels      d is annotated with a narrower finding
            = IC(t)                      t = the most informative broader finding that
                                         f and one of d's findings share (Resnik)

and ``score(d) = sum_f m(f, d) - size * log(1 + annotated findings of d)``
(+ ``specificity * log(share of d's annotation information the query explains)``,
off by default), a dampened prior against diseases annotated with hundreds of phenotypes.
A disease with annotated is-a descendants is also scored as its *family*: the mean score
of its annotated members (itself and its subtypes) minus ``family_penalty``, when that is
better, so "epilepsy", which has no finding of its own, is supported by its subtypes and
ranks just below the best of them. A disease with nothing annotated at or below it takes its
best parent's score minus ``inherit_penalty`` (grandparent with ``max_hops=3``).
Parameters: :class:`IcParams` (chosen on ``evaluate_diagnosis`` with seed 1, see
``benchmarks/kg_diagnosis_tuning.py``). ``max_hops=1`` keeps direct annotations only.
``group=True`` folds subtypes under their parent in the answer list.

``"legacy"``: for every finding ``f`` each disease ``d`` gets
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

_TYPES = ("direct", "specific", "inherited", "general", "inherited2", "sibling", "subtype", "parent")
SCORINGS = ("ic", "legacy")
DEFAULT_SCORING = "ic"
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
    # with diagnose(..., group=True): the candidates folded under this one, best first,
    # as (id, name, score); each is an is-a descendant of this candidate
    subtypes: tuple[tuple[str, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "rank": self.rank,
            "id": self.concept_id,
            "name": self.name,
            "score": round(self.score, 6),
            "matched_findings": list(self.matched),
            "evidence": list(self.evidence_text),
        }
        if self.subtypes:
            out["subtypes"] = [{"id": i, "name": n, "score": round(sc, 6)} for i, n, sc in self.subtypes]
        return out


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
            if c.subtypes:
                shown = ", ".join(f"{n} [{i}] {sc:.3f}" for i, n, sc in c.subtypes[:3])
                more = f" (+{len(c.subtypes) - 3} more)" if len(c.subtypes) > 3 else ""
                lines.append(f"       best subtypes: {shown}{more}")
            lines.extend(f"       {t}" for t in c.evidence_text)
        return "\n".join(lines)


@dataclass(frozen=True)
class IcParams:
    """Parameters of ``scoring="ic"`` (see the module doc). The defaults were chosen on
    :func:`~graphbrain.kg.evaluate.evaluate_diagnosis` (seed 1), never on the clinical cases.

    ``descendant_discount``: factor per is-a level when a disease is annotated with a
    narrower finding than the one asked; ``size``: nats taken off per ``log(1 + annotated
    findings)`` of a disease (a dampened prior against diseases annotated with everything);
    ``specificity``: weight of ``log`` of the share of the disease's annotation information
    that the query explains; ``family_penalty`` / ``inherit_penalty``: nats a parent scored
    from its subtypes, and a disease scored from its parent, are placed below them.
    """

    descendant_discount: float = 0.9
    size: float = 0.5
    specificity: float = 0.0
    family_penalty: float = 0.1
    inherit_penalty: float = 0.25


_TINY = 1e-9


class _IcTables:
    """Information-content tables over a :class:`DiagnosisIndex` (built once, ~1 s).

    ``ds_ptr/ds``: finding term -> diseases annotated with it or with a narrower term (the
    true-path rule); ``ic[t] = log(N / |ds(t)|)``, ``N`` the number of annotated diseases; ``dann_ptr/dann``: disease -> annotated terms; ``fam_ptr/fam``: disease ->
    annotated members of its is-a family (itself and its descendants).
    """

    def __init__(self, idx: DiagnosisIndex) -> None:
        from scipy.sparse import csr_matrix

        n = idx.n
        self.idx = idx
        self.n = n
        f_ptr = np.asarray(idx.f_ptr, dtype=np.int64)
        f_dis = np.asarray(idx.f_dis, dtype=np.int64)
        deg = np.diff(f_ptr)
        ar = np.arange(n, dtype=np.int64)

        def ones(k: int) -> np.ndarray:
            return np.ones(k, dtype=np.float32)

        ann = csr_matrix((ones(len(f_dis)), (np.repeat(ar, deg), f_dis)), shape=(n, n))
        ann.sum_duplicates()
        ann.data[:] = 1
        ann_t = ann.T.tocsr()
        ann_t.sort_indices()
        self.dann_ptr = ann_t.indptr.astype(np.int64)
        self.dann = ann_t.indices.astype(np.int64)
        self.n_ann = np.diff(self.dann_ptr)
        par_ptr = np.asarray(idx.par_ptr, dtype=np.int64)
        par = np.asarray(idx.par, dtype=np.int64)
        up = csr_matrix((ones(len(par)), (np.repeat(ar, np.diff(par_ptr)), par)), shape=(n, n))

        def closure(nodes: np.ndarray) -> Any:  # node -> its is-a ancestors, itself included
            x = csr_matrix((ones(len(nodes)), (nodes, nodes)), shape=(n, n))
            clo = x.copy()
            for _ in range(1024):  # cycles end too: only new pairs go on
                x = x @ up
                x.data[:] = 1
                x = (x - x.multiply(clo)).tocsr()
                x.eliminate_zeros()
                if x.nnz == 0:
                    break
                clo = clo + x
            clo.data[:] = 1
            return clo.tocsr()

        terms = np.flatnonzero(deg > 0)
        clo = closure(terms)
        desc = clo.T.tocsr()  # term -> annotated terms at or below it
        desc.sort_indices()
        self.desc_ptr = desc.indptr.astype(np.int64)
        self.desc = desc.indices.astype(np.int64)
        dstar = (desc @ ann).tocsr()
        dstar.sort_indices()
        self.ds_ptr = dstar.indptr.astype(np.int64)
        self.ds = dstar.indices.astype(np.int64)
        cnt = np.diff(self.ds_ptr)
        self.n_annotated = max(int((self.n_ann > 0).sum()), 1)
        self.ic = np.where(cnt > 0, np.log(self.n_annotated / np.maximum(cnt, 1)), 0.0)
        # information of each disease's annotations (for the specificity term)
        self.ann_info = np.add.reduceat(
            np.concatenate([self.ic[self.dann], [0.0]]), np.minimum(self.dann_ptr[:-1], len(self.dann))
        ) * (self.n_ann > 0)
        # disease families: annotated members at or below each disease
        dis = np.flatnonzero(self.n_ann > 0)
        fam = closure(dis).T.tocsr()
        fam.sort_indices()
        self.fam_ptr = fam.indptr.astype(np.int64)
        self.fam = fam.indices.astype(np.int64)
        self.n_fam = np.diff(self.fam_ptr)
        self.is_disease = np.asarray(idx.is_disease, dtype=bool)
        self.last_leaf: np.ndarray | None = None  # leaf scores of the last query (evidence)

    def _walk(self, f: int, step: Any) -> list[np.ndarray]:
        """Breadth-first levels from ``f`` (level 0 = ``[f]``) along ``step``."""
        mark = np.zeros(self.n, dtype=bool)
        front = np.array([f], dtype=np.int64)
        mark[f] = True
        levels = [front]
        while True:
            nxt = step(front)
            nxt = np.unique(nxt[~mark[nxt]])
            if not nxt.size:
                return levels
            mark[nxt] = True
            levels.append(nxt)
            front = nxt

    def ancestors(self, f: int) -> np.ndarray:
        """``f`` and its is-a ancestors."""
        return np.sort(np.concatenate(self._walk(f, self.idx.parents)))

    def match(self, f: int, max_hops: int, p: IcParams) -> tuple[np.ndarray, np.ndarray]:
        """Per disease: the information (nats) it shares with finding ``f``, and how
        (0 direct, 1 narrower annotation, 3 through a common broader finding). Cached for
        the last few findings (arrays are shared: do not modify them)."""
        key = (f, max_hops, p.descendant_discount)
        cache = self.__dict__.setdefault("_match_cache", {})
        hit = cache.get(key)
        if hit is None:
            hit = self._match(f, max_hops, p)
            if len(cache) >= 64:
                cache.pop(next(iter(cache)))
            cache[key] = hit
        return hit

    def _match(self, f: int, max_hops: int, p: IcParams) -> tuple[np.ndarray, np.ndarray]:
        idx = self.idx
        m = np.zeros(self.n, dtype=np.float64)
        typ = np.full(self.n, -1, dtype=np.int8)
        # a finding every annotated disease carries informs nothing, but still links them
        icf = max(float(self.ic[f]), _TINY)
        d0 = idx.diseases_of(np.array([f], dtype=np.int64))
        m[d0] = icf
        typ[d0] = 0
        if max_hops < 2:
            return m, typ
        # narrower annotations, discounted per level
        w = icf
        for level in self._walk(f, idx.children)[1:]:
            w *= p.descendant_discount
            ds = idx.diseases_of(level)
            ds = ds[m[ds] < w]
            m[ds] = w
            typ[ds] = 1
        # common broader findings (Resnik: information of the most informative one)
        anc = self.ancestors(f)
        anc = anc[(anc != f) & (self.ic[anc] > 0)]
        for t in anc[np.argsort(-self.ic[anc], kind="stable")].tolist():
            w = float(self.ic[t])
            ds = self.ds[self.ds_ptr[t]:self.ds_ptr[t + 1]]
            ds = ds[typ[ds] < 0]  # annotated at or below f: already matched through f
            m[ds] = w
            typ[ds] = 3
        return m, typ

    def query_similarity(self, findings: Sequence[int]) -> np.ndarray:
        """Per annotated term: the information it shares with the closest query finding."""
        tsim = np.zeros(self.n, dtype=np.float64)
        for f in findings:
            for t in self.ancestors(int(f)).tolist():
                a = self.desc[self.desc_ptr[t]:self.desc_ptr[t + 1]]
                if a.size:
                    np.maximum.at(tsim, a, self.ic[t])
        return tsim

    def score(
        self, findings: Sequence[int], max_hops: int, p: IcParams, per_finding: bool = True
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        n = self.n
        self.inherit_parent = np.full(n, -1, dtype=np.int64)
        fs = [int(f) for f in findings]
        ms = [self.match(f, max_hops, p) for f in fs]
        annotated = self.n_ann > 0
        leaf = np.zeros(n, dtype=np.float64)
        reach_leaf = np.zeros(n, dtype=bool)
        for m, _ in ms:
            leaf += m
            reach_leaf |= m > 0
        leaf -= p.size * np.log1p(self.n_ann)
        self.last_leaf = leaf
        if p.specificity > 0:
            key = tuple(sorted(fs))
            last = self.__dict__.get("_tsim")
            if last is None or last[0] != key:
                last = (key, self.query_similarity(fs))
                self._tsim = last
            tsim = last[1]
            got = np.add.reduceat(
                np.concatenate([tsim[self.dann], [0.0]]), np.minimum(self.dann_ptr[:-1], len(self.dann))
            )
            share = np.where(annotated, got / np.maximum(self.ann_info, 1e-12), 1.0)
            leaf += p.specificity * np.log(np.clip(share, 1e-6, 1.0))
        reach_leaf &= annotated
        total = np.where(annotated, leaf, -np.inf)
        reached = reach_leaf.copy()
        per_s = [m.copy() for m, _ in ms] if per_finding else []
        per_t = [t.copy() for _, t in ms] if per_finding else []
        for s in per_s:
            s[~annotated] = 0.0
        if max_hops >= 2:
            # a disease with annotated subtypes: the mean likelihood over its family
            starts = self.fam_ptr[:-1]
            has = self.n_fam > 0
            v = np.concatenate([leaf[self.fam], [0.0]])
            sums = np.add.reduceat(v, np.minimum(starts, len(self.fam)))
            fam_score = np.full(n, -np.inf)
            fam_score[has] = sums[has] / self.n_fam[has] - p.family_penalty
            r = np.concatenate([reach_leaf[self.fam].astype(np.int64), [0]])
            fam_reach = (np.add.reduceat(r, np.minimum(starts, len(self.fam))) > 0) & has
            better = fam_reach & (~reached | (fam_score > total))
            total = np.where(better, fam_score, total)
            reached |= fam_reach
            for (m, _), s, t in zip(ms if per_finding else [], per_s, per_t):
                mv = np.concatenate([m[self.fam], [0.0]])
                best = np.maximum.reduceat(mv, np.minimum(starts, len(self.fam)))
                sel = better & (best > 0) & (best > s)
                s[sel] = best[sel]
                t[sel] = 6
            # a disease with nothing annotated at or below it: from its parent, one level
            # per extra hop
            empty = self.is_disease & ~has
            for _ in range(max_hops - 1):
                idx = self.idx
                pp = idx.par_ptr
                cnt = np.diff(pp)[empty]
                if not cnt.any():
                    break
                kids = np.flatnonzero(empty)
                parents = _gather(np.asarray(idx.par, dtype=np.int64), pp[kids], pp[kids + 1])
                owner = np.repeat(kids, cnt)
                pv = np.where(reached[parents], total[parents], -np.inf)
                o = np.lexsort((-pv, owner))
                owner_s, par_s, pv_s = owner[o], parents[o], pv[o]
                first = np.ones(len(owner_s), dtype=bool)
                first[1:] = owner_s[1:] != owner_s[:-1]
                k, bp, bv = owner_s[first], par_s[first], pv_s[first]
                ok = np.isfinite(bv) & ~reached[k]
                k, bp, bv = k[ok], bp[ok], bv[ok]
                if not k.size:
                    break
                total[k] = bv - p.inherit_penalty
                reached[k] = True
                for s, t in zip(per_s, per_t):
                    hit = s[bp] > 0
                    s[k[hit]] = s[bp[hit]]
                    t[k[hit]] = 7
                self.inherit_parent[k] = bp
        total = np.where(reached, total, -np.inf)
        return total, list(zip(per_s, per_t)), reached


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

    # -- information-content scoring (scoring="ic"; see _IcTables)
    def ic_tables(self) -> _IcTables:
        """The IC scoring tables, built once from this index's arrays (so an on-disk store's
        memory-mapped index gets them too)."""
        t = getattr(self, "_ic", None)
        if t is None:
            t = _IcTables(self)
            self._ic = t
        return t

    def rank_ic(
        self, findings: Sequence[int], top_k: int = 10, max_hops: int = 3,
        params: IcParams | None = None, per_finding: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Like :meth:`rank` with the information-content score (module doc); unreached
        diseases score ``-inf``. ``per_finding=False`` skips the per-finding arrays (used for
        evidence only) and returns an empty list for them."""
        t = self.ic_tables()
        total, per, reached = t.score(findings, max_hops, params or IcParams(), per_finding)
        total = total.copy()
        total[~reached] = -np.inf
        total[np.asarray(findings, dtype=np.int64)] = -np.inf
        cand = np.flatnonzero(reached & np.isfinite(total))
        if cand.size > top_k:
            part = np.argpartition(-total[cand], top_k - 1)[:top_k]
            thresh = total[cand[part]].min()
            cand = cand[total[cand] >= thresh]
        order = cand[np.lexsort((cand, t.n_ann[cand], -total[cand]))][:top_k]
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

    def _chain_up(self, x: int, y: int) -> list[int] | None:
        """Nodes of a shortest is-a chain from ``x`` up to its ancestor ``y``."""
        prev = {x: -1}
        front = [x]
        while front and y not in prev:
            nxt = []
            for u in front:
                for v in self.parents(np.array([u])).tolist():
                    if v not in prev:
                        prev[v] = u
                        nxt.append(v)
            front = nxt
        if y not in prev:
            return None
        out = [y]
        while prev[out[-1]] != -1:
            out.append(prev[out[-1]])
        return out[::-1]

    def _chain_down_to(self, t: int, targets: set[int]) -> list[int] | None:
        """Nodes of a shortest is-a chain from ``t`` down to one of ``targets`` (annotated
        findings: the candidates come from the IC tables' closure, then short chains up)."""
        if t in targets:
            return [t]
        tab = self.ic_tables()
        below = tab.desc[tab.desc_ptr[t]:tab.desc_ptr[t + 1]]
        cands = sorted(set(below.tolist()) & targets)
        best: list[int] | None = None
        for a in cands[:16]:
            up = self._chain_up(a, t)
            if up is not None and (best is None or len(up) < len(best)):
                best = up
        return best[::-1] if best else None

    def evidence_ic(self, d: int, f: int, s: np.ndarray, typ: np.ndarray, depth: int = 0) -> Path | None:
        """The evidence path of ``scoring="ic"`` for disease ``d`` and finding ``f``
        (``s``, ``typ``: that finding's per-node arrays from :meth:`_IcTables.score`)."""
        m = self.mem
        ids = m.ids
        k = int(typ[d])
        t = self.ic_tables()
        if depth > 32 or k < 0:
            return None

        def isa_up(chain: list[int]) -> list[int]:
            return [self._isa_edge(a, b) for a, b in zip(chain, chain[1:])]

        def path(nodes: list[int], edges: list[int]) -> Path:
            return Path(tuple(ids[x] for x in nodes), tuple(m.relation_at(e) for e in edges))

        own = set(t.dann[t.dann_ptr[d]:t.dann_ptr[d + 1]].tolist())
        if k == 0:
            return path([d, f], [self._edge_between(d, f)])
        if k == 1:
            down = self._chain_down_to(f, own)
            if down:
                up = down[::-1]
                return path([d, *up], [self._edge_between(d, up[0]), *isa_up(up)])
        if k == 3:
            anc = t.ancestors(f)
            anc = anc[(anc != f) & (t.ic[anc] > 0)]
            for a in anc[np.argsort(-t.ic[anc], kind="stable")].tolist():
                seg = t.ds[t.ds_ptr[a]:t.ds_ptr[a + 1]]
                j = np.searchsorted(seg, d)
                if j < seg.size and seg[j] == d:
                    down = self._chain_down_to(a, own)
                    fup = self._chain_up(f, a)
                    if down and fup:
                        up = down[::-1]  # annotation -> ... -> a
                        back = fup[::-1][1:]  # below a -> ... -> f
                        return path(
                            [d, *up, *back],
                            [self._edge_between(d, up[0]), *isa_up(up),
                             *[self._isa_edge(c, q) for q, c in zip([a, *back], back)]],
                        )
                    break
        if k == 6:
            mem_ = t.fam[t.fam_ptr[d]:t.fam_ptr[d + 1]]
            mem_ = mem_[(mem_ != d) & (s[mem_] > 0)]
            if mem_.size:  # the member that explains f best, then the best member overall
                leaf = t.last_leaf if t.last_leaf is not None else np.zeros(self.n)
                c = int(mem_[np.lexsort((mem_, -leaf[mem_], -s[mem_]))[0]])
                sub = self.evidence_ic(c, f, s, typ, depth + 1)
                chain = self._chain_up(c, d)
                if sub is not None and chain:
                    down = chain[::-1]  # d -> ... -> c
                    isa = [self._isa_edge(c2, p2) for p2, c2 in zip(down, down[1:])]
                    return Path(tuple(ids[x] for x in down) + sub.nodes[1:],
                                tuple(m.relation_at(e) for e in isa) + sub.steps)
        if k == 7:
            p = int(t.inherit_parent[d])
            if p >= 0:
                sub = self.evidence_ic(p, f, s, typ, depth + 1)
                if sub is not None:
                    return Path((ids[d], *sub.nodes), (m.relation_at(self._isa_edge(d, p)), *sub.steps))
        return None

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


def default_scoring(kg: KnowledgeGraph) -> str:
    """``"legacy"`` for a graph on an on-disk store (memory-mapped, UMLS-sized: the ``"ic"``
    tables would build the is-a closure in memory), else :data:`DEFAULT_SCORING`."""
    return "legacy" if kg.backend.name == "store" else DEFAULT_SCORING


def diagnose(
    kg: KnowledgeGraph,
    findings: Iterable[str],
    top_k: int = 10,
    *,
    max_hops: int = 3,
    fuzzy: bool = True,
    finding_relations: Sequence[str] | Mapping[str, str] | str | None = None,
    scoring: str | None = None,
    params: IcParams | None = None,
    group: bool = False,
) -> DiagnosisResult:
    """Rank diseases explaining ``findings`` (concept ids, codes, names or free text).

    ``finding_relations``: the relations linking diseases to findings (see
    :func:`finding_relation_spec`); default: the built-in ones present in the graph.
    ``scoring``: ``None`` (default) is ``"ic"`` on in-memory graphs and ``"legacy"`` on an
    on-disk store (:func:`default_scoring`: the IC tables hold the is-a closure in memory,
    which at UMLS scale is many GB); ``"ic"`` (information content over the finding hierarchy, disease
    families, dampened size prior; ``params``) or ``"legacy"`` (IDF-weighted best path
    type, the scoring before the DO + HPO graph). ``group=True``: among the best
    ``max(5 * top_k, 50)`` candidates, each one that is an is-a descendant of another is
    folded under its most general such ancestor, which is listed once, at the rank of its
    best member, with :attr:`Candidate.subtypes` ("Parkinson's disease" with "Parkinson
    disease 13", ...); candidates left alone that share an is-a parent with a score are
    folded under that parent. Raises :class:`DiagnosisError` when the graph has none of the
    finding relations.
    """
    if scoring is None:
        scoring = default_scoring(kg)
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
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
    pool = max(5 * top_k, 50) if group else top_k
    if scoring == "ic":
        order, total, per = idx.rank_ic(fnodes, pool, max_hops, params)
    else:
        order, total, per = idx.rank(fnodes, pool, max_hops)
    folded: dict[int, list[int]] = {}
    if group:
        order, folded = _group(idx, order, top_k, total, scoring == "ic")
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
                if scoring == "ic":
                    p, w = idx.evidence_ic(d, fi, s, typ), float(s[d])
                else:
                    p, w = idx.evidence(d, fi, int(typ[d])), float(idx.idf[fi] * s[d])
                if p is not None:
                    contrib.append((-w, mem.ids[fi], p))
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
                subtypes=tuple((mem.ids[x], names[x], float(total[x])) for x in folded.get(d, [])),
            )
        )
    return result


def _group(
    idx: DiagnosisIndex, order: np.ndarray, top_k: int, total: np.ndarray, scored_ic: bool
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Fold ranked candidates under their most general is-a ancestor among the candidates;
    groups in the order of their best member (see :func:`diagnose`)."""
    ranked = [int(x) for x in order.tolist()]
    pos = {d: k for k, d in enumerate(ranked)}
    head: dict[int, int] = {}
    for d in ranked:
        best, seen, front = d, {d}, [d]
        while front:  # every is-a ancestor of d; keep the most general one in the pool
            nxt = []
            for u in front:
                for v in idx.parents(np.array([u])).tolist():
                    if v not in seen:
                        seen.add(v)
                        nxt.append(v)
            front = nxt
            inpool = [v for v in nxt if v in pos]
            if inpool:
                best = min(inpool, key=lambda v: (pos[v], v))
        head[d] = best
    # a head that is itself folded under another head goes with it
    for d in ranked:
        h = head[d]
        for _ in range(len(ranked)):
            if head[h] == h:
                break
            h = head[h]
        head[d] = h
    # candidates whose parent is not among them but is shared with another such candidate
    # ("Epilepsy, reading" and "Epilepsy, benign occipital"): the parent heads them when
    # it has a score
    loose = [d for d in ranked if head[d] == d and not any(head[x] == d for x in ranked if x != d)]
    by_parent: dict[int, list[int]] = {}
    for d in loose:
        for p in idx.parents(np.array([d])).tolist():
            by_parent.setdefault(p, []).append(d)
    shared = {p: ms for p, ms in by_parent.items() if len(ms) >= 2 and p not in pos and np.isfinite(total[p])
              and total[p] > (-np.inf if scored_ic else 0.0)}
    for p in sorted(shared, key=lambda p: (-len(shared[p]), p)):
        for d in shared[p]:
            if head[d] == d:
                head[d] = p
    groups: dict[int, list[int]] = {}
    for d in ranked:
        groups.setdefault(head[d], []).append(d)
    heads = sorted(groups, key=lambda h: min(pos[m] for m in groups[h]))[:top_k]
    folded = {h: [m for m in groups[h] if m != h] for h in heads}
    return np.array(heads, dtype=np.int64), folded


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
    if idx is not None and matches:
        # among equally good labels ("dementia": a DO disease and the HPO phenotype
        # "Dementia"), prefer a concept that is a finding of some disease in this graph;
        # an exact label that is no finding also looks at labels equal up to case
        def is_finding(m: Any) -> bool:
            i = mem.index[m.concept_id]
            return bool(idx.f_ptr[i + 1] > idx.f_ptr[i])

        if matches[0].score >= 1.0 and matches[0].kind in ("name", "synonym") and not any(
            is_finding(m) for m in matches
        ):
            have = {m.concept_id for m in matches}
            matches = list(matches) + [
                m for m in mem.lookup(q, mode="ci", limit=20) if m.concept_id not in have
            ]
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
