"""graphbrain.kg — a UMLS-style medical knowledge graph (stands alone; no torch needed).

Build or load a :class:`KnowledgeGraph` (the shipped Disease Ontology KG with
:meth:`KnowledgeGraph.default`, UMLS RRF with :func:`read_rrf`, Disease Ontology reports,
HPO, TSV or RDF files), then query it: :meth:`~KnowledgeGraph.lookup`,
:meth:`~KnowledgeGraph.neighbors`, :meth:`~KnowledgeGraph.ancestors`,
:meth:`~KnowledgeGraph.shortest_path`, :meth:`~KnowledgeGraph.k_shortest_paths`,
:meth:`~KnowledgeGraph.sparql` (bound parameters) and :meth:`~KnowledgeGraph.diagnose`.
Embeddings (:mod:`graphbrain.kg.embeddings`) and the relational GNN (:mod:`graphbrain.kg.gnn`)
import torch lazily.
"""

from graphbrain.kg.backends.base import Backend, UnknownConceptError
from graphbrain.kg.backends.memory import MemoryBackend
from graphbrain.kg.backends.rdf import Iri, OxigraphBackend, RdflibBackend
from graphbrain.kg.diagnose import Candidate, DiagnosisResult, Finding, diagnose
from graphbrain.kg.evaluate import evaluate_diagnosis
from graphbrain.kg.graph import BACKENDS, KnowledgeGraph
from graphbrain.kg.io import (
    read_rdf,
    read_triples_tsv,
    read_tsv,
    write_rdf,
    write_triples_tsv,
    write_tsv,
)
from graphbrain.kg.lookup import Match
from graphbrain.kg.model import (
    BASE_IRI,
    IS_A,
    Concept,
    Relation,
    SemanticType,
    concept_iri,
    relation_iri,
    relation_name,
)
from graphbrain.kg.paths import Path
from graphbrain.kg.readers.disease_ontology import build_default_kg, read_disease_ontology
from graphbrain.kg.readers.hpo import read_hpo
from graphbrain.kg.readers.rrf import RRFResult, iter_rrf, read_rrf

__all__ = [
    "BACKENDS",
    "BASE_IRI",
    "IS_A",
    "Backend",
    "Candidate",
    "Concept",
    "DiagnosisResult",
    "Finding",
    "Iri",
    "KnowledgeGraph",
    "Match",
    "MemoryBackend",
    "OxigraphBackend",
    "Path",
    "RRFResult",
    "RdflibBackend",
    "Relation",
    "SemanticType",
    "UnknownConceptError",
    "build_default_kg",
    "concept_iri",
    "diagnose",
    "evaluate_diagnosis",
    "iter_rrf",
    "read_disease_ontology",
    "read_hpo",
    "read_rdf",
    "read_rrf",
    "read_triples_tsv",
    "read_tsv",
    "relation_iri",
    "relation_name",
    "write_rdf",
    "write_triples_tsv",
    "write_tsv",
]
