"""Reading and writing knowledge graphs.

Formats (chosen from the path suffix by :func:`save` / :func:`load`):

* ``.json.gz`` / ``.json`` — the compact column layout of
  :class:`~graphbrain.kg.backends.memory.KGColumns` (integer-coded edges); fastest to load,
  used for the shipped default KG.
* a folder (or ``.tsv`` suffix on a folder name) — ``concepts.tsv``, ``triples.tsv`` and
  ``metadata.json``. ``triples.tsv`` columns: ``head relation tail source attributes``
  (``attributes`` is a JSON object); only the first three are required, so plain triple
  files import too. ``concepts.tsv`` columns: ``id name synonyms semantic_types xrefs
  definition`` where multi-valued cells are JSON arrays (semantic types as
  ``[tui, name, tree_number]``). Cells are plain text split on tabs, one record per line,
  no quoting (a ``"`` is an ordinary character); tab, newline, carriage return, NUL and
  backslash inside a cell are written ``\\t``, ``\\n``, ``\\r``, ``\\0``, ``\\\\``.
* ``.ttl`` (Turtle) and ``.nt`` (N-Triples) — the RDF layout documented in
  :mod:`graphbrain.kg.backends.rdf` plus one metadata triple
  (``<https://w3id.org/graphbrain/kg/graph> gb:metadata "{json}"``); written and parsed with
  pyoxigraph. Triples outside this layout are ignored with a :class:`KGFormatWarning`
  naming what was found.

All formats round-trip exactly, metadata included (tests check it). Reader errors are
:class:`~graphbrain.kg.readers.common.ReadError` with file, line and column; a file that
gives no concept raises :class:`~graphbrain.kg.readers.common.EmptyGraphError` unless
``allow_empty=True``.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphbrain.errors import DataError
from graphbrain.kg.model import BASE_IRI, Concept, Relation, SemanticType
from graphbrain.kg.readers.common import ReadError, check_not_empty, decode_lines, skip

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph

CONCEPT_COLUMNS = ["id", "name", "synonyms", "semantic_types", "xrefs", "definition"]
TRIPLE_COLUMNS = ["head", "relation", "tail", "source", "attributes"]

GRAPH_IRI = BASE_IRI + "graph"
_TSV_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_TSV_UNESC = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0"}
_TSV_ESC_RE = re.compile(r"\\(.)", re.DOTALL)


class KGFormatWarning(UserWarning):
    """Part of an input file is not in graphbrain's layout and was ignored."""


def tsv_escape(value: str) -> str:
    """A cell with tab, newline, CR, NUL and backslash escaped (``\\t`` ...)."""
    return value.translate(_TSV_ESC)


def tsv_unescape(cell: str) -> str:
    """Inverse of :func:`tsv_escape`; other backslash pairs are kept as they are."""
    if "\\" not in cell:
        return cell
    return _TSV_ESC_RE.sub(lambda m: _TSV_UNESC.get(m.group(1), m.group(0)), cell)


def _write_row(fh: Any, cells: list[str]) -> None:
    fh.write("\t".join(tsv_escape(c) for c in cells) + "\n")


def _col(raw: list[str], i: int) -> int:
    """1-based character column where raw cell ``i`` starts."""
    return sum(len(c) + 1 for c in raw[:i]) + 1


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
        write_tsv(kg.concepts(), kg.relations(), path, metadata=kg.metadata)
    else:
        write_rdf(kg.concepts(), kg.relations(), path, fmt=kind, metadata=kg.metadata)
    return path


def load(
    path: str | Path,
    *,
    on_error: str = "raise",
    allow_empty: bool = False,
    stats: Counter[str] | None = None,
) -> KnowledgeGraph:
    """Read a knowledge graph (format from the suffix, see module doc).

    ``on_error="skip"`` skips malformed TSV rows (not UTF-8, bad JSON cell, bad relation
    name ...) and counts them in ``stats`` and in the graph's ``metadata["skipped"]``.
    A graph without concepts raises :class:`EmptyGraphError` unless ``allow_empty``.
    """
    from graphbrain.kg.graph import KnowledgeGraph

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", source=str(path), reason="missing")
    stats = stats if stats is not None else Counter()
    kind = _kind(path)
    if kind == "json":
        kg = load_compact(path)
        check_not_empty(len(kg), str(path), allow_empty=allow_empty)
        return kg
    if kind == "tsv":
        concepts, relations = read_tsv(path, on_error=on_error, stats=stats)
        mpath = path / "metadata.json"
        meta: dict[str, Any] = {}
        if mpath.is_file():
            try:
                meta = json.loads(mpath.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"cannot read the metadata ({exc})", source=str(mpath)) from exc
    else:
        concepts, relations, meta = _read_rdf(path, fmt=kind)
    from graphbrain.kg.readers.common import skipped_by_reason

    skipped = skipped_by_reason(stats)
    if skipped:
        meta = {**meta, "skipped": skipped}
    if not concepts and not relations:
        check_not_empty(0, str(path), f"{kind} input without records", allow_empty=allow_empty)
    return KnowledgeGraph.from_records(concepts, relations, add_missing=True, metadata=meta)


# ---- compact ------------------------------------------------------------------------------
def save_compact(kg: KnowledgeGraph, path: str | Path) -> Path:
    path = Path(path)
    cols = kg.memory().columns
    cols.metadata = dict(kg.metadata)
    data = json.dumps(cols.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        # mtime=0: the same graph always gives the same bytes (gzip headers carry a timestamp)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh:
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
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not a UTF-8 JSON knowledge-graph file (byte {exc.start}: {exc.reason}); a pickle or other "
            "binary file is never loaded", source=str(path)) from exc
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise DataError(f"cannot read the knowledge-graph file ({exc})", source=str(path)) from exc
    cols = KGColumns.from_json(obj, source=str(path))
    return KnowledgeGraph(MemoryBackend(cols), cols.metadata)


# ---- TSV ------------------------------------------------------------------------------------
def write_tsv(
    concepts: Iterable[Concept],
    relations: Iterable[Relation],
    folder: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "concepts.tsv", "w", newline="", encoding="utf-8") as fh:
        _write_row(fh, CONCEPT_COLUMNS)
        for c in concepts:
            _write_row(
                fh,
                [
                    c.id,
                    c.name,
                    json.dumps(list(c.synonyms), ensure_ascii=False),
                    json.dumps([[t.tui, t.name, t.tree_number] for t in c.semantic_types], ensure_ascii=False),
                    json.dumps(list(c.xrefs), ensure_ascii=False),
                    c.definition,
                ],
            )
    write_triples_tsv(relations, folder / "triples.tsv")
    mpath = folder / "metadata.json"
    if metadata:
        mpath.write_text(json.dumps(metadata, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    elif mpath.exists():
        mpath.unlink()
    return folder


def write_triples_tsv(relations: Iterable[Relation], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        _write_row(fh, TRIPLE_COLUMNS)
        for r in relations:
            attrs = json.dumps(dict(r.attributes), ensure_ascii=False, sort_keys=True) if r.attributes else ""
            _write_row(fh, [r.head, r.relation, r.tail, r.source, attrs])
    return path


def read_tsv(
    folder: str | Path, *, on_error: str = "raise", stats: Counter[str] | None = None
) -> tuple[list[Concept], list[Relation]]:
    folder = Path(folder)
    cpath, tpath = folder / "concepts.tsv", folder / "triples.tsv"
    if not tpath.is_file():
        raise DataError("a TSV knowledge graph folder needs triples.tsv", source=str(folder), reason="missing")
    concepts = read_concepts_tsv(cpath, on_error=on_error, stats=stats) if cpath.is_file() else []
    return concepts, read_triples_tsv(tpath, on_error=on_error, stats=stats)


def _tsv_rows(
    path: Path, on_error: str, stats: Counter[str]
) -> Any:
    """``(line, raw cells, cells)`` of a TSV file; blank lines skipped; cells unescaped."""
    for lineno, text in decode_lines(path, on_error=on_error, stats=stats):
        if not text.strip():
            continue
        raw = text.split("\t")
        yield lineno, raw, [tsv_unescape(c) for c in raw]


def _bad_row(
    exc_msg: str, path: Path, lineno: int, column: int, reason: str, on_error: str, stats: Counter[str]
) -> None:
    if on_error == "skip":
        skip(stats, path.name, reason)
        return
    raise ReadError(exc_msg, file=path, line=lineno, column=column, reason=reason)


def read_concepts_tsv(
    path: str | Path, *, on_error: str = "raise", stats: Counter[str] | None = None
) -> list[Concept]:
    path = Path(path)
    stats = stats if stats is not None else Counter()
    out = []
    rows = _tsv_rows(path, on_error, stats)
    first = next(rows, None)
    if first is None or first[2][:2] != CONCEPT_COLUMNS[:2]:
        raise ReadError(
            f"expected a header starting with {CONCEPT_COLUMNS[:2]}, got {first[2] if first else None}",
            file=path, line=first[0] if first else 1, column=1, reason="header",
        )
    for lineno, raw, row in rows:
        if len(row) > len(CONCEPT_COLUMNS):
            _bad_row(f"expected at most {len(CONCEPT_COLUMNS)} tab-separated cells, found {len(row)}",
                     path, lineno, _col(raw, len(CONCEPT_COLUMNS)), "fields", on_error, stats)
            continue
        row = row + [""] * (len(CONCEPT_COLUMNS) - len(row))
        cell = 0
        try:
            cell = 2
            syn = tuple(json.loads(row[2]) if row[2] else ())
            cell = 3
            stys = tuple(SemanticType(*t) for t in (json.loads(row[3]) if row[3] else ()))
            cell = 4
            xrefs = tuple(json.loads(row[4]) if row[4] else ())
            cell = 0
            out.append(Concept(id=row[0], name=row[1], synonyms=syn, semantic_types=stys, xrefs=xrefs,
                               definition=row[5]))
        except (ValueError, TypeError) as exc:
            what = CONCEPT_COLUMNS[cell] if cell else "id"
            _bad_row(f"malformed concept row: {what} ({exc})", path, lineno, _col(raw, cell), "malformed",
                     on_error, stats)
    return out


def read_triples_tsv(
    path: str | Path, *, on_error: str = "raise", stats: Counter[str] | None = None
) -> list[Relation]:
    """Read ``head relation tail [source [attributes]]`` rows (header row required)."""
    path = Path(path)
    stats = stats if stats is not None else Counter()
    out = []
    rows = _tsv_rows(path, on_error, stats)
    first = next(rows, None)
    if first is None or [h.strip().lower() for h in first[2][:3]] != TRIPLE_COLUMNS[:3]:
        raise ReadError(
            f"expected a header starting with head, relation, tail; got {first[2] if first else None}",
            file=path, line=first[0] if first else 1, column=1, reason="header",
        )
    for lineno, raw, row in rows:
        if len(row) < 3 or len(row) > len(TRIPLE_COLUMNS):
            col = _col(raw, len(row)) - 1 if len(row) < 3 else _col(raw, len(TRIPLE_COLUMNS))
            _bad_row(f"expected 3 to {len(TRIPLE_COLUMNS)} tab-separated cells, found {len(row)}",
                     path, lineno, col, "fields", on_error, stats)
            continue
        cell = 1
        try:
            attrs: Any = {}
            if len(row) > 4 and row[4]:
                cell = 4
                attrs = json.loads(row[4])
                if not isinstance(attrs, dict):
                    raise ValueError("attributes must be a JSON object")
                cell = 1
            out.append(Relation(row[0], row[1], row[2], row[3] if len(row) > 3 else "", attrs))
        except (ValueError, TypeError) as exc:
            _bad_row(f"malformed triple: {TRIPLE_COLUMNS[cell]} ({exc})", path, lineno, _col(raw, cell),
                     "malformed", on_error, stats)
    return out


# ---- RDF ------------------------------------------------------------------------------------
def _ox_format(fmt: str) -> Any:
    import pyoxigraph as ox

    formats = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES}
    if fmt not in formats:
        raise ValueError(f"RDF format must be 'turtle' or 'ntriples', got {fmt!r}")
    return formats[fmt]


def write_rdf(
    concepts: Iterable[Concept],
    relations: Iterable[Relation],
    path: str | Path,
    *,
    fmt: str = "turtle",
    metadata: dict[str, Any] | None = None,
) -> Path:
    import pyoxigraph as ox

    from graphbrain.kg.backends.rdf import RDF_NS, RDFS_NS, SKOS_NS, _ox_term, record_triples
    from graphbrain.kg.model import CONCEPT_NS, RELATION_NS, STY_NS, VOCAB_NS

    path = Path(path)

    def triples() -> Any:
        if metadata:
            yield ox.Triple(
                ox.NamedNode(GRAPH_IRI),
                ox.NamedNode(VOCAB_NS + "metadata"),
                ox.Literal(json.dumps(metadata, ensure_ascii=False, sort_keys=True)),
            )
        for s, p, o in record_triples(concepts, relations):
            yield ox.Triple(_ox_term(s), _ox_term(p), _ox_term(o))

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
    ox.serialize(triples(), str(path), format=_ox_format(fmt), **kw)
    return path


def read_rdf(path: str | Path, *, fmt: str | None = None) -> tuple[list[Concept], list[Relation]]:
    """Concepts and relations of a Turtle / N-Triples file in graphbrain's layout."""
    concepts, relations, _ = _read_rdf(path, fmt=fmt)
    return concepts, relations


def _read_rdf(
    path: str | Path, *, fmt: str | None = None
) -> tuple[list[Concept], list[Relation], dict[str, Any]]:
    import pyoxigraph as ox

    from graphbrain.kg.backends.rdf import RDF_NS, RDF_TYPE, RDFS_NS, SKOS_NS, records_from_triples
    from graphbrain.kg.model import CONCEPT_NS, RELATION_NS, STY_NS, VOCAB_NS

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
        msg = str(getattr(exc, "msg", exc))
        msg = re.sub(r"^Parser error at line \d+ column \d+: ", "", msg)
        reason = "encoding" if "UTF-8" in msg else "syntax"
        raise ReadError(f"invalid {fmt}: {msg}", file=path, line=exc.lineno, column=exc.offset,
                        reason=reason) from None
    meta: dict[str, Any] = {}
    known = {RDF_TYPE, VOCAB_NS + "id", SKOS_NS + "prefLabel", SKOS_NS + "altLabel", VOCAB_NS + "xref",
             SKOS_NS + "definition", VOCAB_NS + "semanticType", VOCAB_NS + "nameKey",
             VOCAB_NS + "synonymKey", VOCAB_NS + "xrefKey", VOCAB_NS + "codeKey"}
    sty_preds = {VOCAB_NS + "tui", RDFS_NS + "label", VOCAB_NS + "treeNumber"}
    foreign: Counter[str] = Counter()
    kept = []
    for s, p, o in triples:
        if s == ("iri", GRAPH_IRI) and p[1] == VOCAB_NS + "metadata":
            try:
                meta = json.loads(o[1])
            except json.JSONDecodeError as exc:
                raise ReadError(f"the graph metadata is not JSON ({exc})", file=path, reason="metadata") from None
            continue
        ok = (
            (s[0] == "iri" and s[1].startswith(CONCEPT_NS) and (p[1] in known or p[1].startswith(RELATION_NS)))
            or (s[0] == "iri" and s[1].startswith(STY_NS) and p[1] in sty_preds)
            or (s[0] == "bnode" and (p[1].startswith(RDF_NS) or p[1].startswith(VOCAB_NS)))
        )
        if ok:
            kept.append((s, p, o))
        else:
            foreign[p[1]] += 1
    if foreign:
        top = ", ".join(f"<{k}> ({v})" for k, v in foreign.most_common(5))
        warnings.warn(
            f"{path}: {sum(foreign.values())} of {len(triples)} triples are not in graphbrain's "
            f"layout and were ignored (concepts are <{CONCEPT_NS}...> with skos:prefLabel); "
            f"predicates found: {top}",
            KGFormatWarning,
            stacklevel=3,
        )
    concepts, relations = records_from_triples(kept)
    return concepts, relations, meta
