"""HPO reader through pyhpo (skipped when the optional extra is not installed)."""

from __future__ import annotations

import pytest

from graphbrain.kg import KnowledgeGraph, read_hpo

OBO = """format-version: 1.2
data-version: hp/releases/test
ontology: hp.obo

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All

[Term]
id: HP:0001250
name: Seizure
def: "An intermittent abnormality of nervous system physiology." [PMID:1]
synonym: "Seizures" EXACT []
xref: UMLS:C0036572
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0002353
name: EEG abnormality
xref: UMLS:C0151611
is_a: HP:0000118 ! Phenotypic abnormality
"""
HEAD = "database_id\\tdisease_name\\tqualifier\\thpo_id\\treference\\tevidence\\tonset\\tfrequency\\tsex\\tmodifier\\taspect\\tbiocuration"


def _row(did: str, name: str, hp: str) -> str:
    return f"{did}\t{name}\t\t{hp}\tPMID:1\tPCS\t\t\t\t\tP\tHPO:x[2021-06-21]"


def test_hpo_terms_and_annotations(tmp_path):
    pytest.importorskip("pyhpo")
    (tmp_path / "hp.obo").write_text(OBO)
    rows = [
        _row("OMIM:100001", "Test epilepsy syndrome", "HP:0001250"),
        _row("OMIM:100001", "Test epilepsy syndrome", "HP:0002353"),
        _row("ORPHA:200", "Test orpha disease", "HP:0001250"),
        _row("DECIPHER:3", "Test decipher disease", "HP:0002353"),
    ]
    (tmp_path / "phenotype.hpoa").write_text("#description: test\n" + HEAD.replace("\\t", "\t") + "\n" + "\n".join(rows) + "\n")
    (tmp_path / "genes_to_phenotype.txt").write_text(
        "ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n10\tNAT2\tHP:0001250\tSeizure\t-\tOMIM:100001\n"
    )
    concepts, relations = read_hpo(tmp_path)
    kg = KnowledgeGraph.from_records(concepts, relations)
    sz = kg.concept("HP:0001250")
    assert sz.name == "Seizure" and sz.synonyms == ("Seizures",) and sz.xrefs == ("UMLS:C0036572",)
    assert sz.definition == "An intermittent abnormality of nervous system physiology."
    assert kg.ancestors("HP:0001250") == ["HP:0000001", "HP:0000118"]
    assert {r.tail for r in kg.neighbors("OMIM:100001", "has_phenotype")} == {"HP:0001250", "HP:0002353"}
    res = kg.diagnose(["Seizure", "EEG abnormality"], top_k=3)
    assert res.candidates[0].concept_id == "OMIM:100001"


def test_missing_pyhpo_is_reported(monkeypatch):
    import builtins

    from graphbrain.errors import MissingDependencyError

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "pyhpo":
            raise ImportError("no pyhpo")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MissingDependencyError, match=r"graphbrain-connectome\[hpo\]"):
        read_hpo()
