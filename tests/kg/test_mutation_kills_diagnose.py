"""Tests written against mutants of ``kg/diagnose.py`` (output format only: the scoring is
being reworked elsewhere). The JSON keys of a diagnosis and the labels of its table are
what users and scripts read (``python tools/mutation.py diagnose``; see docs/testing.md).
"""

from __future__ import annotations

import pytest

from graphbrain.kg import KnowledgeGraph


@pytest.fixture()
def kg(small_records):
    return KnowledgeGraph.from_records(*small_records)


def test_diagnosis_json_keys_and_table_labels(kg):
    res = kg.diagnose(["seizure", "no such thing at all"], top_k=3)
    d = res.to_dict()
    assert set(d) == {"findings", "unresolved", "unlinked", "finding_relations", "candidates"}
    assert d["unresolved"] == ["no such thing at all"]
    assert d["findings"][0]["concept_id"] == "S:1"
    top = d["candidates"][0]
    assert {"rank", "id", "name", "score", "matched_findings", "evidence"} <= set(top)
    assert top["id"] == res.candidates[0].concept_id and top["name"] == res.candidates[0].name
    assert top["score"] == round(res.candidates[0].score, 6)
    for c in d["candidates"]:
        for sub in c.get("subtypes", []):
            assert set(sub) == {"id", "name", "score"}
    table = res.table()
    assert table.splitlines()[0].startswith("findings: ")
    assert "unresolved: no such thing at all" in table.splitlines()
