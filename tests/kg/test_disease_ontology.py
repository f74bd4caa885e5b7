"""The Disease Ontology reader and the shipped default KG, on the real DO reports."""

from __future__ import annotations

from graphbrain.kg import KnowledgeGraph, read_disease_ontology


def test_default_kg_is_shipped_small_and_fast(default_kg):
    from graphbrain.kg.io import default_kg_path

    assert default_kg_path().stat().st_size < 3_000_000
    kg = KnowledgeGraph.default()  # load time is measured in benchmarks/bench_kg.py, not here
    assert kg.metadata["licence"] == "CC0 1.0"
    assert not any(c.id.startswith("C") and c.id[1:].isdigit() for c in kg.iter_concepts())  # no UMLS ids


def test_default_kg_equals_a_rebuild_from_the_reports(do_dir, default_kg):
    concepts, relations, meta = read_disease_ontology(do_dir)
    rebuilt = KnowledgeGraph.from_records(concepts, relations, metadata=meta)
    assert rebuilt.concepts() == default_kg.concepts()
    assert rebuilt.relations() == default_kg.relations()


def test_known_do_facts(default_kg):
    kg = default_kg
    assert kg.concept("DOID:1826").name == "epilepsy"
    # epilepsy is-a brain disease is-a CNS disease is-a nervous system disease ... disease
    assert kg.ancestors("DOID:1826") == ["DOID:331", "DOID:4", "DOID:7", "DOID:863", "DOID:936"]
    assert "DOID:2234" in kg.descendants("DOID:1826")  # focal epilepsy
    assert [m.concept_id for m in kg.lookup("C0014544")] == ["DOID:1826"]  # UMLS CUI xref
    assert [m.concept_id for m in kg.lookup("MESH:D004827")] == ["DOID:1826"]
    assert kg.lookup("Seizures", mode="fuzzy")[0].concept_id == "SYMP:0000124"
    # symptom and anatomy axioms
    powassan = {(r.relation, kg.name(r.tail)) for r in kg.neighbors("DOID:0050179")}
    assert ("has_symptom", "seizure") in powassan and ("has_symptom", "stiff neck") in powassan
    lacrosse = {(r.relation, kg.name(r.tail)) for r in kg.neighbors("DOID:0050118")}
    assert ("located_in", "brain") in lacrosse
    assert ("transmitted_by", "Aedes albopictus") in lacrosse
    assert kg.stats()["relation_types"]["has_symptom"] >= 2222


def test_real_diagnosis_and_paths(default_kg):
    kg = default_kg
    res = kg.diagnose(["seizure", "stiff neck", "fever"], top_k=5)
    assert res.candidates[0].name == "Powassan encephalitis"
    assert all(c.evidence for c in res.candidates)
    assert "Powassan encephalitis --has_symptom--> seizure" in res.candidates[0].evidence_text
    p = kg.shortest_path("DOID:1826", "SYMP:0000124")
    assert p is not None and len(p) <= 3
