"""Human Disease Ontology (DO) reports -> concepts and relations; the default KG builder.

Reads the report files of the HumanDiseaseOntology repository (CC0 1.0):

* ``HumanDO.tsv`` — ``id, label, subClassOf`` (parent given by *label*): diseases and is-a.
* ``allXREFinDO.tsv`` — ``id, label, xref``: UMLS CUIs, SNOMED CT, MeSH, ICD-10-CM, OMIM ...
  (source prefixes normalised to UMLS abbreviations, e.g. ``MESH`` -> ``MSH``).
* ``disease-symptom.tsv`` — ``disease_id, disease_label, symptom_id, symptom_label``.
* ``DO-subClassOf-anonymous.tsv`` — logical axioms such as ``'has symptom' some fever`` or
  ``'disease has location' some brain``: each ``'relation' some target`` becomes a relation
  (``located_in``, ``has_symptom``, ``has_material_basis_in``, ``transmitted_by`` ...).
  Targets are given by label: they link to a Symptom Ontology or DO concept with that label,
  or become a new concept ``DOTERM:<label>`` typed after the relation (anatomy, organism ...).
* ``symp_import.owl`` (optional) — Symptom Ontology terms: labels, synonyms, definitions,
  UMLS CUIs and the symptom is-a hierarchy.

:func:`build_default_kg` writes the compact KG shipped as ``graphbrain/kg/data/default_kg.json.gz``.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from graphbrain.errors import DataError
from graphbrain.kg.model import (
    BODY_PART,
    CELL,
    CHEMICAL,
    CONCEPTUAL,
    DISEASE,
    FINDING,
    IS_A,
    ORGANISM,
    SIGN_OR_SYMPTOM,
    TEMPORAL,
    Concept,
    Relation,
    SemanticType,
    normalise_xref,
    relation_name,
)
from graphbrain.kg.readers.common import ReadError, decode_lines

SOURCE = "DO"
ROOT_ID = "DOID:4"
DO_COMMIT = "9fbefd66"

_TARGET_TYPE: dict[str, SemanticType] = {
    "has_symptom": SIGN_OR_SYMPTOM,
    "located_in": BODY_PART,
    "adjacent_to": BODY_PART,
    "transmitted_by": ORGANISM,
    "has_allergic_trigger": CHEMICAL,
    "has_disease_driver": CHEMICAL,
    "derives_from": CELL,
    "starts_during": TEMPORAL,
    "has_phenotype": FINDING,
    "has_feature": FINDING,
}

_AXIOM = re.compile(r"'(?P<rel>[^']+)' some (?P<tgt>'[^']+'|\([^()]*\)|[^\s()|']+)")
_QUOTED = re.compile(r"'([^']+)'|([^\s()']+)")


def _read_tsv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError("Disease Ontology report file not found", source=str(path), reason="missing")
    # decode line by line first: a byte that is not UTF-8 is named with its line and column
    lines = [text + "\n" for _, text in decode_lines(path)]
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows:
        raise ReadError("empty report file", file=path, line=1, column=1, reason="empty")
    return rows


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label.strip()).strip("_").lower() or "term"


def read_symptom_ontology(path: str | Path) -> tuple[list[Concept], list[Relation], str]:
    """Symptom Ontology classes from ``symp_import.owl``; returns concepts, is-a and version."""
    path = Path(path)
    ns = {
        "owl": "http://www.w3.org/2002/07/owl#",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "obo": "http://purl.obolibrary.org/obo/",
        "oio": "http://www.geneontology.org/formats/oboInOwl#",
    }
    rdf_about = "{" + ns["rdf"] + "}about"
    rdf_res = "{" + ns["rdf"] + "}resource"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise ReadError(f"cannot parse the Symptom Ontology OWL file ({exc})", file=path, line=line,
                        column=None if col is None else col + 1, reason="syntax") from exc
    except OSError as exc:
        raise DataError(f"cannot read the Symptom Ontology OWL file ({exc})", source=str(path)) from exc
    version = ""
    onto = root.find("owl:Ontology", ns)
    if onto is not None:
        v = onto.find("owl:versionIRI", ns)
        if v is not None:
            m = re.search(r"releases/([0-9-]+)/", v.get(rdf_res, ""))
            version = m.group(1) if m else ""
    concepts, relations = [], []
    for cls in root.findall("owl:Class", ns):
        about = cls.get(rdf_about, "")
        m = re.search(r"/SYMP_(\d+)$", about)
        if not m:
            continue
        if (cls.findtext("owl:deprecated", default="", namespaces=ns) or "").strip() == "true":
            continue
        cid = f"SYMP:{m.group(1)}"
        label = (cls.findtext("rdfs:label", default="", namespaces=ns) or "").strip()
        syn = [e.text.strip() for tag in ("oio:hasExactSynonym", "oio:hasRelatedSynonym")
               for e in cls.findall(tag, ns) if e.text and e.text.strip()]
        xrefs = []
        for e in cls.findall("oio:hasDbXref", ns):
            t = (e.text or "").strip()
            if re.match(r"^(UMLS_CUI|MESH|SNOMEDCT\w*|ICD10CM|NCI|HP):\S+$", t):
                xrefs.append(normalise_xref(t))
        definition = (cls.findtext("obo:IAO_0000115", default="", namespaces=ns) or "").strip()
        concepts.append(
            Concept(cid, label or cid, tuple(syn), (SIGN_OR_SYMPTOM,), tuple(xrefs), definition)
        )
        for sc in cls.findall("rdfs:subClassOf", ns):
            pm = re.search(r"/SYMP_(\d+)$", sc.get(rdf_res, ""))
            if pm:
                relations.append(Relation(cid, IS_A, f"SYMP:{pm.group(1)}", "SYMP"))
    return concepts, relations, version


def read_disease_ontology(
    do_dir: str | Path, *, include_symptom_ontology: bool = True
) -> tuple[list[Concept], list[Relation], dict[str, Any]]:
    """Concepts, relations and metadata (counts, skipped rows, version) from DO reports."""
    do_dir = Path(do_dir)
    stats: Counter[str] = Counter()
    # diseases and is-a
    rows = _read_tsv(do_dir / "HumanDO.tsv")
    if [h.strip() for h in rows[0][:3]] != ["id", "label", "subClassOf"]:
        raise ReadError(f"unexpected header {rows[0]}", file=do_dir / "HumanDO.tsv", line=1, column=1,
                        reason="header")
    labels: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0].startswith("DOID:"):
            raise ReadError("expected a DOID and a label", file=do_dir / "HumanDO.tsv", line=lineno,
                            column=1 if not row or not row[0].startswith("DOID:") else len(row[0]) + 2)
        labels[row[0]] = row[1]
        if len(row) > 2 and row[2]:
            parents.setdefault(row[0], []).append(row[2])
    labels.setdefault(ROOT_ID, "disease")
    by_label = {lab.casefold(): i for i, lab in labels.items()}
    xrefs: dict[str, list[str]] = {}
    xrows = _read_tsv(do_dir / "allXREFinDO.tsv")
    for row in xrows[1:]:
        if len(row) < 3 or row[0] not in labels:
            stats["xref_rows_skipped"] += 1
            continue
        try:
            xrefs.setdefault(row[0], []).append(normalise_xref(row[2]))
        except ValueError:
            stats["xref_rows_skipped"] += 1
    concepts: dict[str, Concept] = {
        i: Concept(i, lab, (), (DISEASE,), tuple(xrefs.get(i, ()))) for i, lab in labels.items()
    }
    relations: list[Relation] = []
    for child, plabels in parents.items():
        for pl in plabels:
            pid = by_label.get(pl.casefold())
            if pid is None:
                stats["isa_parent_unknown"] += 1
                continue
            relations.append(Relation(child, IS_A, pid, SOURCE))
    # symptoms
    symp_by_label: dict[str, str] = {}
    version = ""
    owl = do_dir / "symp_import.owl"
    if include_symptom_ontology and owl.is_file():
        sc, sr, version = read_symptom_ontology(owl)
        for c in sc:
            concepts[c.id] = c
            symp_by_label.setdefault(c.name.casefold(), c.id)
            for s in c.synonyms:
                symp_by_label.setdefault(s.casefold(), c.id)
        relations.extend(sr)
    for lineno, row in enumerate(_read_tsv(do_dir / "disease-symptom.tsv")[1:], start=2):
        if len(row) < 4:
            raise ReadError(f"expected 4 tab-separated columns, found {len(row)}",
                            file=do_dir / "disease-symptom.tsv", line=lineno,
                            column=sum(len(c) + 1 for c in row) + 1, reason="fields")
        did, _, sid, slabel = row[:4]
        if did not in concepts:
            stats["symptom_rows_unknown_disease"] += 1
            continue
        if sid not in concepts:
            concepts[sid] = Concept(sid, slabel, (), (SIGN_OR_SYMPTOM,))
            symp_by_label.setdefault(slabel.casefold(), sid)
        relations.append(Relation(did, "has_symptom", sid, SOURCE))
    # logical axioms
    arows = _read_tsv(do_dir / "DO-subClassOf-anonymous.tsv")
    for row in arows[1:]:
        if len(row) < 3 or row[0] not in concepts:
            stats["axiom_rows_skipped"] += 1
            continue
        head = row[0]
        for part in row[2].split("|"):
            union = " or " in part
            for m in _AXIOM.finditer(part):
                rel = relation_name(m.group("rel"))
                tgt = m.group("tgt")
                targets = (
                    [a or b for a, b in _QUOTED.findall(tgt[1:-1]) if (a or b) not in ("and", "or", "some")]
                    if tgt.startswith("(")
                    else [tgt.strip("'")]
                )
                for label in targets:
                    tid = _target_id(label, rel, concepts, by_label, symp_by_label)
                    attrs = {"axiom": "union"} if union else {}
                    relations.append(Relation(head, rel, tid, SOURCE, attrs))
                    stats[f"axiom_{rel}"] += 1
    meta = {
        "name": "Human Disease Ontology knowledge graph",
        "source": "DiseaseOntology/HumanDiseaseOntology reports",
        "source_commit": DO_COMMIT,
        "symptom_ontology_release": version,
        "licence": "CC0 1.0",
        "counts": dict(sorted(stats.items())),
    }
    return list(concepts.values()), relations, meta


def _target_id(
    label: str,
    rel: str,
    concepts: dict[str, Concept],
    do_by_label: dict[str, str],
    symp_by_label: dict[str, str],
) -> str:
    key = label.casefold()
    if rel == "has_symptom" and key in symp_by_label:
        return symp_by_label[key]
    if key in do_by_label:
        return do_by_label[key]
    if key in symp_by_label:
        return symp_by_label[key]
    tid = f"DOTERM:{_slug(label)}"
    if tid not in concepts:
        concepts[tid] = Concept(tid, label, (), (_TARGET_TYPE.get(rel, CONCEPTUAL),))
    return tid


def build_default_kg(do_dir: str | Path, out: str | Path) -> Path:
    """Build the Disease Ontology KG from ``do_dir`` and write it (compact ``.json.gz``)."""
    from graphbrain.kg.graph import KnowledgeGraph

    concepts, relations, meta = read_disease_ontology(do_dir)
    kg = KnowledgeGraph.from_records(concepts, relations, metadata=meta)
    return kg.save(out)
