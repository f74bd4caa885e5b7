"""Diagnosis on any graph: UMLS finding relations, directions, CLI --relations, clear refusals."""

from __future__ import annotations

import json
import shutil

import pytest

from graphbrain.kg import KnowledgeGraph, read_rrf
from graphbrain.kg.diagnose import (
    DEFAULT_FINDING_RELATIONS,
    FINDING_RELATIONS,
    DiagnosisError,
    finding_relation_spec,
)
from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation

DIABETES, T2DM, HTN = "C0011849", "C0011860", "C0020538"
POLYURIA, POLYDIPSIA, HEADACHE, THIRST = "C0032617", "C0085602", "C0018681", "C0039971"


def _conso(cui: str, name: str, aui: str) -> str:
    return f"{cui}|ENG|P|L{cui[1:]}|PF|S{cui[1:]}|Y|{aui}||||MTH|PN|NOCODE|{name}|0|N|256|"


def _sty(cui: str, tui: str, stn: str, sty: str) -> str:
    return f"{cui}|{tui}|{stn}|{sty}|AT{cui[1:]}|256|"


def _rel(cui1: str, rel: str, cui2: str, rela: str, n: int) -> str:
    # read_rrf turns a row into CUI2 -RELA-> CUI1
    return f"{cui1}|A{n}|SCUI|{rel}|{cui2}|B{n}|SCUI|{rela}|R{n}||MEDCIN||0|Y|N||"


@pytest.fixture()
def umls_dir(tmp_path, rrf_dir):
    """The shared RRF fixture plus synthetic diabetes rows in the real column layout."""
    meta = tmp_path / "META"
    meta.mkdir()
    for f in rrf_dir.iterdir():
        shutil.copy(f, meta / f.name)
        text = (meta / f.name).read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # the fixture's last rows have no newline
            (meta / f.name).write_text(text + "\n", encoding="utf-8")
    names = [(DIABETES, "Diabetes Mellitus"), (T2DM, "Diabetes Mellitus, Non-Insulin-Dependent"),
             (HTN, "Hypertensive disease"), (POLYURIA, "Polyuria"), (POLYDIPSIA, "Polydipsia"),
             (HEADACHE, "Headache"), (THIRST, "Thirst")]
    with open(meta / "MRCONSO.RRF", "a", encoding="utf-8") as fh:
        fh.writelines(_conso(c, n, f"X{i}") + "\n" for i, (c, n) in enumerate(names))
    with open(meta / "MRSTY.RRF", "a", encoding="utf-8") as fh:
        for c in (DIABETES, T2DM, HTN):
            fh.write(_sty(c, "T047", "B2.2.1.2.1", "Disease or Syndrome") + "\n")
        for c in (POLYURIA, POLYDIPSIA, HEADACHE, THIRST):
            fh.write(_sty(c, "T184", "A2.2.2", "Sign or Symptom") + "\n")
    return meta


def _write_rel(meta, rows):
    (meta / "MRREL.RRF").write_text("".join(r + "\n" for r in rows), encoding="utf-8")


BOTH_WAYS = [
    _rel(POLYURIA, "RO", DIABETES, "has_manifestation", 1),  # Diabetes has_manifestation Polyuria
    _rel(DIABETES, "RO", POLYURIA, "manifestation_of", 2),  # Polyuria manifestation_of Diabetes
    _rel(POLYDIPSIA, "RO", DIABETES, "has_manifestation", 3),
    _rel(DIABETES, "RO", POLYDIPSIA, "manifestation_of", 4),
    _rel(HEADACHE, "RO", HTN, "has_manifestation", 5),
    _rel(HTN, "RO", HEADACHE, "manifestation_of", 6),
    _rel(T2DM, "PAR", DIABETES, "inverse_isa", 7),  # T2DM is_a Diabetes
]


def test_polyuria_polydipsia_find_diabetes_through_has_manifestation(umls_dir):
    _write_rel(umls_dir, BOTH_WAYS)
    kg = read_rrf(umls_dir).to_kg()
    assert kg.neighbors(DIABETES, "has_manifestation")[0].tail == POLYURIA
    res = kg.diagnose(["polyuria", "polydipsia"], top_k=5)
    assert res.finding_relations == {"has_manifestation": "head", "manifestation_of": "tail"}
    ids = [c.concept_id for c in res.candidates]
    assert ids[0] == DIABETES
    assert HTN not in ids and POLYURIA not in ids and POLYDIPSIA not in ids
    assert T2DM in ids  # inherits its parent's manifestations, ranked below the parent
    assert res.candidates[0].score > next(c.score for c in res.candidates if c.concept_id == T2DM)
    ev = res.candidates[0].evidence_text
    assert any("Diabetes Mellitus --has_manifestation--> Polyuria" in t for t in ev)
    assert res.unlinked == [] and res.problems() == []


def test_the_disease_end_of_inverse_relations(umls_dir):
    # only manifestation_of rows: the disease is the tail
    _write_rel(umls_dir, [r for r in BOTH_WAYS if "manifestation_of" in r or "PAR" in r])
    kg = read_rrf(umls_dir).to_kg()
    assert kg.relation_types() == ["is_a", "manifestation_of"]
    res = kg.diagnose(["Polyuria", "Polydipsia"], top_k=3)
    assert [c.concept_id for c in res.candidates][:2] == [DIABETES, T2DM]
    assert set(res.candidates[0].evidence_text) == {
        "Diabetes Mellitus <--manifestation_of-- Polyuria",
        "Diabetes Mellitus <--manifestation_of-- Polydipsia",
    }
    # the wrong direction named explicitly: symptoms are not diseases, nothing is found
    wrong = kg.diagnose(["Polyuria"], finding_relations=["manifestation_of=head"])
    assert wrong.candidates == [] and [f.concept_id for f in wrong.unlinked] == [POLYURIA]


def test_either_direction_and_custom_relations():
    cs = [Concept("D", "dengue", (), (DISEASE,)), Concept("E", "ebola", (), (DISEASE,)),
          Concept("F", "fever", (), (SIGN_OR_SYMPTOM,)), Concept("R", "rash", (), (SIGN_OR_SYMPTOM,))]
    rs = [Relation("F", "clinically_associated_with", "D"), Relation("E", "clinically_associated_with", "F"),
          Relation("D", "presents_with", "R")]
    kg = KnowledgeGraph.from_records(cs, rs)
    res = kg.diagnose(["fever"])
    assert res.finding_relations == {"clinically_associated_with": "either"}
    assert {c.concept_id for c in res.candidates} == {"D", "E"}
    res = kg.diagnose(["rash"], finding_relations={"presents_with": "head"})
    assert [c.concept_id for c in res.candidates] == ["D"]
    assert finding_relation_spec(["presents_with=tail", "clinically_associated_with"], ["presents_with",
                                 "clinically_associated_with"]) == (
        ("clinically_associated_with", "either"), ("presents_with", "tail"))
    with pytest.raises(DiagnosisError, match="must be one of"):
        kg.diagnose(["rash"], finding_relations=["presents_with=up"])
    with pytest.raises(DiagnosisError, match="has_manifestation not in this graph"):
        kg.diagnose(["rash"], finding_relations=["has_manifestation"])


def test_untyped_graph_uses_the_disease_end_of_the_relation():
    cs = [Concept(i, i.lower()) for i in ("FLU", "COLD", "COUGH", "FEVER")]
    rs = [Relation("FLU", "has_symptom", "FEVER"), Relation("FLU", "has_symptom", "COUGH"),
          Relation("COLD", "has_symptom", "COUGH")]
    res = KnowledgeGraph.from_records(cs, rs).diagnose(["fever", "cough"])
    assert [c.concept_id for c in res.candidates] == ["FLU", "COLD"]


def test_graph_without_finding_relations_is_an_error(rrf_dir):
    kg = read_rrf(rrf_dir).to_kg()  # the fixture has no MRREL
    with pytest.raises(DiagnosisError, match="no finding relation") as info:
        kg.diagnose(["(131)I-MAA"])
    assert "has_manifestation" in str(info.value) and "finding_relations=" in str(info.value)


def test_cli_diagnose_on_an_rrf_graph(capsys, tmp_path, umls_dir):
    from graphbrain.kg.cli import main

    _write_rel(umls_dir, BOTH_WAYS)
    out = tmp_path / "umls.json.gz"
    assert main(["build", "--source", "rrf", "--input", str(umls_dir), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["diagnose", "--kg", str(out), "polyuria", "polydipsia", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["candidates"][0]["id"] == DIABETES
    # choose the relations: only has_manifestation, with a direction given explicitly
    assert main(["diagnose", "--kg", str(out), "polyuria", "--relations", "has_manifestation=head"]) == 0
    assert "Diabetes Mellitus" in capsys.readouterr().out
    # a finding that reaches no disease, alone: non-zero exit and the reason
    assert main(["diagnose", "--kg", str(out), "(131)I-MAA"]) == 1
    err = capsys.readouterr().err
    assert "linked to no disease" in err and "(131)I-Macroaggregated Albumin" in err
    # with a linked finding too: an answer, and a warning about the other
    assert main(["diagnose", "--kg", str(out), "polyuria", "(131)I-MAA"]) == 0
    assert "warning: linked to no disease" in capsys.readouterr().err
    assert main(["diagnose", "--kg", str(out), "polyuria", "--relations", "has_finding_site"]) == 1
    assert "has_finding_site not in this graph" in capsys.readouterr().err


def test_default_graph_keeps_its_relations(default_kg):
    found = finding_relation_spec(None, default_kg.relation_types())
    assert {n for n, _ in found} >= {"has_symptom", "located_in"}
    assert all(FINDING_RELATIONS[n] == e for n, e in found)
    auto = default_kg.diagnose(["seizure", "stiff neck"], top_k=5)
    old = default_kg.diagnose(["seizure", "stiff neck"], top_k=5, finding_relations=[
        r for r in DEFAULT_FINDING_RELATIONS if r in default_kg.relation_types()])
    if {n for n, _ in found} == set(old.finding_relations):
        assert [c.to_dict() for c in auto.candidates] == [c.to_dict() for c in old.candidates]
