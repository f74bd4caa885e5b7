"""UMLS RRF reader: real column layout, filters, direction of MRREL, malformed rows."""

from __future__ import annotations

import pytest

from graphbrain.errors import DataError
from graphbrain.kg import read_rrf

CONSO = [
    "C0000001|ENG|P|L1|PF|S1|Y|A1||M1|D1|MSH|MH|D000001|Alpha disease|0|N|256|",
    "C0000001|ENG|S|L2|PF|S2|Y|A2||M1|D1|MSH|ET|D000001|Alpha syndrome|0|N|256|",
    "C0000001|FRE|P|L3|PF|S3|Y|A3||M1|D1|MSHFRE|MH|D000001|Maladie alpha|0|N|256|",
    "C0000001|ENG|S|L4|PF|S4|N|A4||||SNOMEDCT_US|PT|100001|Alpha old name|0|O|256|",
    "C0000002|ENG|P|L5|PF|S5|Y|A5||||SNOMEDCT_US|PT|100002|Beta finding|0|N|256|",
    "C0000003|ENG|P|L6|PF|S6|Y|A6||||ICD10CM|PT|G40|Gamma disorder|0|N|256|",
]
REL = [
    # CUI2 (C0000003) is a parent (PAR) of CUI1 (C0000001) -> C0000001 is_a C0000003
    "C0000001|A1|SCUI|PAR|C0000003|A6|SCUI|inverse_isa|R1||SNOMEDCT_US||0|Y|N||",
    # relation of CUI2 to CUI1: C0000002 finding_site_of?  use has_finding -> C0000002 is finding of C0000001
    "C0000001|A1|SCUI|RO|C0000002|A5|SCUI|manifestation_of|R2||SNOMEDCT_US||0|Y|N||",
    "C0000002|A5|SCUI|RO|C0000003|A6|SCUI||R3||MSH||0|Y|O||",
    "C0000002|A5|SCUI|RB|C0000009|A9|SCUI||R4||MSH||0|Y|N||",
]
STY = [
    "C0000001|T047|B2.2.1.2.1|Disease or Syndrome|AT1|256|",
    "C0000002|T033|A2.2|Finding|AT2|256|",
]


def _write(tmp_path, conso=CONSO, rel=REL, sty=STY):
    (tmp_path / "MRCONSO.RRF").write_text("\n".join(conso) + "\n")
    (tmp_path / "MRREL.RRF").write_text("\n".join(rel) + "\n")
    (tmp_path / "MRSTY.RRF").write_text("\n".join(sty) + "\n")
    return tmp_path


def test_real_fixture(rrf_dir):
    res = read_rrf(rrf_dir)
    by = {c.id: c for c in res.concepts}
    assert by["C0000005"].name == "(131)I-Macroaggregated Albumin"
    assert by["C0000005"].synonyms == ("(131)I-MAA",)
    assert by["C0000005"].xrefs == ("MSH:D012711",)
    assert [t.tui for t in by["C0000039"].semantic_types] == ["T109", "T121"]
    assert by["C0000039"].definition.startswith("Synthetic phospholipid")
    assert res.stats["MRCONSO.RRF:rows"] == 3


def test_filters_and_relations(tmp_path):
    res = read_rrf(_write(tmp_path))
    by = {c.id: c for c in res.concepts}
    assert by["C0000001"].name == "Alpha disease"
    assert by["C0000001"].synonyms == ("Alpha syndrome",)  # French and suppressed names dropped
    assert by["C0000001"].xrefs == ("MSH:D000001",)
    assert res.stats["MRCONSO.RRF:filtered_language"] == 1
    assert res.stats["MRCONSO.RRF:filtered_suppressed"] == 1
    keys = {r.key for r in res.relations}
    assert keys == {("C0000001", "is_a", "C0000003"), ("C0000002", "manifestation_of", "C0000001")}
    assert res.stats["MRREL.RRF:filtered_suppressed"] == 1
    assert res.stats["MRREL.RRF:dangling"] == 1
    kg = res.to_kg()
    assert kg.ancestors("C0000001") == ["C0000003"]

    res2 = read_rrf(tmp_path, languages=None, sources=["MSH", "MSHFRE"], include_suppressed=True)
    assert {c.id for c in res2.concepts} == {"C0000001"}
    assert "Maladie alpha" in res2.concepts[0].synonyms


def test_malformed_rows_raise_with_file_and_line_or_are_counted(tmp_path):
    bad = [*CONSO[:2], "C0000004|ENG|P|only a few fields|", *CONSO[2:]]
    _write(tmp_path, conso=bad)
    with pytest.raises(DataError, match=r"MRCONSO\.RRF:3"):
        read_rrf(tmp_path)
    res = read_rrf(tmp_path, on_error="skip")
    assert res.stats["MRCONSO.RRF:malformed"] == 1
    assert {c.id for c in res.concepts} == {"C0000001", "C0000002", "C0000003"}


def test_layout_comes_from_mrfiles(tmp_path):
    cols = "STR,CUI,LAT,TS,LUI,STT,SUI,ISPREF,AUI,SAUI,SCUI,SDUI,SAB,TTY,CODE,SRL,SUPPRESS,CVF"
    _write(tmp_path, conso=["Alpha disease|C0000001|ENG|P|L1|PF|S1|Y|A1||M1|D1|MSH|MH|D000001|0|N|256|"], rel=[], sty=[])
    (tmp_path / "MRFILES.RRF").write_text(f"MRCONSO.RRF|Concept names|{cols}|18|1|1|\n")
    res = read_rrf(tmp_path)
    assert [(c.id, c.name, c.xrefs) for c in res.concepts] == [("C0000001", "Alpha disease", ("MSH:D000001",))]
