"""The same queries give the same answers on the memory, Oxigraph and rdflib backends."""

from __future__ import annotations

import pytest

from graphbrain.kg import Iri, KnowledgeGraph, concept_iri
from graphbrain.kg.backends.base import UnknownConceptError

BACKENDS = ["memory", "oxigraph", "rdflib"]
INJECTIONS = ['x" } ; DROP ALL ; #', "?s ?p ?o", "epilepsy\" || true || \"", "} UNION { ?c ?p ?q }"]


@pytest.fixture()
def kgs(small_records):
    return {b: KnowledgeGraph.from_records(*small_records, backend=b) for b in BACKENDS}


def _answers(kg: KnowledgeGraph) -> dict:
    out: dict = {"concepts": kg.concepts(), "relations": kg.relations(), "types": kg.relation_types()}
    for text in ["seizure", "SEIZURES", "  Seizure ", "C0014544", "MSH:D008881", "mesh:d008881", "epilepsi",
                 "cephalalgia", "brain", "D:3", "nothing like it", *INJECTIONS]:
        for mode in ["auto", "exact", "ci", "code", "fuzzy"]:
            out[("lookup", text, mode)] = kg.lookup(text, mode=mode)
    for cid in ["D:0", "D:1", "D:2", "S:1", "S:3", "A:1"]:
        out[("concept", cid)] = kg.concept(cid)
        for d in ["out", "in", "both"]:
            out[("nb", cid, d)] = kg.neighbors(cid, direction=d)
            out[("nb", cid, d, "is_a")] = kg.neighbors(cid, "is_a", d)
            out[("nb", cid, d, "multi")] = kg.neighbors(cid, ["is_a", "has_symptom"], d)
        out[("anc", cid)] = kg.ancestors(cid)
        out[("desc", cid)] = kg.descendants(cid)
    for a, b in [("D:2", "A:1"), ("S:2", "S:3"), ("D:1", "D:3"), ("A:1", "A:1")]:
        out[("sp", a, b)] = kg.shortest_path(a, b)
        out[("ksp", a, b)] = kg.k_shortest_paths(a, b, 4)
        out[("sp-isa", a, b)] = kg.shortest_path(a, b, relation="is_a", direction="out")
    return out


def test_backends_agree(kgs):
    ref = _answers(kgs["memory"])
    assert ref[("anc", "D:2")] == ["D:0", "D:1"]
    assert ref[("desc", "D:0")] == ["D:1", "D:2", "D:3"]
    assert [m.concept_id for m in ref[("lookup", "SEIZURES", "auto")]] == ["S:1"]
    assert ref[("lookup", "SEIZURES", "exact")] == []
    assert [m.concept_id for m in ref[("lookup", "mesh:d008881", "auto")]] == ["D:3"]
    assert [m.concept_id for m in ref[("lookup", "epilepsi", "auto")]][0] == "D:1"
    # two simple paths; parallel edges with the same (head, relation, tail) count once
    assert [p.nodes for p in ref[("ksp", "S:2", "S:3")]] == [
        ("S:2", "D:2", "D:1", "D:0", "D:3", "S:3"),
        ("S:2", "S:1", "D:1", "D:0", "D:3", "S:3"),
    ]
    assert ref[("sp", "D:2", "A:1")].describe() == "D:2 --is_a--> D:1 --is_a--> D:0 --located_in--> A:1"
    assert ref[("sp-isa", "S:2", "S:3")] is None
    for b in ["oxigraph", "rdflib"]:
        got = _answers(kgs[b])
        diff = [k for k in ref if ref[k] != got[k]]
        assert not diff, f"{b} differs on {diff[:5]}"


def test_unknown_concepts_raise_helpfully(kgs):
    for kg in kgs.values():
        with pytest.raises(UnknownConceptError, match="lookup"):
            kg.neighbors("nope")
        with pytest.raises(ValueError):
            kg.neighbors("D:1", direction="sideways")
        with pytest.raises(ValueError, match="invalid relation"):
            kg.ancestors("D:1", relation="is_a>+ ?x } #")


@pytest.mark.parametrize("backend", BACKENDS)
def test_injection_strings_are_inert(kgs, backend):
    kg = kgs[backend]
    before = (kg.concepts(), kg.relations())
    for s in INJECTIONS:
        assert kg.lookup(s, mode="exact") == []
        assert kg.lookup(s, mode="ci") == []
        assert kg.lookup(s, mode="code") == []
        rows = kg.sparql(
            "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT ?c ?l WHERE { ?c skos:prefLabel ?l }",
            {"l": s},
        )
        assert rows == []
        rows = kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", {"s": Iri(concept_iri(s))})
        assert rows == []
    assert (kg.concepts(), kg.relations()) == before
    # a bound value gives exactly the answer of the intended query
    rows = kg.sparql(
        "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT ?c ?l WHERE { ?c skos:prefLabel ?l }",
        {"l": "epilepsy"},
    )
    assert rows == [{"c": concept_iri("D:1"), "l": "epilepsy"}]


def test_sparql_update_is_refused(kgs):
    from graphbrain.kg.backends.guard import SparqlUpdateError

    for kg in kgs.values():
        with pytest.raises(SparqlUpdateError, match=r"refused \(DROP\)"):
            kg.sparql("DROP ALL")
        with pytest.raises(SparqlUpdateError, match=r"INSERT"):
            kg.sparql("INSERT DATA { <urn:a> <urn:b> <urn:c> }")
        assert len(kg.relations()) == 9


def test_sparql_same_answers_across_backends(kgs):
    q = (
        "PREFIX rel: <https://w3id.org/graphbrain/kg/relation/> "
        "SELECT ?d (COUNT(?s) AS ?n) WHERE { ?d rel:has_symptom ?s } GROUP BY ?d ORDER BY ?d"
    )
    answers = [kgs[b].sparql(q) for b in BACKENDS]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0]["n"] == 1 and isinstance(answers[0][0]["n"], int)


def test_networkx_view(kgs):
    g = kgs["memory"].to_networkx("is_a")
    assert g.number_of_edges() == 4
    assert set(g.successors("D:2")) == {"D:1"}


def test_closures_agree_on_cycles_and_other_relations():
    """Transitive closures walk the relation asked for only, stop on cycles and include
    nodes reached twice once; the same sets on every backend (Oxigraph walks its triple
    index, rdflib its graph, memory its adjacency: no query text built from the name)."""
    from graphbrain.kg.model import Concept, Relation

    concepts = [Concept(c, c.lower()) for c in ["A", "B", "C", "D", "E"]]
    relations = [
        Relation("A", "is_a", "B"), Relation("B", "is_a", "C"), Relation("C", "is_a", "A"),  # cycle
        Relation("A", "is_a", "D"), Relation("D", "is_a", "C"),  # C reached twice
        Relation("C", "part_of", "E"),  # another relation: not followed for is_a
    ]
    want = {("A", "is_a"): (["B", "C", "D"], ["B", "C", "D"]), ("D", "is_a"): (["A", "B", "C"], ["A", "B", "C"]),
            ("C", "part_of"): (["E"], []), ("E", "part_of"): ([], ["C"]), ("E", "is_a"): ([], [])}
    for backend in BACKENDS:
        kg = KnowledgeGraph.from_records(concepts, relations, backend=backend)
        for (cid, rel), (anc, desc) in want.items():
            assert kg.ancestors(cid, relation=rel) == anc, (backend, cid, rel)
            assert kg.descendants(cid, relation=rel) == desc, (backend, cid, rel)


def test_query_prefixes_match_the_namespace_constants():
    from graphbrain.kg.backends.rdf import PREFIXES, RDF_NS, RDFS_NS, SKOS_NS
    from graphbrain.kg.model import VOCAB_NS

    want = {"gb": VOCAB_NS, "skos": SKOS_NS, "rdf": RDF_NS, "rdfs": RDFS_NS}
    got = dict(line[len("PREFIX "):].rstrip(">").split(": <") for line in PREFIXES.strip().splitlines())
    assert got == want
