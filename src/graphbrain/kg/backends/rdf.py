"""RDF backends: Oxigraph (pyoxigraph) and rdflib, queried with SPARQL and bound parameters.

Layout of a concept ``c`` (IRIs from :mod:`graphbrain.kg.model`)::

    c rdf:type gb:Concept ; gb:id "id" ; skos:prefLabel "name" ; skos:altLabel "synonym" ;
      gb:xref "SAB:CODE" ; skos:definition "..." ; gb:semanticType sty .
    sty gb:tui "T047" ; rdfs:label "Disease or Syndrome" ; gb:treeNumber "B2.2.1.2.1" .
    head rel:has_symptom tail .                       # one triple per relation
    [] a rdf:Statement ; rdf:subject head ; rdf:predicate rel:has_symptom ; rdf:object tail ;
       gb:source "DO" ; gb:attributes "{json}" .      # only when source/attributes are set

Stores also hold look-up keys (``gb:nameKey``, ``gb:synonymKey``, ``gb:xrefKey``,
``gb:codeKey``: normalised text) so that case-insensitive look-ups are single bound
queries. Every query text is a constant; user values travel as SPARQL substitutions
(Oxigraph) or ``initBindings`` (rdflib). The only text spliced into a query is a relation
IRI built from a validated identifier (``[A-Za-z][A-Za-z0-9_]*``) for property paths.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from graphbrain.kg.backends.base import Backend, UnknownConceptError
from graphbrain.kg.backends.guard import (
    SparqlBindingError,
    SparqlTimeoutError,
    cancelled,
    check_limits,
    check_query,
    row_limit_error,
    run_bounded,
    timeout_error,
)
from graphbrain.kg.lookup import normalise_text
from graphbrain.kg.model import (
    CONCEPT_NS,
    RELATION_NS,
    STY_NS,
    VOCAB_NS,
    Concept,
    Relation,
    SemanticType,
    check_relation_name,
    concept_id_from_iri,
    concept_iri,
    relation_from_iri,
    relation_iri,
    semtype_iri,
)

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS_NS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS_NS = "http://www.w3.org/2004/02/skos/core#"
RDF_TYPE = RDF_NS + "type"

# written out (no formatting into query text); a test checks it against the namespace constants
PREFIXES = (
    "PREFIX gb: <https://w3id.org/graphbrain/kg/vocab#>\n"
    "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
    "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n"
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
)
# graphbrain relation IRIs start with RELATION_NS: queries test STRSTARTS(STR(?r), ?relns)
# with ?relns bound to it as a parameter (never formatted into the query text; projected,
# as Oxigraph substitutes only projected variables)
_RELNS = {"relns": RELATION_NS}
_XREF_QUERY = PREFIXES + "SELECT ?c ?q ?x WHERE { ?c gb:xrefKey ?q ; gb:xref ?x }"
_CODE_QUERY = PREFIXES + "SELECT ?c ?q ?x WHERE { ?c gb:codeKey ?q ; gb:xref ?x }"


class Iri(str):
    """Marks a SPARQL binding value as an IRI (plain ``str`` values bind as literals)."""


# Generic terms: ("iri", value) | ("lit", value) | ("bnode", label)
Term = tuple[str, str]
Triple = tuple[Term, Term, Term]


def _iri(x: str) -> Term:
    return ("iri", x)


def _lit(x: str) -> Term:
    return ("lit", x)


def record_triples(
    concepts: Iterable[Concept], relations: Iterable[Relation], *, with_keys: bool = False
) -> Iterator[Triple]:
    """RDF triples (generic terms) of records; ``with_keys`` adds store-only look-up keys."""
    stys: dict[str, SemanticType] = {}
    for c in concepts:
        s = _iri(concept_iri(c.id))
        yield s, _iri(RDF_TYPE), _iri(VOCAB_NS + "Concept")
        yield s, _iri(VOCAB_NS + "id"), _lit(c.id)
        yield s, _iri(SKOS_NS + "prefLabel"), _lit(c.name)
        for syn in c.synonyms:
            yield s, _iri(SKOS_NS + "altLabel"), _lit(syn)
        for x in c.xrefs:
            yield s, _iri(VOCAB_NS + "xref"), _lit(x)
        if c.definition:
            yield s, _iri(SKOS_NS + "definition"), _lit(c.definition)
        for t in c.semantic_types:
            stys[t.tui] = t
            yield s, _iri(VOCAB_NS + "semanticType"), _iri(semtype_iri(t.tui))
        if with_keys:
            yield s, _iri(VOCAB_NS + "nameKey"), _lit(normalise_text(c.name))
            for syn in c.synonyms:
                yield s, _iri(VOCAB_NS + "synonymKey"), _lit(normalise_text(syn))
            for x in c.xrefs:
                yield s, _iri(VOCAB_NS + "xrefKey"), _lit(x.casefold())
                yield s, _iri(VOCAB_NS + "codeKey"), _lit(x.partition(":")[2].casefold())
    for t in stys.values():
        st = _iri(semtype_iri(t.tui))
        yield st, _iri(VOCAB_NS + "tui"), _lit(t.tui)
        yield st, _iri(RDFS_NS + "label"), _lit(t.name)
        yield st, _iri(VOCAB_NS + "treeNumber"), _lit(t.tree_number)
    rels = list(relations)
    keys = Counter(r.key for r in rels)
    emitted: set[tuple[str, str, str]] = set()
    for i, r in enumerate(rels):
        h, p, o = _iri(concept_iri(r.head)), _iri(relation_iri(r.relation)), _iri(concept_iri(r.tail))
        if r.key not in emitted:
            emitted.add(r.key)
            yield h, p, o
        # a statement per relation when it has a source or attributes, or when several relations
        # share (head, relation, tail): then a relation without a source keeps its own statement
        if r.source or r.attributes or keys[r.key] > 1:
            b = ("bnode", f"st{i}")
            yield b, _iri(RDF_TYPE), _iri(RDF_NS + "Statement")
            yield b, _iri(RDF_NS + "subject"), h
            yield b, _iri(RDF_NS + "predicate"), p
            yield b, _iri(RDF_NS + "object"), o
            if r.source:
                yield b, _iri(VOCAB_NS + "source"), _lit(r.source)
            if r.attributes:
                yield b, _iri(VOCAB_NS + "attributes"), _lit(json.dumps(r.attributes, sort_keys=True))


def records_from_triples(triples: Iterable[Triple]) -> tuple[list[Concept], list[Relation]]:
    """Inverse of :func:`record_triples` (look-up keys and unknown triples are ignored)."""
    fields: dict[str, dict[str, Any]] = {}
    sty: dict[str, dict[str, str]] = {}
    direct: list[tuple[str, str, str]] = []
    stmts: dict[str, dict[str, str]] = {}

    def cfield(iri: str) -> dict[str, Any]:
        return fields.setdefault(iri, {"syn": [], "xref": [], "sty": [], "def": "", "name": None})

    for s, p, o in triples:
        pred = p[1]
        if s[0] == "bnode":
            if pred.startswith(RDF_NS) or pred.startswith(VOCAB_NS):
                stmts.setdefault(s[1], {})[pred] = o[1]
            continue
        subj = s[1]
        if subj.startswith(CONCEPT_NS):
            if pred == SKOS_NS + "prefLabel":
                cfield(subj)["name"] = o[1]
            elif pred == SKOS_NS + "altLabel":
                cfield(subj)["syn"].append(o[1])
            elif pred == VOCAB_NS + "xref":
                cfield(subj)["xref"].append(o[1])
            elif pred == SKOS_NS + "definition":
                cfield(subj)["def"] = o[1]
            elif pred == VOCAB_NS + "semanticType":
                cfield(subj)["sty"].append(o[1])
            elif pred == RDF_TYPE or pred == VOCAB_NS + "id":
                cfield(subj)
            elif pred.startswith(RELATION_NS) and o[0] == "iri" and o[1].startswith(CONCEPT_NS):
                direct.append((subj, pred, o[1]))
        elif pred in (VOCAB_NS + "tui", RDFS_NS + "label", VOCAB_NS + "treeNumber"):
            sty.setdefault(subj, {})[pred] = o[1]
    types = {
        iri: SemanticType(d.get(VOCAB_NS + "tui", ""), d.get(RDFS_NS + "label", ""), d.get(VOCAB_NS + "treeNumber", ""))
        for iri, d in sty.items()
    }
    concepts = []
    for iri, f in fields.items():
        cid = concept_id_from_iri(iri)
        concepts.append(
            Concept(
                id=cid,
                name=f["name"] if f["name"] is not None else cid,
                synonyms=tuple(f["syn"]),
                semantic_types=tuple(types[t] for t in f["sty"] if t in types),
                xrefs=tuple(f["xref"]),
                definition=f["def"],
            )
        )
    meta: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]] = {}
    for d in stmts.values():
        key = (d.get(RDF_NS + "subject", ""), d.get(RDF_NS + "predicate", ""), d.get(RDF_NS + "object", ""))
        attrs = json.loads(d[VOCAB_NS + "attributes"]) if VOCAB_NS + "attributes" in d else {}
        meta.setdefault(key, []).append((d.get(VOCAB_NS + "source", ""), attrs))
    relations = []
    for h, p, t in direct:
        rel = relation_from_iri(p)
        for src, attrs in meta.get((h, p, t), [("", {})]):
            relations.append(Relation(concept_id_from_iri(h), rel, concept_id_from_iri(t), src, attrs))
    return concepts, relations


def _check_row(n: int, max_rows: int) -> None:
    if n >= max_rows:
        raise row_limit_error(max_rows)
    if n % 256 == 0 and cancelled():
        raise timeout_error(0)


# ---------------------------------------------------------------------------------------
class _SparqlBackend(Backend):
    """Query logic shared by the Oxigraph and rdflib stores."""

    def _select(self, query: str, bindings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _ask(self, query: str, bindings: dict[str, Any] | None = None) -> bool:
        raise NotImplementedError

    def sparql(
        self,
        query: str,
        bindings: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
        allow_service: bool = False,
        isolation: str = "auto",
    ) -> Any:
        """Run a read-only SPARQL query, safely (see :mod:`graphbrain.kg.backends.guard`).

        ``bindings`` maps variable names (no ``?``) to values (``str`` -> literal,
        :class:`Iri` -> IRI, ``int``/``float``/``bool`` -> typed literal); each name must be a
        variable of the query. Update forms and ``SERVICE`` (unless ``allow_service``) are
        refused; the query is stopped after ``timeout`` seconds (default 10) and refused when
        it has more than ``max_rows`` answers (default 100,000). Returns a list of row dicts
        (``SELECT``), a bool (``ASK``) or a list of ``(s, p, o)`` tuples (``CONSTRUCT``).
        Errors are :class:`~graphbrain.kg.backends.guard.SparqlError` subclasses.
        """
        t, n = check_limits(timeout, max_rows)
        check_query(query, bindings, allow_service=allow_service)
        try:
            prepared = self._prepare_bindings(bindings)
        except (TypeError, ValueError) as exc:
            raise SparqlBindingError(str(exc)) from exc
        try:
            out = run_bounded(lambda: self._run_query(query, prepared, n), t, isolation=isolation)
        except SparqlTimeoutError as exc:
            if self.name != "rdflib":
                raise
            raise SparqlTimeoutError(
                f"{exc}; rdflib evaluates SPARQL in Python: the oxigraph backend (--backend "
                "oxigraph, or with_backend('oxigraph')) answers the same query much faster"
            ) from None
        kind, value = out
        if kind == "bool":
            return bool(value)
        if kind == "triples":
            return [tuple(x) for x in value]
        return value

    def _prepare_bindings(self, bindings: dict[str, Any] | None) -> Any:
        raise NotImplementedError

    def _run_query(self, query: str, prepared: Any, max_rows: int) -> tuple[str, Any]:
        """``("rows", [dict])``, ``("bool", b)`` or ``("triples", [[s, p, o]])`` (JSON-able)."""
        raise NotImplementedError

    # -- records
    def has_concept(self, concept_id: str) -> bool:
        return self._ask(PREFIXES + "ASK { ?c a gb:Concept }", {"c": Iri(concept_iri(concept_id))})

    def concept(self, concept_id: str) -> Concept:
        if not self.has_concept(concept_id):
            raise UnknownConceptError(concept_id)
        c = Iri(concept_iri(concept_id))
        rows = self._select(
            PREFIXES + "SELECT ?c ?p ?o WHERE { ?c ?p ?o . FILTER(isLiteral(?o)) }", {"c": c}
        )
        stys = self._select(
            PREFIXES
            + "SELECT ?c ?tui ?label ?tree WHERE { ?c gb:semanticType ?t . ?t gb:tui ?tui ; "
            "rdfs:label ?label ; gb:treeNumber ?tree }",
            {"c": c},
        )
        name, syn, xref, definition = concept_id, [], [], ""
        for r in rows:
            p, o = r["p"], r["o"]
            if p == SKOS_NS + "prefLabel":
                name = o
            elif p == SKOS_NS + "altLabel":
                syn.append(o)
            elif p == VOCAB_NS + "xref":
                xref.append(o)
            elif p == SKOS_NS + "definition":
                definition = o
        return Concept(
            concept_id,
            name,
            tuple(syn),
            tuple(SemanticType(s["tui"], s["label"], s["tree"]) for s in stys),
            tuple(xref),
            definition,
        )

    def iter_concepts(self) -> Iterator[Concept]:
        rows = self._select(
            PREFIXES
            + "SELECT ?c ?p ?o WHERE { ?c a gb:Concept ; ?p ?o . "
            "FILTER(?p IN (skos:prefLabel, skos:altLabel, gb:xref, skos:definition, gb:semanticType)) }"
        )
        srows = self._select(
            PREFIXES + "SELECT ?t ?tui ?label ?tree WHERE { ?t gb:tui ?tui ; rdfs:label ?label ; "
            "gb:treeNumber ?tree }"
        )
        triples: list[Triple] = []
        for r in rows:
            o = r["o"]
            kind = "iri" if r["p"] == VOCAB_NS + "semanticType" else "lit"
            triples.append((("iri", r["c"]), ("iri", r["p"]), (kind, o)))
        for s in srows:
            t = ("iri", s["t"])
            triples += [
                (t, ("iri", VOCAB_NS + "tui"), ("lit", s["tui"])),
                (t, ("iri", RDFS_NS + "label"), ("lit", s["label"])),
                (t, ("iri", VOCAB_NS + "treeNumber"), ("lit", s["tree"])),
            ]
        concepts, _ = records_from_triples(triples)
        known = {c.id for c in concepts}
        ids = self._select(PREFIXES + "SELECT ?c WHERE { ?c a gb:Concept }")
        concepts += [Concept(i, i) for i in (concept_id_from_iri(r["c"]) for r in ids) if i not in known]
        yield from sorted(concepts, key=lambda c: c.id)

    _REL_QUERY = (
        PREFIXES
        + "SELECT ?h ?r ?t ?src ?attrs ?relns WHERE { ?h ?r ?t . ?h a gb:Concept . ?t a gb:Concept . "
        + "FILTER(STRSTARTS(STR(?r), ?relns)) "
        + "OPTIONAL { ?st rdf:subject ?h ; rdf:predicate ?r ; rdf:object ?t . "
        "OPTIONAL { ?st gb:source ?src } OPTIONAL { ?st gb:attributes ?attrs } } }"
    )

    def _rows_to_relations(self, rows: list[dict[str, Any]]) -> list[Relation]:
        out = []
        seen = set()
        for r in rows:
            rel = Relation(
                concept_id_from_iri(r["h"]),
                relation_from_iri(r["r"]),
                concept_id_from_iri(r["t"]),
                r.get("src") or "",
                json.loads(r["attrs"]) if r.get("attrs") else {},
            )
            key = (*rel.key, rel.source, tuple(rel.attributes.items()))
            if key not in seen:
                seen.add(key)
                out.append(rel)
        return out

    def iter_relations(self) -> Iterator[Relation]:
        rels = self._rows_to_relations(self._select(self._REL_QUERY, _RELNS))
        rels.sort(key=lambda r: (*r.key, r.source, tuple(r.attributes.items())))
        yield from rels

    def num_concepts(self) -> int:
        rows = self._select(PREFIXES + "SELECT (COUNT(?c) AS ?n) WHERE { ?c a gb:Concept }")
        return int(rows[0]["n"])

    def num_relations(self) -> int:
        return len(self._rows_to_relations(self._select(self._REL_QUERY, _RELNS)))

    def relation_types(self) -> list[str]:
        rows = self._select(
            PREFIXES
            + "SELECT DISTINCT ?r ?relns WHERE { ?h ?r ?t . ?h a gb:Concept . ?t a gb:Concept . "
            + "FILTER(STRSTARTS(STR(?r), ?relns)) }", _RELNS
        )
        return sorted(relation_from_iri(r["r"]) for r in rows)

    # -- look-up
    def _match_label(self, text: str, *, casefold: bool) -> list[tuple[str, str, str]]:
        if not casefold:
            rows = self._select(
                PREFIXES
                + "SELECT ?c ?q ?kind WHERE { { ?c skos:prefLabel ?q . BIND(\"name\" AS ?kind) } "
                "UNION { ?c skos:altLabel ?q . BIND(\"synonym\" AS ?kind) } }",
                {"q": text},
            )
            return [(concept_id_from_iri(r["c"]), text, r["kind"]) for r in rows]
        rows = self._select(
            PREFIXES
            + "SELECT ?c ?q ?l ?kind WHERE { { ?c gb:nameKey ?q ; skos:prefLabel ?l . "
            "BIND(\"name\" AS ?kind) } UNION { ?c gb:synonymKey ?q ; skos:altLabel ?l . "
            "BIND(\"synonym\" AS ?kind) } }",
            {"q": text},
        )
        return [
            (concept_id_from_iri(r["c"]), r["l"], r["kind"]) for r in rows if normalise_text(r["l"]) == text
        ]

    def _match_code(self, xref: str | None, code: str) -> list[tuple[str, str]]:
        if xref is not None:
            key, query, want = xref.casefold(), _XREF_QUERY, lambda x: x.casefold() == xref.casefold()
        else:
            key, query = code.casefold(), _CODE_QUERY

            def want(x: str) -> bool:
                return x.partition(":")[2].casefold() == code.casefold()

        rows = self._select(query, {"q": key})
        return [(concept_id_from_iri(r["c"]), r["x"]) for r in rows if want(r["x"])]

    def _all_labels(self) -> list[tuple[str, str, str]]:
        rows = self._select(
            PREFIXES
            + "SELECT ?c ?l ?kind WHERE { { ?c skos:prefLabel ?l . BIND(\"name\" AS ?kind) } "
            "UNION { ?c skos:altLabel ?l . BIND(\"synonym\" AS ?kind) } }"
        )
        return [(r["l"], concept_id_from_iri(r["c"]), r["kind"]) for r in rows]

    # -- edges
    # fixed query texts; the concept and the relation namespace are bound parameters
    _OUT = PREFIXES + (
        "SELECT ?h ?r ?t ?src ?attrs ?relns WHERE { ?h ?r ?t . ?t a gb:Concept . "
        "FILTER(STRSTARTS(STR(?r), ?relns)) "
        "OPTIONAL { ?st rdf:subject ?h ; rdf:predicate ?r ; rdf:object ?t . "
        "OPTIONAL { ?st gb:source ?src } OPTIONAL { ?st gb:attributes ?attrs } } }"
    )
    _IN = PREFIXES + (
        "SELECT ?h ?r ?t ?src ?attrs ?relns WHERE { ?h ?r ?t . ?h a gb:Concept . "
        "FILTER(STRSTARTS(STR(?r), ?relns)) "
        "OPTIONAL { ?st rdf:subject ?h ; rdf:predicate ?r ; rdf:object ?t . "
        "OPTIONAL { ?st gb:source ?src } OPTIONAL { ?st gb:attributes ?attrs } } }"
    )

    def _edges(self, concept_id: str, relations: frozenset[str] | None, direction: str) -> list[Relation]:
        node = Iri(concept_iri(concept_id))
        extra: dict[str, Any] = {}
        if relations is not None and len(relations) == 1:
            extra["r"] = Iri(relation_iri(next(iter(relations))))
        rows: list[dict[str, Any]] = []
        if direction in ("out", "both"):
            rows += [dict(r, h=str(node)) for r in self._select(self._OUT, {"h": node, **extra, **_RELNS})]
        if direction in ("in", "both"):
            rows += [dict(r, t=str(node)) for r in self._select(self._IN, {"t": node, **extra, **_RELNS})]
        for r in rows:
            if r.get("r") is None:
                r["r"] = str(extra["r"])
        rels = self._rows_to_relations(rows)
        if relations is not None:
            rels = [r for r in rels if r.relation in relations]
        return rels

    def count_triples(self) -> int:
        return int(self._select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"])


# ---- Oxigraph --------------------------------------------------------------------------
_NT_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r"}
_NT_ESCAPES.update({i: f"\\u{i:04X}" for i in range(0x20) if i not in (0x0A, 0x0D)})
_NT_ESCAPES[0x7F] = "\\u007F"


def _nt_term(t: Term) -> str:
    kind, v = t
    if kind == "iri":
        return f"<{v}>"
    if kind == "lit":
        return '"' + v.translate(_NT_ESCAPES) + '"'
    return f"_:{v}"


def _nt_line(t: Triple) -> str:
    return f"{_nt_term(t[0])} {_nt_term(t[1])} {_nt_term(t[2])} .\n"


def _ox_term(t: Term) -> Any:
    import pyoxigraph as ox

    kind, v = t
    if kind == "iri":
        return ox.NamedNode(v)
    if kind == "lit":
        return ox.Literal(v)
    return ox.BlankNode(v)


def _ox_value(x: Any, typed: bool = False) -> Any:
    import pyoxigraph as ox

    if x is None:
        return None
    if isinstance(x, ox.Literal):
        if typed:
            return _typed_value(x.value, x.datatype.value)
        return x.value
    return x.value


_XSD = "http://www.w3.org/2001/XMLSchema#"
_INT_TYPES = {_XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger")}


def _typed_value(value: str, datatype: str) -> Any:
    if datatype in _INT_TYPES:
        return int(value)
    if datatype in (_XSD + "decimal", _XSD + "double", _XSD + "float"):
        return float(value)
    if datatype == _XSD + "boolean":
        return value == "true"
    return value


def _ox_binding(v: Any) -> Any:
    import pyoxigraph as ox

    if isinstance(v, Iri):
        return ox.NamedNode(str(v))
    if isinstance(v, bool):
        return ox.Literal("true" if v else "false", datatype=ox.NamedNode(_XSD + "boolean"))
    if isinstance(v, int):
        return ox.Literal(str(v), datatype=ox.NamedNode(_XSD + "integer"))
    if isinstance(v, float):
        return ox.Literal(repr(v), datatype=ox.NamedNode(_XSD + "double"))
    if isinstance(v, str):
        return ox.Literal(v)
    raise TypeError(f"cannot bind a {type(v).__name__} in SPARQL; use str, Iri, int, float or bool")


class OxigraphBackend(_SparqlBackend):
    """pyoxigraph in-memory store."""

    name = "oxigraph"

    def __init__(self, concepts: Iterable[Concept], relations: Iterable[Relation]) -> None:
        super().__init__()
        import pyoxigraph as ox

        self.store = ox.Store()
        concepts, relations = list(concepts), list(relations)
        # N-Triples text parsed in Rust is ~5x faster than one Python term object per node;
        # IRIs here are percent-encoded (concept_iri) or validated names, literals escaped.
        try:
            data = "".join(_nt_line(t) for t in record_triples(concepts, relations, with_keys=True))
            self.store.bulk_load(data.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)
        except (SyntaxError, UnicodeEncodeError, ValueError):
            self.store = ox.Store()
            dg = ox.DefaultGraph()
            self.store.bulk_extend(
                ox.Quad(_ox_term(s), _ox_term(p), _ox_term(o), dg)
                for s, p, o in record_triples(concepts, relations, with_keys=True)
            )

    def _subs(self, bindings: dict[str, Any] | None) -> dict[Any, Any] | None:
        import pyoxigraph as ox

        if not bindings:
            return None
        return {ox.Variable(k): _ox_binding(v) for k, v in bindings.items()}

    def _select(self, query: str, bindings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        res = self.store.query(query, substitutions=self._subs(bindings))
        names = [v.value for v in res.variables]
        return [{n: _ox_value(sol[n]) for n in names} for sol in res]

    def _ask(self, query: str, bindings: dict[str, Any] | None = None) -> bool:
        return bool(self.store.query(query, substitutions=self._subs(bindings)))

    def _prepare_bindings(self, bindings: dict[str, Any] | None) -> Any:
        return self._subs(bindings)

    def _closure(self, concept_id: str, relation: str, up: bool) -> set[str]:
        # A SPARQL property path (<rel>+) would need the relation IRI written into the query
        # text (paths take no bound parameters), so walk the store's triple index instead,
        # as the rdflib backend does: only concepts are followed.
        import pyoxigraph as ox

        pred = ox.NamedNode(relation_iri(check_relation_name(relation)))
        rdf_type, concept_cls = ox.NamedNode(RDF_TYPE), ox.NamedNode(VOCAB_NS + "Concept")
        store = self.store
        start = ox.NamedNode(concept_iri(concept_id))
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            quads = store.quads_for_pattern(node, pred, None) if up else store.quads_for_pattern(None, pred, node)
            for q in quads:
                x = q.object if up else q.subject
                if x not in seen and isinstance(x, ox.NamedNode) and next(
                    iter(store.quads_for_pattern(x, rdf_type, concept_cls)), None
                ) is not None:
                    seen.add(x)
                    stack.append(x)
        seen.discard(start)
        return {concept_id_from_iri(x.value) for x in seen}

    def _run_query(self, query: str, prepared: Any, max_rows: int) -> tuple[str, Any]:
        import pyoxigraph as ox

        res = self.store.query(query, substitutions=prepared)
        if isinstance(res, ox.QueryBoolean):
            return ("bool", bool(res))
        out: list[Any] = []
        if isinstance(res, ox.QuerySolutions):
            names = [v.value for v in res.variables]
            for sol in res:
                _check_row(len(out), max_rows)
                out.append({n: _ox_value(sol[n], typed=True) for n in names})
            return ("rows", out)
        for t in res:
            _check_row(len(out), max_rows)
            out.append([t.subject.value, t.predicate.value, _ox_value(t.object, typed=True)])
        return ("triples", out)


# ---- rdflib ----------------------------------------------------------------------------
def _rl_term(t: Term) -> Any:
    from rdflib import BNode, Literal, URIRef

    kind, v = t
    if kind == "iri":
        return URIRef(v)
    if kind == "lit":
        return Literal(v)
    return BNode(v)


def _rl_binding(v: Any) -> Any:
    from rdflib import Literal, URIRef

    if isinstance(v, Iri):
        return URIRef(str(v))
    if isinstance(v, bool | int | float | str):
        return Literal(v)
    raise TypeError(f"cannot bind a {type(v).__name__} in SPARQL; use str, Iri, int, float or bool")


def _rl_value(x: Any, typed: bool = False) -> Any:
    from rdflib import Literal

    if x is None:
        return None
    if isinstance(x, Literal):
        if typed and x.datatype is not None:
            return _typed_value(str(x), str(x.datatype))
        return str(x)
    return str(x)


_RDFLIB_WARM = False


class RdflibBackend(_SparqlBackend):
    """rdflib in-memory graph (slowest; the reference implementation of SPARQL)."""

    name = "rdflib"

    def __init__(self, concepts: Iterable[Concept], relations: Iterable[Relation]) -> None:
        super().__init__()
        from rdflib import Graph

        concepts, relations = list(concepts), list(relations)
        # SimpleMemory: the same three triple indices as rdflib's default store without the
        # per-context bookkeeping (half the build time); queries see one default graph.
        self.graph = Graph(store="SimpleMemory")
        g = self.graph
        # No look-up key triples here: rdflib adds ~40 us per triple, so the keys live in
        # Python dicts built on the first look-up instead (see _keys).
        rel_types: set[str] = set()
        terms: dict[Term, Any] = {}

        def term(t: Term) -> Any:
            x = terms.get(t)
            if x is None:
                x = terms[t] = _rl_term(t)
            return x

        def quads() -> Iterator[tuple[Any, Any, Any, Any]]:
            for s, p, o in record_triples(concepts, relations):
                if p[1].startswith(RELATION_NS):
                    rel_types.add(relation_from_iri(p[1]))
                yield term(s), term(p), term(o), g

        g.addN(quads())
        self._rel_types = sorted(rel_types)
        self._keys_cache: dict[str, dict[str, list[tuple[str, str]]]] | None = None
        self._relations: list[Relation] | None = None
        self._concepts: list[Concept] | None = None
        self._concept_nodes: frozenset[Any] | None = None
        # The store is read-only: when the records are canonical (unique concept ids, every
        # relation end a concept) the listings are exactly these records, kept sorted; else
        # they are read back from rdflib's indices on first use.
        ids = {c.id for c in concepts}
        if len(ids) == len(concepts) and all(r.head in ids and r.tail in ids for r in relations):
            self._concepts = sorted(concepts, key=lambda c: c.id)
            self._relations = self._rows_to_relations_dedup(
                sorted(relations, key=lambda r: (*r.key, r.source, tuple(r.attributes.items())))
            )

    def _bind(self, bindings: dict[str, Any] | None) -> dict[str, Any]:
        return {k: _rl_binding(v) for k, v in (bindings or {}).items()}

    def _select(self, query: str, bindings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        res = self.graph.query(query, initBindings=self._bind(bindings))
        names = [str(v) for v in res.vars]
        bound = bindings or {}
        out = []
        for row in res:
            d = {}
            for n in names:
                val = row[n]
                if val is None and n in bound:
                    val = _rl_binding(bound[n])
                d[n] = _rl_value(val)
            out.append(d)
        return out

    def _ask(self, query: str, bindings: dict[str, Any] | None = None) -> bool:
        return bool(self.graph.query(query, initBindings=self._bind(bindings)).askAnswer)

    def _prepare_bindings(self, bindings: dict[str, Any] | None) -> Any:
        global _RDFLIB_WARM
        if not _RDFLIB_WARM:  # build rdflib's SPARQL parser here, not in every forked worker
            from rdflib import Graph

            Graph().query("ASK { ?s ?p ?o }")
            _RDFLIB_WARM = True
        return self._bind(bindings)

    def _run_query(self, query: str, prepared: Any, max_rows: int) -> tuple[str, Any]:
        res = self.graph.query(query, initBindings=prepared)
        if res.type == "ASK":
            return ("bool", bool(res.askAnswer))
        out: list[Any] = []
        if res.type == "SELECT":
            names = [str(v) for v in res.vars]
            for row in res:
                _check_row(len(out), max_rows)
                out.append({n: _rl_value(row[n], typed=True) for n in names})
            return ("rows", out)
        for s, p, o in res:
            _check_row(len(out), max_rows)
            out.append([str(s), str(p), _rl_value(o, typed=True)])
        return ("triples", out)

    # ---- primitives on rdflib's triple indices (SPARQL joins in rdflib take minutes here) ----
    def _u(self, iri: str) -> Any:
        from rdflib import URIRef

        return URIRef(iri)

    def _is_concept(self, node: Any) -> bool:
        if self._concept_nodes is None:  # the store is read-only: collect the concepts once
            self._concept_nodes = frozenset(
                self.graph.subjects(self._u(RDF_TYPE), self._u(VOCAB_NS + "Concept"))
            )
        return node in self._concept_nodes

    def has_concept(self, concept_id: str) -> bool:
        return self._is_concept(self._u(concept_iri(concept_id)))

    def concept(self, concept_id: str) -> Concept:
        node = self._u(concept_iri(concept_id))
        if not self._is_concept(node):
            raise UnknownConceptError(concept_id)
        triples: list[Triple] = [(("iri", str(node)), ("iri", RDF_TYPE), ("iri", VOCAB_NS + "Concept"))]
        for p, o in self.graph.predicate_objects(node):
            triples.append((("iri", str(node)), ("iri", str(p)), _generic(o)))
        triples += self._sty_triples({o for _, o in self.graph.predicate_objects(node)
                                      if _generic(o)[0] == "iri" and str(o).startswith(STY_NS)})
        concepts, _ = records_from_triples(triples)
        return concepts[0]

    def _sty_triples(self, stys: Iterable[Any] | None = None) -> list[Triple]:
        g = self.graph
        out: list[Triple] = []
        for pred in (VOCAB_NS + "tui", RDFS_NS + "label", VOCAB_NS + "treeNumber"):
            if stys is None:
                out += [(_generic(s), ("iri", pred), _generic(o)) for s, o in g.subject_objects(self._u(pred))]
            else:
                out += [(_generic(s), ("iri", pred), _generic(o)) for s in stys for o in g.objects(s, self._u(pred))]
        return out

    def iter_concepts(self) -> Iterator[Concept]:
        if self._concepts is not None:
            yield from self._concepts
            return
        g = self.graph
        triples: list[Triple] = []
        for pred in (RDF_TYPE, SKOS_NS + "prefLabel", SKOS_NS + "altLabel", VOCAB_NS + "xref",
                     SKOS_NS + "definition", VOCAB_NS + "semanticType"):
            u = self._u(pred)
            for s, o in g.subject_objects(u):
                if str(s).startswith(CONCEPT_NS):
                    triples.append((("iri", str(s)), ("iri", pred), _generic(o)))
        if self._concepts is None:  # read-only store: list the concepts once
            concepts, _ = records_from_triples(triples + self._sty_triples())
            self._concepts = sorted(concepts, key=lambda c: c.id)
        yield from self._concepts

    def num_concepts(self) -> int:
        self._is_concept(None)
        return len(self._concept_nodes or ())

    def _relation_triples(self, rel_types: Iterable[str] | None = None) -> list[Triple]:
        g = self.graph
        out: list[Triple] = []
        for rel in self._rel_types if rel_types is None else rel_types:
            u = self._u(relation_iri(rel))
            out += [(("iri", str(h)), ("iri", str(u)), ("iri", str(t))) for h, t in g.subject_objects(u)
                    if self._is_concept(h) and self._is_concept(t)]
        for pred in (RDF_NS + "subject", RDF_NS + "predicate", RDF_NS + "object", VOCAB_NS + "source",
                     VOCAB_NS + "attributes"):
            out += [(_generic(b), ("iri", pred), _generic(o)) for b, o in g.subject_objects(self._u(pred))]
        return out

    def iter_relations(self) -> Iterator[Relation]:
        if self._relations is None:  # read-only store: list the relations once
            _, rels = records_from_triples(self._relation_triples())
            rels = self._rows_to_relations_dedup(rels)
            rels.sort(key=lambda r: (*r.key, r.source, tuple(r.attributes.items())))
            self._relations = rels
        yield from self._relations

    @staticmethod
    def _rows_to_relations_dedup(rels: list[Relation]) -> list[Relation]:
        seen, out = set(), []
        for r in rels:
            key = (*r.key, r.source, tuple(r.attributes.items()))
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out

    def num_relations(self) -> int:
        if self._relations is None:
            list(self.iter_relations())
        return len(self._relations or ())

    def relation_types(self) -> list[str]:
        return [r for r in self._rel_types if self._relation_triples_exist(r)]

    def _relation_triples_exist(self, rel: str) -> bool:
        u = self._u(relation_iri(rel))
        return any(self._is_concept(h) and self._is_concept(t) for h, t in self.graph.subject_objects(u))

    def _keys(self) -> dict[str, dict[str, list[tuple[str, str]]]]:
        if self._keys_cache is None:
            g = self.graph
            keys: dict[str, dict[str, list[tuple[str, str]]]] = {"name": {}, "synonym": {}, "xref": {}, "code": {}}
            if self._concepts is not None:  # the store's own records: no triple walk needed
                for con in self._concepts:
                    iri = concept_iri(con.id)
                    keys["name"].setdefault(normalise_text(con.name), []).append((iri, con.name))
                    for syn in con.synonyms:
                        keys["synonym"].setdefault(normalise_text(syn), []).append((iri, syn))
                    for x in con.xrefs:
                        keys["xref"].setdefault(x.casefold(), []).append((iri, x))
                        keys["code"].setdefault(x.partition(":")[2].casefold(), []).append((iri, x))
                self._keys_cache = keys
                return keys
            for kind, pred in (("name", SKOS_NS + "prefLabel"), ("synonym", SKOS_NS + "altLabel")):
                for c, lab in g.subject_objects(self._u(pred)):
                    if str(c).startswith(CONCEPT_NS):
                        keys[kind].setdefault(normalise_text(str(lab)), []).append((str(c), str(lab)))
            for c, x in g.subject_objects(self._u(VOCAB_NS + "xref")):
                if str(c).startswith(CONCEPT_NS):
                    keys["xref"].setdefault(str(x).casefold(), []).append((str(c), str(x)))
                    keys["code"].setdefault(str(x).partition(":")[2].casefold(), []).append((str(c), str(x)))
            self._keys_cache = keys
        return self._keys_cache

    def _match_label(self, text: str, *, casefold: bool) -> list[tuple[str, str, str]]:
        from rdflib import Literal

        if not casefold:
            out = []
            for kind, pred in (("name", SKOS_NS + "prefLabel"), ("synonym", SKOS_NS + "altLabel")):
                out += [(concept_id_from_iri(str(c)), text, kind)
                        for c in self.graph.subjects(self._u(pred), Literal(text)) if str(c).startswith(CONCEPT_NS)]
            return out
        keys = self._keys()
        return [(concept_id_from_iri(c), lab, kind) for kind in ("name", "synonym")
                for c, lab in keys[kind].get(text, ())]

    def _match_code(self, xref: str | None, code: str) -> list[tuple[str, str]]:
        keys = self._keys()
        hits = keys["xref"].get(xref.casefold(), []) if xref is not None else keys["code"].get(code.casefold(), [])
        return [(concept_id_from_iri(c), x) for c, x in hits]

    def _all_labels(self) -> list[tuple[str, str, str]]:
        keys = self._keys()
        return [(lab, concept_id_from_iri(c), kind) for kind in ("name", "synonym")
                for rows in keys[kind].values() for c, lab in rows]

    def _statements(self, node: Any, end: str) -> dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]]:
        g = self.graph
        out: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]] = {}
        for b in g.subjects(self._u(RDF_NS + end), node):
            h, p, t = (g.value(b, self._u(RDF_NS + x)) for x in ("subject", "predicate", "object"))
            src = g.value(b, self._u(VOCAB_NS + "source"))
            attrs = g.value(b, self._u(VOCAB_NS + "attributes"))
            out.setdefault((str(h), str(p), str(t)), []).append(
                (str(src) if src is not None else "", json.loads(str(attrs)) if attrs is not None else {})
            )
        return out

    def _edges(self, concept_id: str, relations: frozenset[str] | None, direction: str) -> list[Relation]:
        node = self._u(concept_iri(concept_id))
        g = self.graph
        direct: list[tuple[str, str, str]] = []
        stm: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]] = {}
        if direction in ("out", "both"):
            direct += [(str(node), str(p), str(o)) for p, o in g.predicate_objects(node)
                       if str(p).startswith(RELATION_NS) and self._is_concept(o)]
            stm.update(self._statements(node, "subject"))
        if direction in ("in", "both"):
            direct += [(str(s), str(p), str(node)) for s, p in g.subject_predicates(node)
                       if str(p).startswith(RELATION_NS) and self._is_concept(s)]
            stm.update(self._statements(node, "object"))
        rels = []
        for h, p, t in direct:
            rel = relation_from_iri(p)
            if relations is not None and rel not in relations:
                continue
            for src, attrs in stm.get((h, p, t), [("", {})]):
                rels.append(Relation(concept_id_from_iri(h), rel, concept_id_from_iri(t), src, attrs))
        return self._rows_to_relations_dedup(rels)

    def _closure(self, concept_id: str, relation: str, up: bool) -> set[str]:
        u = self._u(relation_iri(check_relation_name(relation)))
        g = self.graph
        start = self._u(concept_iri(concept_id))
        seen = {start}
        stack = [start]
        while stack:
            node = stack.pop()
            nxt = g.objects(node, u) if up else g.subjects(u, node)
            for x in nxt:
                if x not in seen and self._is_concept(x):
                    seen.add(x)
                    stack.append(x)
        seen.discard(start)
        return {concept_id_from_iri(str(x)) for x in seen}


def _generic(x: Any) -> Term:
    from rdflib import BNode, Literal

    if isinstance(x, Literal):
        return ("lit", str(x))
    if isinstance(x, BNode):
        return ("bnode", str(x))
    return ("iri", str(x))
