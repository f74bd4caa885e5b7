"""The knowledge-graph data model: UMLS-shaped concepts and typed relations.

A :class:`Concept` carries a CUI-like id (``C0014544``, ``DOID:1826``, ``SYMP:0000124``),
a preferred name, synonyms, semantic types (UMLS TUI, name and tree number), an optional
definition and cross-references written ``SAB:CODE`` with UMLS source abbreviations
(``MSH:D004827``, ``SNOMEDCT_US:84757009``, ``ICD10CM:G40``, ``UMLS:C0014544`` ...).

A :class:`Relation` is a typed triple ``head -relation-> tail`` with its provenance
(``source``) and free string attributes. Relation types are snake_case identifiers
(``is_a``, ``has_symptom``, ``located_in``); :func:`relation_name` normalises labels such
as ``'disease has location'`` or UMLS ``RELA`` values.

Every concept and relation type has a stable IRI (:func:`concept_iri`,
:func:`relation_iri`) under :data:`BASE_IRI`, used by the RDF backends and exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

BASE_IRI = "https://w3id.org/graphbrain/kg/"
CONCEPT_NS = BASE_IRI + "concept/"
RELATION_NS = BASE_IRI + "relation/"
STY_NS = BASE_IRI + "semtype/"
VOCAB_NS = BASE_IRI + "vocab#"

IS_A = "is_a"

_REL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class SemanticType:
    """A UMLS semantic type: TUI (``T047``), name and tree number (``B2.2.1.2.1``)."""

    tui: str
    name: str
    tree_number: str = ""


# Semantic types used by the readers (values from the UMLS Semantic Network).
DISEASE = SemanticType("T047", "Disease or Syndrome", "B2.2.1.2.1")
SIGN_OR_SYMPTOM = SemanticType("T184", "Sign or Symptom", "A2.2.2")
FINDING = SemanticType("T033", "Finding", "A2.2")
BODY_PART = SemanticType("T023", "Body Part, Organ, or Organ Component", "A1.2.3.1")
ORGANISM = SemanticType("T001", "Organism", "A1.1")
CHEMICAL = SemanticType("T103", "Chemical", "A1.4.1")
CELL = SemanticType("T025", "Cell", "A1.2.3.3")
TEMPORAL = SemanticType("T079", "Temporal Concept", "A2.1.1")
CONCEPTUAL = SemanticType("T077", "Conceptual Entity", "A2")

# TUIs whose concepts count as candidate diseases in ``diagnose``.
DISEASE_TUIS = frozenset(
    {
        "T019",  # Congenital Abnormality
        "T020",  # Acquired Abnormality
        "T037",  # Injury or Poisoning
        "T046",  # Pathologic Function
        "T047",  # Disease or Syndrome
        "T048",  # Mental or Behavioral Dysfunction
        "T049",  # Cell or Molecular Dysfunction
        "T050",  # Experimental Model of Disease
        "T190",  # Anatomical Abnormality
        "T191",  # Neoplastic Process
    }
)


@dataclass(frozen=True, slots=True)
class Concept:
    """One concept. Immutable; ``synonyms``, ``semantic_types`` and ``xrefs`` are tuples."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    semantic_types: tuple[SemanticType, ...] = ()
    xrefs: tuple[str, ...] = ()
    definition: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or self.id.strip() != self.id:
            raise ValueError(f"a concept id must be a non-empty string without outer spaces, got {self.id!r}")
        if any(c in self.id for c in "\t\n\r"):
            raise ValueError(f"a concept id must not contain tabs or newlines, got {self.id!r}")
        # Canonical order, so that every store and file format round-trips exactly.
        object.__setattr__(
            self, "synonyms", tuple(sorted({s for s in self.synonyms if s and s != self.name}))
        )
        object.__setattr__(
            self, "semantic_types", tuple(sorted(set(self.semantic_types), key=lambda t: t.tui))
        )
        object.__setattr__(self, "xrefs", tuple(sorted(set(self.xrefs))))

    @property
    def iri(self) -> str:
        return concept_iri(self.id)

    @property
    def tuis(self) -> tuple[str, ...]:
        return tuple(t.tui for t in self.semantic_types)

    def codes(self, source: str) -> tuple[str, ...]:
        """Codes of this concept in ``source`` (e.g. ``"MSH"``, ``"UMLS"``, ``"ICD10CM"``)."""
        src = normalise_source(source)
        out = []
        for x in self.xrefs:
            sab, _, code = x.partition(":")
            if sab == src:
                out.append(code)
        return tuple(out)

    def is_disease(self) -> bool:
        return any(t.tui in DISEASE_TUIS for t in self.semantic_types)


@dataclass(frozen=True, slots=True)
class Relation:
    """A typed triple ``head -relation-> tail`` with provenance and string attributes."""

    head: str
    relation: str
    tail: str
    source: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict, compare=True, hash=False)

    def __post_init__(self) -> None:
        check_relation_name(self.relation)
        object.__setattr__(
            self, "attributes", {str(k): str(v) for k, v in sorted(dict(self.attributes).items())}
        )
        if not self.head or not self.tail:
            raise ValueError(f"a relation needs a head and a tail, got {self.head!r} -> {self.tail!r}")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.head, self.relation, self.tail)


def check_relation_name(name: str) -> str:
    """Return ``name`` if it is a valid relation type (``[A-Za-z][A-Za-z0-9_]*``), else raise."""
    if not isinstance(name, str) or not _REL_RE.match(name):
        raise ValueError(
            f"invalid relation type {name!r}: use a snake_case identifier such as 'has_symptom' "
            "(normalise free labels with graphbrain.kg.model.relation_name)"
        )
    return name


def relation_name(label: str) -> str:
    """Normalise a relation label to a snake_case type: ``'disease has location'`` -> ..."""
    s = label.strip().lower()
    s = _ALIASES.get(s, s)
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    if not s:
        raise ValueError(f"cannot turn the relation label {label!r} into a relation type")
    if s[0].isdigit():
        s = "r_" + s
    return s


_ALIASES = {
    "subclassof": "is_a",
    "isa": "is_a",
    "disease has location": "located_in",
    "disease has feature": "has_feature",
    "disease has basis in": "has_basis_in",
    "existence starts during": "starts_during",
}

_SOURCE_ALIASES = {
    "MESH": "MSH",
    "MIM": "OMIM",
    "UMLS_CUI": "UMLS",
    "CUI": "UMLS",
    "SNOMEDCT": "SNOMEDCT_US",
    "SCTID": "SNOMEDCT_US",
    "NCIT": "NCI",
    "ORPHA": "ORDO",
    "ORPHANET": "ORDO",
    "HPO": "HP",
}


def normalise_source(sab: str) -> str:
    """Canonical UMLS-style source abbreviation: ``MESH`` -> ``MSH``, ``SNOMEDCT_US_2025_09_01``
    -> ``SNOMEDCT_US``, ``UMLS_CUI`` -> ``UMLS``."""
    s = sab.strip().upper()
    if s.startswith("SNOMEDCT_US_"):
        return "SNOMEDCT_US"
    return _SOURCE_ALIASES.get(s, s)


def normalise_xref(xref: str) -> str:
    """``'UMLS_CUI:C0014544'`` -> ``'UMLS:C0014544'``; raises when there is no ``SAB:`` prefix."""
    sab, sep, code = xref.strip().partition(":")
    if not sep or not sab or not code:
        raise ValueError(f"a cross-reference must look like 'SAB:CODE', got {xref!r}")
    return f"{normalise_source(sab)}:{code.strip()}"


def concept_iri(concept_id: str) -> str:
    return CONCEPT_NS + quote(concept_id, safe="")


def concept_id_from_iri(iri: str) -> str:
    if not iri.startswith(CONCEPT_NS):
        raise ValueError(f"{iri!r} is not a graphbrain concept IRI (expected prefix {CONCEPT_NS})")
    return unquote(iri[len(CONCEPT_NS) :])


def relation_iri(relation: str) -> str:
    return RELATION_NS + check_relation_name(relation)


def relation_from_iri(iri: str) -> str:
    if not iri.startswith(RELATION_NS):
        raise ValueError(f"{iri!r} is not a graphbrain relation IRI (expected prefix {RELATION_NS})")
    return check_relation_name(iri[len(RELATION_NS) :])


def semtype_iri(tui: str) -> str:
    return STY_NS + quote(tui, safe="")


def merge_concepts(a: Concept, b: Concept) -> Concept:
    """Union of two records of the same concept (``a`` keeps its name and definition)."""
    if a.id != b.id:
        raise ValueError(f"cannot merge different concepts {a.id!r} and {b.id!r}")
    syn = _unique([*a.synonyms, *([b.name] if b.name != a.name else []), *b.synonyms])
    syn = tuple(s for s in syn if s != a.name)
    return Concept(
        id=a.id,
        name=a.name,
        synonyms=syn,
        semantic_types=tuple(_unique([*a.semantic_types, *b.semantic_types])),
        xrefs=tuple(_unique([*a.xrefs, *b.xrefs])),
        definition=a.definition or b.definition,
    )


def _unique(items: Iterable) -> list:  # type: ignore[type-arg]
    seen: set = set()  # type: ignore[type-arg]
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out
