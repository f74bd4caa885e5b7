"""diagnose(): ranking, evidence paths, and the held-out evaluation."""

from __future__ import annotations

import pytest

from graphbrain.kg import KnowledgeGraph, evaluate_diagnosis
from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation


@pytest.fixture()
def kg(small_records):
    return KnowledgeGraph.from_records(*small_records)


def test_direct_and_multi_hop_evidence(kg):
    res = kg.diagnose(["seizure"], top_k=5)
    ranked = [c.concept_id for c in res.candidates]
    assert ranked[0] == "D:1"  # direct
    assert "D:2" in ranked  # via focal seizure (narrower) or inheritance
    top = res.candidates[0]
    assert top.evidence_text == ("epilepsy --has_symptom--> seizure",)
    d2 = next(c for c in res.candidates if c.concept_id == "D:2")
    assert d2.evidence[0].nodes[0] == "D:2" and d2.evidence[0].nodes[-1] == "S:1"
    assert len(d2.evidence[0]) == 2
    assert d2.score < top.score


def test_findings_are_resolved_by_name_synonym_code_and_typo(kg):
    res = kg.diagnose(["Seizures", "cephalalgia", "S:2", "headach", "no such thing at all"], top_k=3)
    assert [f.concept_id for f in res.findings] == ["S:1", "S:3", "S:2"]
    assert res.unresolved == ["no such thing at all"]
    assert {c.concept_id for c in res.candidates} >= {"D:1", "D:3"}
    d = res.to_dict()
    assert d["candidates"][0]["evidence"]
    assert "score=" in res.table()


def test_max_hops_1_keeps_only_direct_links(kg):
    res = kg.diagnose(["seizure"], top_k=5, max_hops=1)
    assert [c.concept_id for c in res.candidates] == ["D:1"]
    with pytest.raises(ValueError):
        kg.diagnose(["seizure"], max_hops=4)
    with pytest.raises(ValueError):
        kg.diagnose([])


def test_sibling_paths_rank_held_out_disease():
    # parent P with children A, B, C; A and B have symptoms x, y; C has none.
    cs = [Concept(i, i.lower(), (), (DISEASE,)) for i in ["P", "A", "B", "C", "Q", "Z"]]
    cs += [Concept(s, s, (), (SIGN_OR_SYMPTOM,)) for s in ["x", "y", "w"]]
    rs = [Relation(c, "is_a", "P") for c in "ABC"] + [Relation("Z", "is_a", "Q")]
    rs += [Relation(d, "has_symptom", s) for d in "AB" for s in "xy"] + [Relation("Z", "has_symptom", "w")]
    kg = KnowledgeGraph.from_records(cs, rs)
    res = kg.diagnose(["x", "y"], top_k=10)
    ids = [c.concept_id for c in res.candidates]
    assert ids[:2] == ["A", "B"] and "C" in ids and "Z" not in ids
    c = next(c for c in res.candidates if c.concept_id == "C")
    assert c.evidence_text[0] == "c --is_a--> p <--is_a-- a --has_symptom--> x"


def test_held_out_evaluation_beats_overlap_baseline(default_kg):
    out = evaluate_diagnosis(default_kg, protocol="holdout", n_queries=150, seed=1)
    assert out["queries"] == 150
    assert out["diagnose"]["mrr"] > 5 * out["symptom_overlap"]["mrr"]
    part = evaluate_diagnosis(default_kg, protocol="partial", n_queries=100, seed=1)
    assert part["diagnose"]["hits@10"] > 0.5


def test_fuzzy_findings_must_match_every_word():
    from graphbrain.kg import KnowledgeGraph
    from graphbrain.kg.diagnose import words_agree

    assert words_agree("seizures", "seizure")
    assert not words_agree("abnormal EEG", "abnormal feces")
    res = KnowledgeGraph.default().diagnose(["seizures", "abnormal EEG"], top_k=3)
    assert [f.concept_id for f in res.findings] == ["SYMP:0000124"]
    assert res.unresolved == ["abnormal EEG"]
