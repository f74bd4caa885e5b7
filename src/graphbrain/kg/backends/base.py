"""The storage interface every knowledge-graph backend implements.

A backend stores :class:`~graphbrain.kg.model.Concept` and
:class:`~graphbrain.kg.model.Relation` records and answers a small set of primitive
queries (concept by id, exact / case-insensitive / code matches, neighbours,
ancestors). Everything above those primitives — look-up strategy, fuzzy matching,
shortest and k-shortest paths — lives here once, so every backend gives the same answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from graphbrain.kg import paths as _paths
from graphbrain.kg.lookup import FuzzyIndex, Match, normalise_text
from graphbrain.kg.model import IS_A, Concept, Relation, check_relation_name, normalise_xref

DIRECTIONS = ("out", "in", "both")


def relation_filter(relation: str | Iterable[str] | None) -> frozenset[str] | None:
    """``None`` (all types), one type or several, validated."""
    if relation is None:
        return None
    if isinstance(relation, str):
        return frozenset({check_relation_name(relation)})
    rels = frozenset(check_relation_name(r) for r in relation)
    if not rels:
        raise ValueError("an empty relation filter matches nothing; pass None for all relation types")
    return rels


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction


class UnknownConceptError(KeyError):
    """The concept id is not in the knowledge graph."""

    def __init__(self, concept_id: str) -> None:
        super().__init__(concept_id)
        self.concept_id = concept_id

    def __str__(self) -> str:
        return (
            f"unknown concept id {self.concept_id!r}; use KnowledgeGraph.lookup(text) to find "
            "concepts by name, synonym or code"
        )


class Backend(ABC):
    """Abstract store. Subclasses implement the ``_primitive`` methods below."""

    name = "abstract"

    def __init__(self) -> None:
        self._fuzzy: FuzzyIndex | None = None

    # ---- primitives -------------------------------------------------------------------
    @abstractmethod
    def has_concept(self, concept_id: str) -> bool: ...

    @abstractmethod
    def concept(self, concept_id: str) -> Concept:
        """The concept record; raises :class:`UnknownConceptError` when absent."""

    @abstractmethod
    def iter_concepts(self) -> Iterator[Concept]:
        """All concepts, sorted by id."""

    @abstractmethod
    def iter_relations(self) -> Iterator[Relation]:
        """All relations, sorted by (head, relation, tail)."""

    @abstractmethod
    def num_concepts(self) -> int: ...

    @abstractmethod
    def num_relations(self) -> int: ...

    @abstractmethod
    def relation_types(self) -> list[str]:
        """Sorted relation types present in the store."""

    @abstractmethod
    def _match_label(self, text: str, *, casefold: bool) -> list[tuple[str, str, str]]:
        """``(concept_id, label, kind)`` for names/synonyms equal to ``text`` (case-folded
        and space-normalised when ``casefold``)."""

    @abstractmethod
    def _match_code(self, xref: str | None, code: str) -> list[tuple[str, str]]:
        """``(concept_id, xref)`` where the concept has cross-reference ``xref`` (``SAB:CODE``,
        case-insensitive) or, when ``xref`` is None, any source with that ``code``."""

    @abstractmethod
    def _all_labels(self) -> list[tuple[str, str, str]]:
        """``(label, concept_id, kind)`` for every name and synonym."""

    @abstractmethod
    def _edges(self, concept_id: str, relations: frozenset[str] | None, direction: str) -> list[Relation]:
        """Relations touching ``concept_id`` (unsorted); direction 'out', 'in' or 'both'."""

    def _closure(self, concept_id: str, relation: str, up: bool) -> set[str]:
        """Transitive closure along ``relation`` (default: breadth-first over ``_edges``)."""
        rels = frozenset({relation})
        seen: set[str] = set()
        stack = [concept_id]
        while stack:
            node = stack.pop()
            for r in self._edges(node, rels, "out" if up else "in"):
                nxt = r.tail if up else r.head
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        seen.discard(concept_id)
        return seen

    # ---- shared query logic ------------------------------------------------------------
    def neighbors(
        self,
        concept_id: str,
        relation: str | Iterable[str] | None = None,
        direction: str = "out",
    ) -> list[Relation]:
        """Relations of ``concept_id`` sorted by (relation type, other end, out before in)."""
        check_direction(direction)
        self._require(concept_id)
        rels = self._edges(concept_id, relation_filter(relation), direction)
        return sorted(rels, key=lambda r: _adj_key(concept_id, r))

    def adjacency(
        self, relation: str | Iterable[str] | None = None, direction: str = "both"
    ) -> _paths.Adjacency:
        """An adjacency function for :mod:`graphbrain.kg.paths` with a fixed filter."""
        rels = relation_filter(relation)
        check_direction(direction)

        def adj(node: str) -> list[tuple[str, Relation]]:
            out = self._edges(node, rels, direction)
            out.sort(key=lambda r: _adj_key(node, r))
            return [(r.tail if r.head == node else r.head, r) for r in out]

        return adj

    def ancestors(self, concept_id: str, relation: str = IS_A) -> list[str]:
        self._require(concept_id)
        return sorted(self._closure(concept_id, check_relation_name(relation), True))

    def descendants(self, concept_id: str, relation: str = IS_A) -> list[str]:
        self._require(concept_id)
        return sorted(self._closure(concept_id, check_relation_name(relation), False))

    def shortest_path(
        self,
        source: str,
        target: str,
        *,
        relation: str | Iterable[str] | None = None,
        direction: str = "both",
        max_hops: int | None = None,
    ) -> _paths.Path | None:
        self._require(source)
        self._require(target)
        return _paths.shortest_path(self.adjacency(relation, direction), source, target, max_hops=max_hops)

    def k_shortest_paths(
        self,
        source: str,
        target: str,
        k: int = 3,
        *,
        relation: str | Iterable[str] | None = None,
        direction: str = "both",
        max_hops: int | None = None,
    ) -> list[_paths.Path]:
        self._require(source)
        self._require(target)
        return _paths.k_shortest_paths(
            self.adjacency(relation, direction), source, target, k, max_hops=max_hops
        )

    def lookup(self, text: str, *, mode: str = "auto", limit: int = 10, cutoff: float = 0.6) -> list[Match]:
        """Find concepts by id, code, name or synonym.

        ``mode``: ``"exact"`` (label equal), ``"ci"`` (case-insensitive, spaces normalised),
        ``"code"`` (``SAB:CODE`` or a bare code), ``"fuzzy"`` (similarity >= ``cutoff``), or
        ``"auto"``: id, then code, then exact, then case-insensitive, then fuzzy — the
        first strategy with an answer wins.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("lookup needs a non-empty string")
        modes = ("auto", "exact", "ci", "code", "fuzzy")
        if mode not in modes:
            raise ValueError(f"mode must be one of {modes}, got {mode!r}")
        text = text.strip()
        if mode in ("auto", "exact") and self.has_concept(text):
            if mode == "auto":
                return [Match(text, self.concept(text).name, "id", 1.0)]
        if mode in ("auto", "code"):
            out = self._lookup_code(text)
            if out or mode == "code":
                return out[:limit]
        if mode in ("auto", "exact"):
            out = _label_matches(self._match_label(text, casefold=False))
            if out or mode == "exact":
                return out[:limit]
        if mode in ("auto", "ci"):
            out = _label_matches(self._match_label(normalise_text(text), casefold=True))
            if out or mode == "ci":
                return out[:limit]
        if self._fuzzy is None:
            self._fuzzy = FuzzyIndex(self._all_labels())
        return self._fuzzy.search(text, limit=limit, cutoff=cutoff)

    def _lookup_code(self, text: str) -> list[Match]:
        if ":" in text:
            try:
                xref = normalise_xref(text)
            except ValueError:
                return []
            hits = self._match_code(xref, xref.partition(":")[2])
        else:
            hits = self._match_code(None, text)
        uniq = sorted(set(hits))
        return [Match(cid, x, "code", 1.0) for cid, x in uniq]

    def _require(self, concept_id: str) -> None:
        if not self.has_concept(concept_id):
            raise UnknownConceptError(concept_id)


def _adj_key(node: str, r: Relation) -> tuple[str, str, bool, str]:
    other = r.tail if r.head == node else r.head
    return (r.relation, other, r.head != node, r.source)


def _label_matches(hits: list[tuple[str, str, str]]) -> list[Match]:
    best: dict[str, Match] = {}
    for cid, label, kind in hits:
        old = best.get(cid)
        if old is None or (kind == "name" and old.kind != "name") or (
            kind == old.kind and label < old.label
        ):
            best[cid] = Match(cid, label, kind, 1.0)
    return sorted(best.values(), key=lambda m: (m.kind != "name", m.concept_id))
