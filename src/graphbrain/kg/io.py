"""Reading and writing knowledge graphs.

Formats (chosen from the path suffix by :func:`save` / :func:`load`):

* ``.json.gz`` / ``.json`` — the compact column layout of
  :class:`~graphbrain.kg.backends.memory.KGColumns` (integer-coded edges); fastest to load,
  used for the shipped default KG.
* a folder (or ``.tsv`` suffix on a folder name) — ``concepts.tsv`` and ``triples.tsv``.
  ``triples.tsv`` columns: ``head relation tail source attributes`` (``attributes`` is a JSON
  object); only the first three are required, so plain triple files import too.
  ``concepts.tsv`` columns: ``id name synonyms semantic_types xrefs definition`` where
  multi-valued cells are JSON arrays (semantic types as ``[tui, name, tree_number]``).
* ``.ttl`` (Turtle) and ``.nt`` (N-Triples) — the RDF layout documented in
  :mod:`graphbrain.kg.backends.rdf`; written and parsed with pyoxigraph.

All formats round-trip exactly (tests check it).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphbrain.errors import DataError
from graphbrain.kg.model import Concept, Relation, SemanticType

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph

CONCEPT_COLUMNS = ["id", "name", "synonyms", "semantic_types", "xrefs", "definition"]
TRIPLE_COLUMNS = ["head", "relation", "tail", "source", "attributes"]

csv.field_size_limit(2**31 - 1)


def default_kg_path() -> Path:
    p = Path(__file__).resolve().parent / "data" / "default_kg.json.gz"
    if not p.is_file():
        raise DataError(
            "the default knowledge graph is missing from this installation; rebuild it with "
            "`graphbrain kg build --do-dir <HumanDiseaseOntology reports> --out <file>`",
            source=str(p),
            reason="missing",
        )
    return p


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".json.gz") or name.endswith(".json"):
        return "json"
    if name.endswith(".ttl"):
        return "turtle"
    if name.endswith(".nt"):
        return "ntriples"
    if path.is_dir() or name.endswith(".tsv") or not path.suffix:
        return "tsv"
    raise ValueError(
        f"cannot tell the format of {path}: use .json.gz, .json, .ttl, .nt or a folder for TSV"
    )


def save(kg: KnowledgeGraph, path: str | Path) -> Path:
    path = Path(path)
    kind = _kind(path)
    if kind == "json":
        save_compact(kg, path)
    elif kind == "tsv":
        write_tsv(kg.concepts(), kg.relations(), path)
    else:
        write_rdf(kg.concepts(), kg.relations(), path, fmt=kind)
    return path


def load(path: str | Path) -> KnowledgeGraph:
    from graphbrain.kg.graph import KnowledgeGraph

    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", source=str(path), reason="missing")
    kind = _kind(path)
    if kind == "json":
        return load_compact(path)
    if kind == "tsv":
        concepts, relations = read_tsv(path)
    else:
        concepts, relations = read_rdf(path, fmt=kind)
    return KnowledgeGraph.from_records(concepts, relations, add_missing=True)


# ---- compact ------------------------------------------------------------------------------
def save_compact(kg: KnowledgeGraph, path: str | Path) -> Path:
    path = Path(path)
    cols = kg.memory().columns
    cols.metadata = dict(kg.metadata)
    data = json.dumps(cols.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb", compresslevel=9) as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def load_compact(path: str | Path) -> KnowledgeGraph:
    from graphbrain.kg.backends.memory import KGColumns, MemoryBackend
    from graphbrain.kg.graph import KnowledgeGraph

    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        obj = json.loads(raw)
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise DataError(f"cannot read the knowledge-graph file ({exc})", source=str(path)) from exc
    cols = KGColumns.from_json(obj, source=str(path))
    return KnowledgeGraph(MemoryBackend(cols), cols.metadata)


# ---- TSV ------------------------------------------------------------------------------------
def write_tsv(concepts: Iterable[Concept], relations: Iterable[Relation], folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "concepts.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(CONCEPT_COLUMNS)
        for c in concepts:
            w.writerow(
                [
                    c.id,
                    c.name,
                    json.dumps(list(c.synonyms), ensure_ascii=False),
                    json.dumps([[t.tui, t.name, t.tree_number] for t in c.semantic_types], ensure_ascii=False),
                    json.dumps(list(c.xrefs), ensure_ascii=False),
                    c.definition,
                ]
            )
    write_triples_tsv(relations, folder / "triples.tsv")
    return folder


def write_triples_tsv(relations: Iterable[Relation], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(TRIPLE_COLUMNS)
        for r in relations:
            attrs = json.dumps(dict(r.attributes), ensure_ascii=False, sort_keys=True) if r.attributes else ""
            w.writerow([r.head, r.relation, r.tail, r.source, attrs])
    return path


def read_tsv(folder: str | Path) -> tuple[list[Concept], list[Relation]]:
    folder = Path(folder)
    cpath, tpath = folder / "concepts.tsv", folder / "triples.tsv"
    if not tpath.is_file():
        raise DataError("a TSV knowledge graph folder needs triples.tsv", source=str(folder), reason="missing")
    concepts = read_concepts_tsv(cpath) if cpath.is_file() else []
    return concepts, read_triples_tsv(tpath)


def read_concepts_tsv(path: str | Path) -> list[Concept]:
    path = Path(path)
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None or header[:2] != CONCEPT_COLUMNS[:2]:
            raise DataError(
                f"expected a header starting with {CONCEPT_COLUMNS[:2]}, got {header}", source=f"{path}:1"
            )
        for lineno, row in enumerate(rows, start=2):
            try:
                row = row + [""] * (len(CONCEPT_COLUMNS) - len(row))
                out.append(
                    Concept(
                        id=row[0],
                        name=row[1],
                        synonyms=tuple(json.loads(row[2]) if row[2] else ()),
                        semantic_types=tuple(SemanticType(*t) for t in (json.loads(row[3]) if row[3] else ())),
                        xrefs=tuple(json.loads(row[4]) if row[4] else ()),
                        definition=row[5],
                    )
                )
            except (ValueError, TypeError) as exc:
                raise DataError(f"malformed concept row ({exc})", source=f"{path}:{lineno}") from exc
    return out


def read_triples_tsv(path: str | Path) -> list[Relation]:
    """Read ``head relation tail [source [attributes]]`` rows (header row required)."""
    path = Path(path)
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None or [h.strip().lower() for h in header[:3]] != TRIPLE_COLUMNS[:3]:
            raise DataError(
                f"expected a header starting with head, relation, tail; got {header}", source=f"{path}:1"
            )
        for lineno, row in enumerate(rows, start=2):
            if not row or (len(row) == 1 and not row[0]):
                continue
            if len(row) < 3:
                raise DataError(f"expected at least 3 columns, got {len(row)}", source=f"{path}:{lineno}")
            try:
                attrs = json.loads(row[4]) if len(row) > 4 and row[4] else {}
                if not isinstance(attrs, dict):
                    raise ValueError("attributes must be a JSON object")
                out.append(Relation(row[0], row[1], row[2], row[3] if len(row) > 3 else "", attrs))
            except (ValueError, TypeError) as exc:
                raise DataError(f"malformed triple ({exc})", source=f"{path}:{lineno}") from exc
    return out


# ---- RDF ------------------------------------------------------------------------------------
def _ox_format(fmt: str) -> Any:
    import pyoxigraph as ox

    formats = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES}
    if fmt not in formats:
        raise ValueError(f"RDF format must be 'turtle' or 'ntriples', got {fmt!r}")
    return formats[fmt]


def write_rdf(
    concepts: Iterable[Concept], relations: Iterable[Relation], path: str | Path, *, fmt: str = "turtle"
) -> Path:
    import pyoxigraph as ox

    from graphbrain.kg.backends.rdf import RDF_NS, RDFS_NS, SKOS_NS, _ox_term, record_triples
    from graphbrain.kg.model import CONCEPT_NS, RELATION_NS, STY_NS, VOCAB_NS

    path = Path(path)
    triples = (
        ox.Triple(_ox_term(s), _ox_term(p), _ox_term(o)) for s, p, o in record_triples(concepts, relations)
    )
    kw: dict[str, Any] = {}
    if fmt == "turtle":
        kw["prefixes"] = {
            "c": CONCEPT_NS,
            "rel": RELATION_NS,
            "sty": STY_NS,
            "gb": VOCAB_NS,
            "skos": SKOS_NS,
            "rdf": RDF_NS,
            "rdfs": RDFS_NS,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    ox.serialize(triples, str(path), format=_ox_format(fmt), **kw)
    return path


def read_rdf(path: str | Path, *, fmt: str | None = None) -> tuple[list[Concept], list[Relation]]:
    import pyoxigraph as ox

    from graphbrain.kg.backends.rdf import records_from_triples

    path = Path(path)
    fmt = fmt or _kind(path)

    def term(t: Any) -> tuple[str, str]:
        if isinstance(t, ox.NamedNode):
            return ("iri", t.value)
        if isinstance(t, ox.BlankNode):
            return ("bnode", t.value)
        return ("lit", t.value)

    try:
        triples = [
            (term(q.subject), term(q.predicate), term(q.object))
            for q in ox.parse(path=str(path), format=_ox_format(fmt))
        ]
    except SyntaxError as exc:
        raise DataError(f"invalid {fmt} ({exc})", source=str(path), reason="syntax") from exc
    return records_from_triples(triples)
