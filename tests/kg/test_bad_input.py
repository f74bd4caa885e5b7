"""Bad input is named: file, line and column; skip counts by reason; empty graphs refused."""

from __future__ import annotations

import json
import warnings

import pytest

from graphbrain.kg import KnowledgeGraph, read_rrf
from graphbrain.kg.io import KGFormatWarning, read_triples_tsv
from graphbrain.kg.readers.common import EmptyGraphError, ReadError

CONSO = [
    "C0000001|ENG|P|L1|PF|S1|Y|A1||M1|D1|MSH|MH|D000001|Alpha disease|0|N|256|",
    "C0000002|ENG|P|L5|PF|S5|Y|A5||||SNOMEDCT_US|PT|100002|Beta finding|0|N|256|",
    "C0000003|ENG|P|L6|PF|S6|Y|A6||||ICD10CM|PT|G40|Gamma disorder|0|N|256|",
]
REL = [
    "C0000001|A1|SCUI|RO|C0000002|A5|SCUI|has_manifestation|R2||SNOMEDCT_US||0|Y|N||",
    "C0000001|A1|SCUI|PAR|C0000003|A6|SCUI|inverse_isa|R1||SNOMEDCT_US||0|Y|N||",
]


def _meta(tmp_path, conso_bytes: bytes, rel_bytes: bytes | None = None):
    d = tmp_path / "META"
    d.mkdir(exist_ok=True)
    (d / "MRCONSO.RRF").write_bytes(conso_bytes)
    (d / "MRREL.RRF").write_bytes(rel_bytes if rel_bytes is not None else ("\n".join(REL) + "\n").encode())
    return d


def _lines(rows) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


def test_rrf_non_utf8_is_named_with_line_and_column_or_skipped(tmp_path):
    bad = CONSO[1].replace("Beta finding", "Beta \udcff finding").encode("utf-8", "surrogateescape")
    d = _meta(tmp_path, _lines([CONSO[0]]) + bad + b"\n" + _lines([CONSO[2]]))
    col = CONSO[1].index("finding") + 1  # 1-based column of the bad byte after "Beta "
    with pytest.raises(ReadError, match=rf"MRCONSO\.RRF:2:{col}: not UTF-8: byte 0xff") as info:
        read_rrf(d)
    assert (info.value.line, info.value.column, info.value.reason) == (2, col, "encoding")
    res = read_rrf(d, on_error="skip")
    assert res.skipped == {"MRCONSO.RRF:encoding": 1}
    assert [c.id for c in res.concepts] == ["C0000001", "C0000003"]
    assert res.to_kg().metadata["skipped"] == {"MRCONSO.RRF:encoding": 1}


def test_rrf_rows_without_the_trailing_pipe(tmp_path):
    piped = read_rrf(_meta(tmp_path, _lines(CONSO)))
    d2 = tmp_path / "nopipe"
    d2.mkdir()
    (d2 / "MRCONSO.RRF").write_bytes(_lines([r[:-1] for r in CONSO]))
    (d2 / "MRREL.RRF").write_bytes(_lines([r[:-1] for r in REL]))  # last field (CVF) empty
    res = read_rrf(d2)
    assert res.concepts == piped.concepts and res.relations == piped.relations
    assert len(res.relations) == 2
    assert res.stats["MRCONSO.RRF:no_trailing_pipe"] == 3 and res.stats["MRREL.RRF:no_trailing_pipe"] == 2


def test_rrf_field_count_and_cui_errors_are_located(tmp_path):
    short = "C0000004|ENG|P|only a few fields|"
    d = _meta(tmp_path, _lines([CONSO[0], short, CONSO[2]]))
    with pytest.raises(ReadError, match=rf"MRCONSO\.RRF:2:{len(short) + 1}: expected 18 '\|'-separated fields, found 4"):
        read_rrf(d)
    long = CONSO[2] + "extra|"
    _meta(tmp_path, _lines([CONSO[0], long]))
    with pytest.raises(ReadError, match=rf"MRCONSO\.RRF:2:{len(CONSO[2]) + 1}: .*found 19"):
        read_rrf(d)
    bad_rel = REL[0].replace("|C0000002|", "|X123|")
    _meta(tmp_path, _lines(CONSO), _lines([bad_rel]))
    with pytest.raises(ReadError, match=rf"MRREL\.RRF:1:{bad_rel.index('X123') + 1}: invalid CUI2 'X123'"):
        read_rrf(d)
    res = read_rrf(d, on_error="skip")
    assert res.skipped == {"MRREL.RRF:cui": 1}


def test_empty_rrf_is_an_error_unless_allowed(tmp_path):
    d = _meta(tmp_path, b"")
    with pytest.raises(EmptyGraphError, match="no concept was read.*allow_empty=True"):
        read_rrf(d)
    assert read_rrf(d, allow_empty=True).concepts == []
    # every row malformed and skipped: still an error, with the counts
    _meta(tmp_path, _lines([r.replace("|ENG|P|", "|") for r in CONSO]))  # 16 fields
    with pytest.raises(EmptyGraphError, match="malformed 3"):
        read_rrf(d, on_error="skip")


def test_cli_build_prints_what_it_skipped(capsys, tmp_path):
    from graphbrain.kg.cli import main

    bad = CONSO[1].encode() + b"\xfe\n"
    d = _meta(tmp_path, _lines([CONSO[0]]) + bad + _lines(["C0000009|ENG|P|short|", CONSO[2]]))
    out = str(tmp_path / "u.json.gz")
    rc = main(["build", "--source", "rrf", "--input", str(d), "--out", out])
    err = capsys.readouterr().err
    assert rc == 1 and "MRCONSO.RRF:2:" in err and "not UTF-8" in err and "Traceback" not in err
    rc = main(["build", "--source", "rrf", "--input", str(d), "--out", out, "--skip-malformed", "--json"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "2 rows skipped: MRCONSO.RRF encoding 1, MRCONSO.RRF fields 1" in cap.err
    data = json.loads(cap.out)
    assert data["skipped"] == {"MRCONSO.RRF:encoding": 1, "MRCONSO.RRF:fields": 1}
    assert data["concepts"] == 2
    # nothing usable: non-zero exit with the reason
    _meta(tmp_path, b"\xff\xfe\n")
    rc = main(["build", "--source", "rrf", "--input", str(d), "--out", out, "--skip-malformed"])
    err = capsys.readouterr().err
    assert rc == 1 and "no concept was read" in err and "--allow-empty" in err


def test_tsv_quotes_encoding_and_located_errors(tmp_path):
    p = tmp_path / "t.tsv"
    # a cell starting with a quote is an ordinary cell, not the start of a multi-line field
    p.write_text('head\trelation\ttail\n"A\tis_a\tB\nB\tis_a\tC\n', encoding="utf-8")
    assert [r.key for r in read_triples_tsv(p)] == [('"A', "is_a", "B"), ("B", "is_a", "C")]
    p.write_bytes(b"head\trelation\ttail\nA\tis_a\tB\nB\tis_a\tC\xe9\n")
    with pytest.raises(ReadError, match=r"t\.tsv:3:9: not UTF-8"):
        read_triples_tsv(p)
    p.write_text("head\trelation\ttail\nA\tis_a\tB\nA\tbad relation\tB\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"t\.tsv:3:3: malformed triple: relation"):
        read_triples_tsv(p)
    p.write_text('head\trelation\ttail\tsource\tattributes\nA\tis_a\tB\tS\t{"x": \n', encoding="utf-8")
    with pytest.raises(ReadError, match=r"t\.tsv:2:12: malformed triple: attributes"):
        read_triples_tsv(p)


def test_tsv_folder_skip_malformed_counts(tmp_path, capsys):
    from graphbrain.kg.cli import main

    folder = tmp_path / "kg_tsv"
    folder.mkdir()
    (folder / "triples.tsv").write_bytes(
        b"head\trelation\ttail\nA\tis_a\tB\nB\tis a\tC\nC\tis_a\tD\xff\nD\tis_a\tE\n"
    )
    with pytest.raises(ReadError):
        KnowledgeGraph.load(folder)
    kg = KnowledgeGraph.load(folder, on_error="skip")
    assert [r.key for r in kg.relations()] == [("A", "is_a", "B"), ("D", "is_a", "E")]
    assert kg.metadata["skipped"] == {"triples.tsv:encoding": 1, "triples.tsv:malformed": 1}
    rc = main(["build", "--source", "file", "--input", str(folder), "--out", str(tmp_path / "o.json.gz"),
               "--skip-malformed"])
    assert rc == 0 and "2 rows skipped: triples.tsv encoding 1, triples.tsv malformed 1" in capsys.readouterr().err


def test_rdf_errors_foreign_layout_and_empty_files(tmp_path):
    ttl = tmp_path / "foreign.ttl"
    ttl.write_text(
        "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n<http://ex.org/a> foaf:name \"Alice\" ; "
        "foaf:knows <http://ex.org/b> .\n",
        encoding="utf-8",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(EmptyGraphError, match="no concept was read"):
            KnowledgeGraph.load(ttl)
    msgs = [str(w.message) for w in caught if issubclass(w.category, KGFormatWarning)]
    assert len(msgs) == 1 and "2 of 2 triples are not in graphbrain's layout" in msgs[0]
    assert "<http://xmlns.com/foaf/0.1/name> (1)" in msgs[0]
    empty = tmp_path / "empty.ttl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(EmptyGraphError):
        KnowledgeGraph.load(empty)
    assert len(KnowledgeGraph.load(empty, allow_empty=True)) == 0
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix x: <http://x/> .\nx:a x:b x:c .\nx:a x:b ; .\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"bad\.ttl:3:9: invalid turtle: ; is not a valid RDF object"):
        KnowledgeGraph.load(bad)
    nt = tmp_path / "bad.nt"
    nt.write_bytes(b'<http://a> <http://b> "x" .\n<http://a> <http://b> "y\xff" .\n')
    with pytest.raises(ReadError, match=r"bad\.nt:2:25: invalid ntriples: Invalid UTF-8") as info:
        KnowledgeGraph.load(nt)
    assert info.value.reason == "encoding"


def test_json_and_disease_ontology_errors(tmp_path, small_records):
    empty = KnowledgeGraph.from_records([], [])
    path = empty.save(tmp_path / "e.json.gz")
    with pytest.raises(EmptyGraphError):
        KnowledgeGraph.load(path)
    assert len(KnowledgeGraph.load(path, allow_empty=True)) == 0
    from graphbrain.kg import read_disease_ontology

    do = tmp_path / "do"
    do.mkdir()
    (do / "HumanDO.tsv").write_bytes(b"id\tlabel\tsubClassOf\nDOID:4\tdisease\t\nDOID:1\tcaf\xe9\tdisease\n")
    with pytest.raises(ReadError, match=r"HumanDO\.tsv:3:11: not UTF-8"):
        read_disease_ontology(do)
    (do / "HumanDO.tsv").write_text("id\tlabel\tsubClassOf\nDOID:4\tdisease\t\nbroken\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"HumanDO\.tsv:3:1: expected a DOID and a label"):
        read_disease_ontology(do)


def test_symptom_ontology_parse_error_is_located(tmp_path):
    from graphbrain.kg.readers.disease_ontology import read_symptom_ontology

    owl = tmp_path / "symp_import.owl"
    owl.write_text("<RDF>\n  <Class></RDF>\n", encoding="utf-8")  # mismatched tag on line 2
    with pytest.raises(ReadError, match=r"symp_import\.owl:2:") as info:
        read_symptom_ontology(owl)
    assert info.value.line == 2 and info.value.column is not None
