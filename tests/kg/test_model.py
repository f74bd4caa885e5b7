from __future__ import annotations

import pytest

from graphbrain.kg.model import (
    DISEASE,
    Concept,
    Relation,
    concept_id_from_iri,
    concept_iri,
    normalise_xref,
    relation_iri,
    relation_name,
)


def test_concept_is_canonical_and_immutable():
    c = Concept("C1", "epilepsy", ("b", "a", "epilepsy", "a"), (DISEASE, DISEASE), ("MSH:2", "MSH:1"))
    assert c.synonyms == ("a", "b")  # sorted, unique, name removed
    assert c.xrefs == ("MSH:1", "MSH:2")
    assert c.semantic_types == (DISEASE,)
    assert c.codes("MESH") == ("1", "2")
    assert c.is_disease()
    with pytest.raises(AttributeError):
        c.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["", " C1", "a\tb"])
def test_bad_concept_ids_raise(bad):
    with pytest.raises(ValueError):
        Concept(bad, "x")


def test_relation_names_and_validation():
    assert relation_name("disease has location") == "located_in"
    assert relation_name("'has material basis in'".strip("'")) == "has_material_basis_in"
    assert relation_name("inverse_isa") == "inverse_isa"
    with pytest.raises(ValueError, match="invalid relation type"):
        Relation("a", "has symptom", "b")
    with pytest.raises(ValueError):
        Relation("a", "x> } DROP ALL", "b")


def test_xrefs_are_normalised():
    assert normalise_xref("UMLS_CUI:C0014544") == "UMLS:C0014544"
    assert normalise_xref("SNOMEDCT_US_2025_09_01:84757009") == "SNOMEDCT_US:84757009"
    assert normalise_xref("MESH:D004827") == "MSH:D004827"
    with pytest.raises(ValueError):
        normalise_xref("nocolon")


def test_iris_round_trip_and_are_stable():
    for cid in ["DOID:1826", "C0014544", "a b/c#d?e"]:
        assert concept_id_from_iri(concept_iri(cid)) == cid
    assert concept_iri("DOID:1826") == "https://w3id.org/graphbrain/kg/concept/DOID%3A1826"
    assert relation_iri("is_a") == "https://w3id.org/graphbrain/kg/relation/is_a"
