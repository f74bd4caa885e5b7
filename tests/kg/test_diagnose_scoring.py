"""scoring="ic": information content over the finding hierarchy, disease families, size prior.

Expected values are derived from the definitions (module doc of graphbrain.kg.diagnose) on
planted graphs, never recorded from a run."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from graphbrain.kg import KnowledgeGraph, evaluate_diagnosis
from graphbrain.kg.diagnose import IcParams
from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation

PLAIN = IcParams(size=0.0, specificity=0.0)


def _kg(diseases, findings, rels):
    cs = [Concept(d, d.lower(), (), (DISEASE,)) for d in diseases]
    cs += [Concept(f, f.lower(), (), (SIGN_OR_SYMPTOM,)) for f in findings]
    return KnowledgeGraph.from_records(cs, [Relation(*r) for r in rels])


def test_rare_finding_outweighs_two_common_ones():
    # 10 diseases; fever and cough on 8 of them (D1..D8), rash only on R. D1 has fever + cough.
    ds = [f"D{i}" for i in range(1, 9)] + ["R", "Z"]
    rels = [(d, "has_symptom", "FEVER") for d in ds[:8]] + [(d, "has_symptom", "COUGH") for d in ds[:8]]
    rels += [("R", "has_symptom", "RASH"), ("Z", "has_symptom", "ITCH")]
    kg = _kg(ds, ["FEVER", "COUGH", "RASH", "ITCH"], rels)
    n = 10  # annotated diseases
    ic = {"FEVER": math.log(n / 8), "RASH": math.log(n / 1)}
    for p in (PLAIN, IcParams(size=0.5)):
        res = kg.diagnose(["FEVER", "COUGH", "RASH"], top_k=3, scoring="ic", params=p)
        top = {c.concept_id: c.score for c in res.candidates}
        assert res.candidates[0].concept_id == "R"
        assert top["R"] == pytest.approx(ic["RASH"] - p.size * math.log1p(1))
        assert top["D1"] == pytest.approx(2 * ic["FEVER"] - p.size * math.log1p(2))
    # the symptom-count view (legacy IDF on direct links only) agrees that R beats D1 here,
    # but plain overlap would not: D1 matches two findings, R one
    legacy = kg.diagnose(["FEVER", "COUGH", "RASH"], top_k=10, scoring="legacy", max_hops=1)
    assert legacy.candidates[0].concept_id == "R"


def _hierarchy():
    # finding tree: ROOT <- P <- Q <- C <- G ; P <- S (sibling of Q)
    f = ["ROOT", "P", "Q", "C", "G", "S", "O"]
    isa = [("P", "is_a", "ROOT"), ("Q", "is_a", "P"), ("C", "is_a", "Q"), ("G", "is_a", "C"),
           ("S", "is_a", "P"), ("O", "is_a", "ROOT")]
    dis = ["A", "B", "E", "F"]
    ann = [("A", "has_symptom", "G"), ("B", "has_symptom", "S"), ("E", "has_symptom", "Q"),
           ("F", "has_symptom", "O")]
    return _kg(dis, f, isa + ann)


def test_hierarchy_matches_are_discounted_by_distance_and_information():
    kg = _hierarchy()
    n = 4
    # true-path rule: Q is carried by A (via G) and E; P by A, B, E; ROOT by all four
    ic_q, ic_p = math.log(n / 2), math.log(n / 3)
    p = IcParams(size=0.0, specificity=0.0, descendant_discount=0.9)
    res = kg.diagnose(["Q"], top_k=10, scoring="ic", params=p)
    got = {c.concept_id: c.score for c in res.candidates}
    assert got["E"] == pytest.approx(ic_q)  # annotated with Q itself
    assert got["A"] == pytest.approx(ic_q * 0.9**2)  # two levels below Q
    assert got["B"] == pytest.approx(ic_p)  # shares only P with Q
    assert "F" not in got  # shares only the root, which every disease carries: log(4/4) = 0
    assert [c.concept_id for c in res.candidates][:3] == ["E", "A", "B"]
    ev = {c.concept_id: c.evidence_text for c in res.candidates}
    assert ev["E"] == ("e --has_symptom--> q",)
    assert ev["A"] == ("a --has_symptom--> g --is_a--> c --is_a--> q",)
    assert ev["B"] == ("b --has_symptom--> s --is_a--> p <--is_a-- q",)
    # max_hops=1: direct annotations only
    assert [c.concept_id for c in kg.diagnose(["Q"], scoring="ic", max_hops=1).candidates] == ["E"]


def test_ic_tables_follow_the_true_path_rule_on_a_random_dag():
    import networkx as nx

    rng = random.Random(3)
    terms = [f"T{i}" for i in range(40)]
    isa = [(terms[i], "is_a", terms[rng.randrange(i)]) for i in range(1, 40)]
    isa += [(terms[i], "is_a", terms[rng.randrange(i)]) for i in range(5, 40, 3)]  # a DAG
    dis = [f"D{i}" for i in range(25)]
    ann = [(d, "has_phenotype", rng.choice(terms)) for d in dis for _ in range(rng.randint(1, 4))]
    kg = _kg(dis, terms, isa + ann)
    idx = kg.diagnosis_index(("has_phenotype",))
    t = idx.ic_tables()
    g = nx.DiGraph([(b, a) for a, _, b in isa])  # parent -> child
    by = {}
    for d, _, f in ann:
        by.setdefault(f, set()).add(d)
    annotated = {d for d, _, _ in ann}
    mem = idx.mem
    for term in terms:
        below = {term} | nx.descendants(g, term)
        want = set().union(*(by.get(x, set()) for x in below))
        i = mem.index[term]
        got = {mem.ids[j] for j in t.ds[t.ds_ptr[i]:t.ds_ptr[i + 1]]}
        assert got == want, term
        exp = math.log(len(annotated) / len(want)) if want else 0.0
        assert t.ic[i] == pytest.approx(exp)


def test_parent_scored_from_its_subtypes_and_grouped_below_them():
    # P has no findings; children A (x, y) and B (x); W elsewhere has y and z
    rels = [("A", "is_a", "P"), ("B", "is_a", "P"), ("A", "has_symptom", "X"), ("A", "has_symptom", "Y"),
            ("B", "has_symptom", "X"), ("W", "has_symptom", "Y"), ("W", "has_symptom", "Z")]
    kg = _kg(["P", "A", "B", "W"], ["X", "Y", "Z"], rels)
    p = IcParams(size=0.0, specificity=0.0, family_penalty=0.1)
    res = kg.diagnose(["X", "Y"], top_k=10, scoring="ic", params=p)
    got = {c.concept_id: c for c in res.candidates}
    n = 3
    s_a = 2 * math.log(n / 2)
    s_b = math.log(n / 2)
    assert got["A"].score == pytest.approx(s_a)
    assert got["P"].score == pytest.approx((s_a + s_b) / 2 - 0.1)  # mean over the family
    assert [c.concept_id for c in res.candidates][0] == "A"
    assert "p <--is_a-- a --has_symptom--> x" in got["P"].evidence_text


def test_size_prior_and_specificity_prefer_the_disease_the_query_explains_best():
    # SMALL has exactly the query; BIG has it plus 30 other findings
    others = [f"O{i}" for i in range(30)]
    rels = [(d, "has_symptom", f) for d in ("SMALL", "BIG") for f in ("X", "Y")]
    rels += [("BIG", "has_symptom", o) for o in others] + [("Q", "has_symptom", o) for o in others]
    kg = _kg(["SMALL", "BIG", "Q"], ["X", "Y", *others], rels)
    flat = kg.diagnose(["X", "Y"], scoring="ic", params=PLAIN)
    s = {c.concept_id: c.score for c in flat.candidates}
    assert s["SMALL"] == pytest.approx(s["BIG"])  # same information matched
    for p in (IcParams(size=0.5, specificity=0.0), IcParams(size=0.0, specificity=1.0)):
        res = kg.diagnose(["X", "Y"], scoring="ic", params=p)
        s = {c.concept_id: c.score for c in res.candidates}
        assert res.candidates[0].concept_id == "SMALL" and s["SMALL"] > s["BIG"]
    # specificity: BIG's share of annotation information explained, by hand
    t = kg.diagnosis_index(("has_symptom",)).ic_tables()
    ic_xy = math.log(3 / 2)
    ic_o = math.log(3 / 2)
    share = 2 * ic_xy / (2 * ic_xy + 30 * ic_o)
    res = kg.diagnose(["X", "Y"], scoring="ic", params=IcParams(size=0.0, specificity=1.0))
    s = {c.concept_id: c.score for c in res.candidates}
    assert s["BIG"] == pytest.approx(2 * ic_xy + math.log(share))
    assert s["SMALL"] == pytest.approx(2 * ic_xy)
    assert t.n_annotated == 3


def test_held_out_disease_inherits_from_its_parent():
    # C has no findings; its parent P's family (A, B) has x, y: C is reached through P
    rels = [("A", "is_a", "P"), ("B", "is_a", "P"), ("C", "is_a", "P"), ("Z", "is_a", "Q")]
    rels += [(d, "has_symptom", s) for d in "AB" for s in "XY"] + [("Z", "has_symptom", "W")]
    kg = _kg(["P", "A", "B", "C", "Q", "Z"], ["X", "Y", "W"], rels)
    p = IcParams(size=0.0, inherit_penalty=1.0, family_penalty=0.1)
    res = kg.diagnose(["X", "Y"], top_k=10, scoring="ic", params=p)
    got = {c.concept_id: c for c in res.candidates}
    assert got["C"].score == pytest.approx(got["P"].score - 1.0)
    assert "Z" not in got
    assert got["C"].evidence_text[0] == "c --is_a--> p <--is_a-- a --has_symptom--> x"
    # max_hops=1 uses neither families nor parents
    assert {c.concept_id for c in kg.diagnose(["X", "Y"], scoring="ic", max_hops=1).candidates} == {"A", "B"}


def test_legacy_scoring_is_still_selectable(small_records):
    kg = KnowledgeGraph.from_records(*small_records)
    legacy = kg.diagnose(["seizure"], top_k=5, scoring="legacy")
    idf = math.log1p(4 / (1 + 1))  # 4 typed diseases, seizure on one
    assert legacy.candidates[0].concept_id == "D:1"
    assert legacy.candidates[0].score == pytest.approx(idf)
    with pytest.raises(ValueError, match="scoring must be one of"):
        kg.diagnose(["seizure"], scoring="bayes")
    with pytest.raises(ValueError, match="scoring must be one of"):
        evaluate_diagnosis(kg, scoring="bayes")


def test_evaluate_diagnosis_reports_the_scoring(default_kg):
    ic = evaluate_diagnosis(default_kg, protocol="partial", n_queries=40, seed=2)
    old = evaluate_diagnosis(default_kg, protocol="partial", n_queries=40, seed=2, scoring="legacy")
    assert ic["scoring"] == "ic" and ic["params"]["size"] == IcParams().size
    assert old["scoring"] == "legacy" and old["params"] is None
    # same queries: the baseline is identical, only the method changes
    assert ic["symptom_overlap"] == old["symptom_overlap"]
    assert ic["diagnose"]["hits@10"] > 0.5
    assert np.isfinite(ic["diagnose"]["mrr"])


def test_grouped_answers_fold_subtypes_under_their_parent():
    # P's subtypes A and B explain x and y; W explains y only; A2 is a subtype of A
    rels = [("A", "is_a", "P"), ("B", "is_a", "P"), ("A2", "is_a", "A"),
            ("A", "has_symptom", "X"), ("A", "has_symptom", "Y"), ("B", "has_symptom", "X"),
            ("B", "has_symptom", "Y"), ("A2", "has_symptom", "X"), ("W", "has_symptom", "Y"),
            ("W", "has_symptom", "Z")]
    kg = _kg(["P", "A", "B", "A2", "W"], ["X", "Y", "Z"], rels)
    flat = kg.diagnose(["X", "Y"], top_k=10, scoring="ic")
    flat_ids = [c.concept_id for c in flat.candidates]
    assert set(flat_ids) == {"P", "A", "B", "A2", "W"}
    assert all(not c.subtypes and "subtypes" not in c.to_dict() for c in flat.candidates)
    grouped = kg.diagnose(["X", "Y"], top_k=10, scoring="ic", group=True)
    assert [c.concept_id for c in grouped.candidates] == ["P", "W"]
    assert [c.rank for c in grouped.candidates] == [1, 2]
    sub = grouped.candidates[0].subtypes
    # the members in their flat order, each with its flat score
    assert [i for i, _, _ in sub] == [x for x in flat_ids if x in {"A", "B", "A2"}]
    score = {c.concept_id: c.score for c in flat.candidates}
    assert all(sc == pytest.approx(score[i]) for i, _, sc in sub)
    assert grouped.candidates[0].to_dict()["subtypes"][0]["id"] == sub[0][0]
    assert "best subtypes:" in grouped.table()
    # top_k counts groups
    assert [c.concept_id for c in kg.diagnose(["X", "Y"], top_k=1, group=True).candidates] == ["P"]


def test_grouped_answers_fold_siblings_under_a_shared_parent_outside_the_pool():
    # E1, E2 (children of EPI) explain x and the rare z; 60 W's explain x only; EPI's 60 other
    # subtypes explain nothing, so EPI's family score (mean) falls below the W's: EPI is
    # outside the 50-candidate pool, and heads E1 and E2 as their shared parent
    ws, us = [f"W{i}" for i in range(60)], [f"U{i}" for i in range(60)]
    rels = [(e, "is_a", "EPI") for e in ("E1", "E2", *us)]
    rels += [(e, "has_symptom", f) for e in ("E1", "E2") for f in ("X", "Z")]
    rels += [(w, "has_symptom", "X") for w in ws] + [(u, "has_symptom", "Y") for u in us]
    kg = _kg(["EPI", "E1", "E2", *ws, *us], ["X", "Y", "Z"], rels)
    flat = kg.diagnose(["X", "Z"], top_k=50)
    ids = [c.concept_id for c in flat.candidates]
    assert ids[:2] == ["E1", "E2"] and "EPI" not in ids
    grouped = kg.diagnose(["X", "Z"], top_k=3, group=True)
    assert [c.concept_id for c in grouped.candidates] == ["EPI", "W0", "W1"]
    assert [i for i, _, _ in grouped.candidates[0].subtypes] == ["E1", "E2"]


def test_family_evidence_goes_through_the_best_member():
    # A (lower id) explains x only; B explains x and y: P's evidence for x goes through B
    rels = [("A", "is_a", "P"), ("B", "is_a", "P"), ("A", "has_symptom", "X"), ("B", "has_symptom", "X"),
            ("B", "has_symptom", "Y"), ("W", "has_symptom", "Z")]
    kg = _kg(["P", "A", "B", "W"], ["X", "Y", "Z"], rels)
    res = kg.diagnose(["X", "Y"], top_k=10)
    p = next(c for c in res.candidates if c.concept_id == "P")
    assert "p <--is_a-- b --has_symptom--> x" in p.evidence_text
