"""Exact round trips of hostile records (tabs, newlines, quotes, NUL, unicode) in every format."""

from __future__ import annotations

import pytest

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation, SemanticType

FORMATS = ["kg.json.gz", "kg.json", "kg.ttl", "kg.nt", "kg_tsv"]
HOSTILE = [
    'tab\there', "new\nline", "cr\rlf\r\n", 'say "hi"', "'single'", "nul\x00byte", "back\\slash",
    "\\t not a tab", "ünïcödé 癫痫 🧠", '"starts with a quote', "ends with a quote\"", "#not a comment",
    "<not-an-iri>", "a|pipe", "trailing backslash\\",
]


def hostile_records():
    ids = ['X:"quoted"', "Ü:1", "a/b#c?d", "NUL\x00id", "plain"]
    concepts = [
        Concept(ids[0], HOSTILE[0], tuple(HOSTILE[1:6]), (DISEASE,), ("MSH:D0\t1", 'UMLS:"C1"'), HOSTILE[6]),
        Concept(ids[1], HOSTILE[8], (HOSTILE[9], HOSTILE[10]), (SemanticType("T\t1", "ty\npe", 'tr"ee'),),
                (), HOSTILE[7]),
        Concept(ids[2], HOSTILE[11], (HOSTILE[12], HOSTILE[13]), (SIGN_OR_SYMPTOM,), ("SNOMEDCT_US:1|2",)),
        Concept(ids[3], HOSTILE[14], (), (), (), "def with\x00nul and\nnewline"),
        Concept(ids[4], "plain", ("Plain",), (DISEASE,)),
    ]
    relations = [
        # the same (head, relation, tail) without a source, with one, and with attributes
        Relation(ids[0], "has_symptom", ids[2], ""),
        Relation(ids[0], "has_symptom", ids[2], "DO"),
        Relation(ids[0], "has_symptom", ids[2], "DO", {"evidence": "curated"}),
        Relation(ids[1], "is_a", ids[0], 'src "q"\t1', {"k\tey": "v\nal", 'q"': "\x00", "ü": "🧠"}),
        Relation(ids[3], "located_in", ids[4], ""),
        Relation(ids[4], "is_a", ids[0], "\\"),
    ]
    meta = {"name": 'hostile "graph"\t1', "nested": {"list": [1, 2.5, None, True], "nul": "\x00"},
            "ü": "🧠\nx"}
    return concepts, relations, meta


@pytest.mark.parametrize("name", FORMATS)
def test_hostile_records_round_trip_exactly(tmp_path, name):
    concepts, relations, meta = hostile_records()
    kg = KnowledgeGraph.from_records(concepts, relations, metadata=meta)
    assert len(kg.relations()) == 6
    back = KnowledgeGraph.load(kg.save(tmp_path / name))
    assert back.concepts() == kg.concepts()
    assert back.relations() == kg.relations()
    assert back.metadata == meta
    # and again: writing what was read gives the same bytes
    again = back.save(tmp_path / "again" / name)  # same name: gzip headers hold it
    if (tmp_path / name).is_file():
        assert again.read_bytes() == (tmp_path / name).read_bytes()


@pytest.mark.parametrize("name", ["kg.ttl", "kg.nt", "kg_tsv", "kg.json"])
def test_relation_with_and_without_source_stay_distinct(tmp_path, name):
    a, b = Concept("A", "a"), Concept("B", "b")
    rels = [Relation("A", "r", "B", ""), Relation("A", "r", "B", "S1"), Relation("A", "r", "B", "S2")]
    kg = KnowledgeGraph.from_records([a, b], rels, metadata={"v": 1})
    back = KnowledgeGraph.load(kg.save(tmp_path / name))
    assert back.relations() == sorted(rels, key=lambda r: r.source)  # 3 in, 3 out
    assert back.metadata == {"v": 1}
    for backend in ("oxigraph", "rdflib"):
        other = back.with_backend(backend)
        assert other.relations() == back.relations()
        assert other.backend.num_relations() == 3
        assert other.neighbors("A") == back.neighbors("A")


@pytest.mark.parametrize("backend", ["oxigraph", "rdflib"])
def test_hostile_records_in_the_stores(backend):
    concepts, relations, meta = hostile_records()
    kg = KnowledgeGraph.from_records(concepts, relations, metadata=meta)
    other = kg.with_backend(backend)
    assert other.concepts() == kg.concepts()
    assert other.relations() == kg.relations()
    for c in concepts:
        assert other.concept(c.id) == kg.concept(c.id)
        assert other.lookup(c.name, mode="exact") == kg.lookup(c.name, mode="exact")
        assert other.neighbors(c.id, direction="both") == kg.neighbors(c.id, direction="both")


def test_rdflib_listings_read_back_from_the_store_agree():
    # the rdflib store lists its records from rdflib's triple indices when it cannot keep them
    concepts, relations, _ = hostile_records()
    rels = relations + [Relation("plain", "is_a", "Ü:1", "")]
    kg = KnowledgeGraph.from_records(concepts, rels)
    be = kg.with_backend("rdflib").backend
    ref = {(t, m): be.lookup(t, mode=m) for t in ("PLAIN", "MSH:D0\t1", "1|2") for m in ("ci", "code")}
    be._concepts = be._relations = be._keys_cache = None  # force the read-back path
    assert {(t, m): be.lookup(t, mode=m) for t in ("PLAIN", "MSH:D0\t1", "1|2") for m in ("ci", "code")} == ref
    assert [m.concept_id for m in ref[("PLAIN", "ci")]] == ["plain"]
    assert list(be.iter_relations()) == kg.relations()
    assert list(be.iter_concepts()) == kg.concepts()
    assert be.num_relations() == 7 and be.num_concepts() == 5
    assert be.relation_types() == kg.relation_types()
