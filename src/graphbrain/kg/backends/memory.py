"""In-memory backend: integer-coded concepts, edge arrays and CSR adjacency (numpy).

Concepts are stored column-wise (:class:`KGColumns`) and turned into
:class:`~graphbrain.kg.model.Concept` objects only when asked for; label and code
indices are built on first look-up. Edges are three ``int32`` arrays (head, relation,
tail) plus a source code, with CSR offsets for out- and in-edges, so neighbour and
ancestor queries are slices of arrays. :meth:`MemoryBackend.to_networkx` gives a
networkx view for general graph algorithms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphbrain.errors import DataError
from graphbrain.kg.backends.base import (
    Backend,
    UnknownConceptError,
    check_direction,
    relation_filter,
)
from graphbrain.kg.lookup import normalise_text
from graphbrain.kg.model import Concept, Relation, SemanticType, check_relation_name

FORMAT_NAME = "graphbrain-kg"
FORMAT_VERSION = 1


@dataclass
class KGColumns:
    """Column-wise content of a knowledge graph (the compact on-disk layout too)."""

    ids: list[str]
    names: list[str]
    synonyms: list[list[str]]
    types: list[list[int]]
    xrefs: list[list[str]]
    definitions: list[str]
    semantic_types: list[SemanticType]
    relation_types: list[str]
    sources: list[str]
    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    source: np.ndarray
    attributes: dict[int, dict[str, str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls,
        concepts: Iterable[Concept],
        relations: Iterable[Relation],
        *,
        metadata: dict[str, Any] | None = None,
        add_missing: bool = False,
    ) -> KGColumns:
        """Columns from records. Duplicate concept ids are an error; identical relations are
        kept once. A relation naming an unknown concept raises :class:`DataError` unless
        ``add_missing`` (then a bare concept named after its id is added)."""
        by_id: dict[str, Concept] = {}
        for c in concepts:
            if c.id in by_id:
                if by_id[c.id] == c:
                    continue
                raise DataError(f"two different records for concept {c.id!r}", reason="duplicate")
            by_id[c.id] = c
        rel_list: list[Relation] = []
        seen: set[tuple[str, str, str, str, tuple]] = set()
        for r in relations:
            key = (*r.key, r.source, tuple(r.attributes.items()))
            if key in seen:
                continue
            seen.add(key)
            for end in (r.head, r.tail):
                if end not in by_id:
                    if not add_missing:
                        raise DataError(
                            f"relation {r.head} -{r.relation}-> {r.tail} names unknown concept {end!r}; "
                            "add the concept or pass add_missing=True",
                            reason="unknown_concept",
                        )
                    by_id[end] = Concept(end, end)
            rel_list.append(r)
        ids = sorted(by_id)
        index = {cid: i for i, cid in enumerate(ids)}
        sty_index: dict[SemanticType, int] = {}
        for cid in ids:
            for t in by_id[cid].semantic_types:
                sty_index.setdefault(t, len(sty_index))
        rel_list.sort(key=lambda r: (*r.key, r.source, tuple(r.attributes.items())))
        rtypes = sorted({r.relation for r in rel_list})
        rindex = {n: i for i, n in enumerate(rtypes)}
        sources = sorted({r.source for r in rel_list})
        sindex = {n: i for i, n in enumerate(sources)}
        n = len(rel_list)
        head = np.fromiter((index[r.head] for r in rel_list), dtype=np.int32, count=n)
        rel = np.fromiter((rindex[r.relation] for r in rel_list), dtype=np.int32, count=n)
        tail = np.fromiter((index[r.tail] for r in rel_list), dtype=np.int32, count=n)
        src = np.fromiter((sindex[r.source] for r in rel_list), dtype=np.int32, count=n)
        attrs = {i: dict(r.attributes) for i, r in enumerate(rel_list) if r.attributes}
        return cls(
            ids=ids,
            names=[by_id[c].name for c in ids],
            synonyms=[list(by_id[c].synonyms) for c in ids],
            types=[[sty_index[t] for t in by_id[c].semantic_types] for c in ids],
            xrefs=[list(by_id[c].xrefs) for c in ids],
            definitions=[by_id[c].definition for c in ids],
            semantic_types=list(sty_index),
            relation_types=rtypes,
            sources=sources,
            head=head,
            relation=rel,
            tail=tail,
            source=src,
            attributes=attrs,
            metadata=dict(metadata or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "metadata": self.metadata,
            "semantic_types": [[t.tui, t.name, t.tree_number] for t in self.semantic_types],
            "concepts": {
                "id": self.ids,
                "name": self.names,
                "synonyms": self.synonyms,
                "types": self.types,
                "xrefs": self.xrefs,
                "definition": self.definitions,
            },
            "relation_types": self.relation_types,
            "sources": self.sources,
            "edges": {
                "head": self.head.tolist(),
                "relation": self.relation.tolist(),
                "tail": self.tail.tolist(),
                "source": self.source.tolist(),
            },
            "attributes": {str(k): v for k, v in sorted(self.attributes.items())},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, source: str = "<json>") -> KGColumns:
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
            raise DataError("not a graphbrain knowledge-graph file", source=source, reason="format")
        if obj.get("version") != FORMAT_VERSION:
            raise DataError(
                f"unsupported format version {obj.get('version')!r} (this graphbrain reads "
                f"{FORMAT_VERSION})",
                source=source,
                reason="version",
            )
        try:
            c = obj["concepts"]
            e = obj["edges"]
            cols = cls(
                ids=c["id"],
                names=c["name"],
                synonyms=c["synonyms"],
                types=c["types"],
                xrefs=c["xrefs"],
                definitions=c["definition"],
                semantic_types=[SemanticType(*t) for t in obj["semantic_types"]],
                relation_types=obj["relation_types"],
                sources=obj["sources"],
                head=np.asarray(e["head"], dtype=np.int32),
                relation=np.asarray(e["relation"], dtype=np.int32),
                tail=np.asarray(e["tail"], dtype=np.int32),
                source=np.asarray(e["source"], dtype=np.int32),
                attributes={int(k): v for k, v in obj.get("attributes", {}).items()},
                metadata=obj.get("metadata", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed knowledge-graph file ({exc!r})", source=source) from exc
        cols.validate(source)
        return cols

    def validate(self, source: str = "<columns>") -> None:
        n = len(self.ids)
        for name in ("names", "synonyms", "types", "xrefs", "definitions"):
            if len(getattr(self, name)) != n:
                raise DataError(f"column {name!r} has {len(getattr(self, name))} rows, expected {n}", source=source)
        m = len(self.head)
        for name in ("relation", "tail", "source"):
            if len(getattr(self, name)) != m:
                raise DataError(f"edge column {name!r} has the wrong length", source=source)
        if m and (self.head.min() < 0 or self.head.max() >= n or self.tail.min() < 0 or self.tail.max() >= n):
            raise DataError("an edge points outside the concept table", source=source)
        if m and (self.relation.max() >= len(self.relation_types) or self.source.max() >= len(self.sources)):
            raise DataError("an edge has an unknown relation or source code", source=source)


def _csr(keys: np.ndarray, order_keys: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((*order_keys, keys)).astype(np.int32)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, order


class MemoryBackend(Backend):
    """Fast in-memory store (the default)."""

    name = "memory"

    def __init__(self, columns: KGColumns) -> None:
        super().__init__()
        self.columns = columns
        self.ids = columns.ids
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise DataError("duplicate concept ids in the concept table", reason="duplicate")
        n = len(self.ids)
        c = columns
        self.out_ptr, self.out_edges = _csr(c.head, (c.tail, c.relation), n)
        self.in_ptr, self.in_edges = _csr(c.tail, (c.head, c.relation), n)
        self._concepts: list[Concept | None] = [None] * n
        self._rels: list[Relation | None] = [None] * len(c.head)
        self._label_index: dict[str, list[tuple[int, int]]] | None = None  # text -> (node, kind)
        self._ci_index: dict[str, list[tuple[int, int, str]]] | None = None
        self._code_index: dict[str, list[tuple[int, str]]] | None = None
        self._bare_code_index: dict[str, list[tuple[int, str]]] | None = None

    @classmethod
    def from_records(
        cls, concepts: Iterable[Concept], relations: Iterable[Relation], **kw: Any
    ) -> MemoryBackend:
        return cls(KGColumns.from_records(concepts, relations, **kw))

    # ---- records ----------------------------------------------------------------------
    def has_concept(self, concept_id: str) -> bool:
        return concept_id in self.index

    def concept(self, concept_id: str) -> Concept:
        i = self.index.get(concept_id)
        if i is None:
            raise UnknownConceptError(concept_id)
        return self.concept_at(i)

    def concept_at(self, i: int) -> Concept:
        c = self._concepts[i]
        if c is None:
            cols = self.columns
            c = Concept(
                id=cols.ids[i],
                name=cols.names[i],
                synonyms=tuple(cols.synonyms[i]),
                semantic_types=tuple(cols.semantic_types[t] for t in cols.types[i]),
                xrefs=tuple(cols.xrefs[i]),
                definition=cols.definitions[i],
            )
            self._concepts[i] = c
        return c

    def relation_at(self, e: int) -> Relation:
        r = self._rels[e]
        if r is None:
            c = self.columns
            r = Relation(
                self.ids[c.head[e]],
                c.relation_types[c.relation[e]],
                self.ids[c.tail[e]],
                c.sources[c.source[e]],
                c.attributes.get(int(e), {}),
            )
            self._rels[e] = r
        return r

    def iter_concepts(self) -> Iterator[Concept]:
        for i in range(len(self.ids)):
            yield self.concept_at(i)

    def iter_relations(self) -> Iterator[Relation]:
        rels = [self.relation_at(e) for e in range(len(self.columns.head))]
        rels.sort(key=lambda r: (*r.key, r.source, tuple(r.attributes.items())))
        yield from rels

    def num_concepts(self) -> int:
        return len(self.ids)

    def num_relations(self) -> int:
        return int(len(self.columns.head))

    def relation_types(self) -> list[str]:
        used = np.unique(self.columns.relation)
        return sorted(self.columns.relation_types[i] for i in used)

    def relation_code(self, relation: str) -> int:
        try:
            return self.columns.relation_types.index(check_relation_name(relation))
        except ValueError:
            return -1

    def name_of(self, concept_id: str) -> str:
        i = self.index.get(concept_id)
        return self.columns.names[i] if i is not None else concept_id

    # ---- labels and codes -------------------------------------------------------------
    def _build_label_indices(self) -> None:
        exact: dict[str, list[tuple[int, int]]] = defaultdict(list)
        ci: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        code: dict[str, list[tuple[int, str]]] = defaultdict(list)
        bare: dict[str, list[tuple[int, str]]] = defaultdict(list)
        cols = self.columns
        for i in range(len(self.ids)):
            name = cols.names[i]
            exact[name].append((i, 0))
            ci[normalise_text(name)].append((i, 0, name))
            for s in cols.synonyms[i]:
                exact[s].append((i, 1))
                ci[normalise_text(s)].append((i, 1, s))
            for x in cols.xrefs[i]:
                code[x.casefold()].append((i, x))
                bare[x.partition(":")[2].casefold()].append((i, x))
        self._label_index, self._ci_index = dict(exact), dict(ci)
        self._code_index, self._bare_code_index = dict(code), dict(bare)

    def _match_label(self, text: str, *, casefold: bool) -> list[tuple[str, str, str]]:
        if self._label_index is None:
            self._build_label_indices()
        kinds = ("name", "synonym")
        if casefold:
            return [(self.ids[i], lab, kinds[k]) for i, k, lab in self._ci_index.get(text, ())]  # type: ignore[union-attr]
        return [(self.ids[i], text, kinds[k]) for i, k in self._label_index.get(text, ())]  # type: ignore[union-attr]

    def _match_code(self, xref: str | None, code: str) -> list[tuple[str, str]]:
        if self._label_index is None:
            self._build_label_indices()
        if xref is not None:
            hits = self._code_index.get(xref.casefold(), [])  # type: ignore[union-attr]
        else:
            hits = self._bare_code_index.get(code.casefold(), [])  # type: ignore[union-attr]
        return [(self.ids[i], x) for i, x in hits]

    def _all_labels(self) -> list[tuple[str, str, str]]:
        out = []
        cols = self.columns
        for i, cid in enumerate(self.ids):
            out.append((cols.names[i], cid, "name"))
            out.extend((s, cid, "synonym") for s in cols.synonyms[i])
        return out

    # ---- edges --------------------------------------------------------------------------
    def edge_ids(self, node: int, rel_codes: np.ndarray | None, direction: str) -> np.ndarray:
        parts = []
        if direction in ("out", "both"):
            parts.append(self.out_edges[self.out_ptr[node] : self.out_ptr[node + 1]])
        if direction in ("in", "both"):
            parts.append(self.in_edges[self.in_ptr[node] : self.in_ptr[node + 1]])
        e = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if rel_codes is not None:
            e = e[np.isin(self.columns.relation[e], rel_codes)]
        return e

    def _codes(self, relations: frozenset[str] | None) -> np.ndarray | None:
        if relations is None:
            return None
        return np.array([self.relation_code(r) for r in relations], dtype=np.int32)

    def _edges(self, concept_id: str, relations: frozenset[str] | None, direction: str) -> list[Relation]:
        node = self.index[concept_id]
        return [self.relation_at(int(e)) for e in self.edge_ids(node, self._codes(relations), direction)]

    def _closure(self, concept_id: str, relation: str, up: bool) -> set[str]:
        code = self.relation_code(relation)
        if code < 0:
            return set()
        start = self.index[concept_id]
        ptr, edges = (self.out_ptr, self.out_edges) if up else (self.in_ptr, self.in_edges)
        far = self.columns.tail if up else self.columns.head
        rel = self.columns.relation
        seen = np.zeros(len(self.ids), dtype=bool)
        seen[start] = True
        frontier = np.array([start], dtype=np.int64)
        while frontier.size:
            starts, ends = ptr[frontier], ptr[frontier + 1]
            e = _gather(edges, starts, ends)
            e = e[rel[e] == code]
            nxt = np.unique(far[e])
            nxt = nxt[~seen[nxt]]
            seen[nxt] = True
            frontier = nxt.astype(np.int64)
        seen[start] = False
        return {self.ids[i] for i in np.flatnonzero(seen)}

    # ---- views --------------------------------------------------------------------------
    def to_networkx(self, relation: str | Iterable[str] | None = None, direction: str = "out") -> Any:
        """A networkx ``MultiDiGraph`` (``direction='out'``) or ``MultiGraph`` ('both') view
        with node attribute ``name`` and edge key = relation type."""
        import networkx as nx

        check_direction(direction)
        if direction == "in":
            raise ValueError("to_networkx supports direction 'out' (directed) or 'both' (undirected)")
        rels = relation_filter(relation)
        g = nx.MultiDiGraph() if direction == "out" else nx.MultiGraph()
        cols = self.columns
        g.add_nodes_from((cid, {"name": cols.names[i]}) for i, cid in enumerate(self.ids))
        codes = self._codes(rels)
        mask = np.ones(len(cols.head), dtype=bool) if codes is None else np.isin(cols.relation, codes)
        for e in np.flatnonzero(mask):
            g.add_edge(
                self.ids[cols.head[e]],
                self.ids[cols.tail[e]],
                key=cols.relation_types[cols.relation[e]],
                source=cols.sources[cols.source[e]],
            )
        return g


def _gather(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenate ``values[starts[i]:ends[i]]`` for all i without a Python loop."""
    lens = (ends - starts).astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return values[:0]
    offs = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return values[np.arange(total, dtype=np.int64) + offs]
