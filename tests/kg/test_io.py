"""Exact round trips through every file format."""

from __future__ import annotations

import pytest

from graphbrain.errors import DataError
from graphbrain.kg import KnowledgeGraph, read_triples_tsv


def _same(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    assert a.concepts() == b.concepts()
    assert a.relations() == b.relations()


@pytest.mark.parametrize("name", ["kg.json.gz", "kg.json", "kg.ttl", "kg.nt", "kg_tsv"])
def test_round_trip(tmp_path, small_records, name):
    kg = KnowledgeGraph.from_records(*small_records, metadata={"v": 1})
    path = kg.save(tmp_path / name)
    back = KnowledgeGraph.load(path)
    _same(kg, back)
    # relation attributes with tabs and quotes survive
    rel = [r for r in back.relations() if r.attributes][0]
    assert rel.attributes == {"evidence": "curated", "tab": "a\tb"}
    if name.startswith("kg.json"):
        assert back.metadata == {"v": 1}


def test_rdf_files_are_standard(tmp_path, small_records):
    import rdflib

    kg = KnowledgeGraph.from_records(*small_records)
    for name, fmt in [("kg.ttl", "turtle"), ("kg.nt", "nt")]:
        g = rdflib.Graph().parse(kg.save(tmp_path / name), format=fmt)
        # 9 relation triples + reified statements for the 8 with a source
        q = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <http://www.w3.org/1999/02/22-rdf-syntax-ns#Statement> }"
        assert int(next(iter(g.query(q)))[0]) == 8
    tsv = (tmp_path / "kg_tsv" / "triples.tsv")
    kg.save(tmp_path / "kg_tsv")
    assert tsv.read_text().splitlines()[0] == "head\trelation\ttail\tsource\tattributes"


def test_plain_triples_tsv_imports(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "triples.tsv").write_text("head\trelation\ttail\nA\tis_a\tB\nB\tis_a\tC\n")
    kg = KnowledgeGraph.load(folder)
    assert kg.ancestors("A") == ["B", "C"]
    assert kg.concept("A").name == "A"


def test_malformed_tsv_names_file_and_line(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("head\trelation\ttail\nA\tis_a\tB\nA\tbad relation\tB\n")
    with pytest.raises(DataError, match=r"t\.tsv:3"):
        read_triples_tsv(p)
    p.write_text("h\tr\tt\n")
    with pytest.raises(DataError, match=r"t\.tsv:1"):
        read_triples_tsv(p)


def test_unknown_concept_in_relation_is_an_error(small_records):
    from graphbrain.kg import Relation

    concepts, relations = small_records
    with pytest.raises(DataError, match="unknown concept 'X:9'"):
        KnowledgeGraph.from_records(concepts, [*relations, Relation("D:1", "is_a", "X:9")])
