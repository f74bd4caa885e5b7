"""Fixtures for the knowledge-graph tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DO_DIR = SHARED_DATA / "disease_ontology"
RRF_DIR = SHARED_DATA / "umls_rrf_fixture"


@pytest.fixture(scope="session")
def do_dir() -> Path:
    if not (DO_DIR / "HumanDO.tsv").is_file():
        pytest.skip("../shared/data/disease_ontology is not available")
    return DO_DIR


@pytest.fixture(scope="session")
def rrf_dir() -> Path:
    if not (RRF_DIR / "MRCONSO.RRF").is_file():
        pytest.skip("../shared/data/umls_rrf_fixture is not available")
    return RRF_DIR


@pytest.fixture(scope="session")
def default_kg():
    from graphbrain.kg import KnowledgeGraph

    return KnowledgeGraph.default()


@pytest.fixture()
def small_records():
    from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation

    concepts = [
        Concept("D:1", "epilepsy", ("seizure disorder", "Epilepsia"), (DISEASE,), ("UMLS:C0014544", "MSH:D004827")),
        Concept("D:0", "brain disease", (), (DISEASE,), ("ICD10CM:G93.9",)),
        Concept("D:2", "focal epilepsy", ("partial epilepsy",), (DISEASE,)),
        Concept("D:3", "migraine", (), (DISEASE,), ("MSH:D008881",), "A headache disorder."),
        Concept("S:1", "seizure", ("fits", "Seizures"), (SIGN_OR_SYMPTOM,)),
        Concept("S:2", "focal seizure", (), (SIGN_OR_SYMPTOM,)),
        Concept("S:3", "headache", ("cephalalgia",), (SIGN_OR_SYMPTOM,)),
        Concept("A:1", "brain", (), ()),
    ]
    relations = [
        Relation("D:1", "is_a", "D:0", "DO"),
        Relation("D:2", "is_a", "D:1", "DO"),
        Relation("D:3", "is_a", "D:0", "DO"),
        Relation("D:1", "has_symptom", "S:1", "DO", {"evidence": "curated", "tab": "a\tb"}),
        Relation("D:2", "has_symptom", "S:2", "DO"),
        Relation("D:3", "has_symptom", "S:3", "DO"),
        Relation("D:3", "has_symptom", "S:3", "other"),
        Relation("D:0", "located_in", "A:1", ""),
        Relation("S:2", "is_a", "S:1", "SYMP"),
    ]
    return concepts, relations
