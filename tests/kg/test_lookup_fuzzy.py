"""Whole-term-first fuzzy look-up with confidence scores and low-confidence flags."""

from __future__ import annotations

import pytest

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.lookup import CONFIDENT, FuzzyIndex, fold_words, looks_like_code
from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation

LABELS = [
    ("abdominal rigidity", "A", "name"),
    ("muscle rigidity", "M", "name"),
    ("Rigidity of the lower limbs", "L", "name"),
    ("rigidly", "X", "name"),
    ("seizure", "S", "name"),
    ("Parkinson's disease", "P", "name"),
    ("parkinsonism", "Q", "name"),
]


def test_tiers_whole_term_before_whole_word_before_partial():
    ix = FuzzyIndex(LABELS)
    hits = ix.search("rigidity")
    assert [m.concept_id for m in hits] == ["M", "A", "L", "X"]
    # whole-word tier: 0.6 + 0.3 * |query words| / |label words|; partial tier below 0.6
    assert hits[0].score == pytest.approx(0.75) and hits[2].score == pytest.approx(0.6 + 0.3 / 5)
    assert hits[3].score < 0.6
    assert all(m.low_confidence for m in hits)
    same = ix.search("Seizures")  # plural folded: same words, confident
    assert same[0].concept_id == "S" and same[0].score == pytest.approx(0.95) and not same[0].low_confidence
    assert ix.search("parkinson disease")[0].concept_id == "P"  # possessive folded
    assert ix.search("parkinson disease")[0].score >= CONFIDENT


def test_typos_are_partial_and_flagged():
    hit = FuzzyIndex(LABELS).search("siezure")[0]
    assert hit.concept_id == "S" and hit.low_confidence and hit.score < 0.6


def test_codes_are_never_fuzzy_matched():
    ix = FuzzyIndex([*LABELS, ("MSH:D012641 related", "Z", "name")])
    for q in ("MSH:D012640", "C0036572", "SNOMEDCT_US:84757009", "HP:0001250"):
        assert looks_like_code(q) and ix.search(q) == []
    assert not looks_like_code("neck stiffness")


def test_fold_words():
    assert fold_words("Parkinson's Diseases, (late-onset)") == ["parkinson", "disease", "late", "onset"]
    assert fold_words("arteries") == ["artery"] and fold_words("status") == ["status"]


def _kg(with_muscle: bool) -> KnowledgeGraph:
    cs = [
        Concept("D1", "pancreatitis", semantic_types=(DISEASE,)),
        Concept("D2", "parkinsonian syndrome", semantic_types=(DISEASE,)),
        Concept("F1", "abdominal rigidity", semantic_types=(SIGN_OR_SYMPTOM,)),
        Concept("F2", "tremor", semantic_types=(SIGN_OR_SYMPTOM,)),
    ]
    rs = [Relation("D1", "has_symptom", "F1"), Relation("D2", "has_symptom", "F2")]
    if with_muscle:
        cs.append(Concept("F3", "muscle rigidity", semantic_types=(SIGN_OR_SYMPTOM,)))
        rs.append(Relation("D2", "has_symptom", "F3"))
    return KnowledgeGraph.from_records(cs, rs)


def test_diagnosis_reports_low_confidence_links_and_prefers_the_closer_term():
    res = _kg(with_muscle=True).diagnose(["rigidity", "tremor"])
    f = {x.query: x for x in res.findings}
    assert f["rigidity"].concept_id == "F3" and f["rigidity"].low_confidence
    assert 0 < f["rigidity"].confidence < CONFIDENT
    assert not f["tremor"].low_confidence and f["tremor"].confidence == 1.0
    assert res.candidates[0].concept_id == "D2"
    assert "low-confidence link: 'rigidity' -> muscle rigidity" in res.table()
    # without a closer term the link still happens, but it is flagged, never silent
    res2 = _kg(with_muscle=False).diagnose(["rigidity"])
    assert res2.findings[0].concept_id == "F1" and res2.findings[0].low_confidence
    assert "low-confidence link" in res2.table()
    assert res2.to_dict()["findings"][0]["low_confidence"] is True
