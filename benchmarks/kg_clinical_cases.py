"""Ten clinical presentations through ``diagnose`` on the DO graph and on the DO + HPO graph.

Prints a Markdown table (top-3 answers per graph, the expected disease's rank among all
candidates) and the held-out ``evaluate_diagnosis`` tables before (DO) and after (DO + HPO),
and writes them as JSON. A hit counts when the expected disease concept or one of its
is-a descendants (e.g. "Parkinson's disease 2" for Parkinson's disease) is in the top 3.

    GRAPHBRAIN_CACHE=/tmp/gbcache python benchmarks/kg_clinical_cases.py --out /tmp/cases.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from graphbrain.kg import KnowledgeGraph, evaluate_diagnosis

CASES = [
    ("Parkinson's disease", "DOID:14330", ["tremor", "bradykinesia", "rigidity"]),
    ("Alzheimer's disease", "DOID:10652", ["memory impairment", "dementia", "disorientation"]),
    ("systemic lupus erythematosus", "DOID:9074", ["malar rash", "arthralgia", "photosensitivity", "oral ulcers"]),
    ("bacterial meningitis", "DOID:9470", ["fever", "headache", "neck stiffness"]),
    ("diabetes mellitus", "DOID:9351", ["polyuria", "polydipsia", "weight loss"]),
    ("epilepsy", "DOID:1826", ["seizures", "EEG abnormality"]),
    ("myasthenia gravis", "DOID:437", ["ptosis", "diplopia", "fatigable weakness"]),
    ("Huntington's disease", "DOID:12858", ["chorea", "dementia", "depression"]),
    ("hypothyroidism", "DOID:1459", ["fatigue", "cold intolerance", "weight gain", "constipation"]),
    ("migraine", "DOID:6364", ["headache", "nausea", "photophobia"]),
]


def run_cases(kg: KnowledgeGraph) -> list[dict]:
    out = []
    for name, did, findings in CASES:
        ok_ids = {did, *kg.descendants(did)} if did in kg else set()
        t = time.perf_counter()
        res = kg.diagnose(findings, top_k=50)
        ms = (time.perf_counter() - t) * 1000
        rank = next((c.rank for c in res.candidates if c.concept_id in ok_ids), None)
        out.append({
            "expected": name, "findings": findings,
            "linked": [f"{f.query} -> {f.name} [{f.concept_id}]" + (" (low confidence)" if f.low_confidence else "")
                       for f in res.findings],
            "unresolved": res.unresolved,
            "top3": [f"{c.name} [{c.concept_id}]" for c in res.candidates[:3]],
            "rank_of_expected_in_top50": rank, "hit@3": rank is not None and rank <= 3, "ms": round(ms, 1),
        })
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--eval-queries", type=int, default=200)
    a = p.parse_args()
    result = {}
    for label, sources in (("DO", ["do"]), ("DO+HPO", ["do", "hpo"])):
        t = time.perf_counter()
        kg = KnowledgeGraph.default(sources=sources)
        load_s = time.perf_counter() - t
        st = kg.stats()
        cases = run_cases(kg)
        ev = {
            rel: {proto: evaluate_diagnosis(kg, protocol=proto, n_queries=a.eval_queries, seed=0, relation=rel,
                                            holdout_relations=("has_symptom", "has_phenotype"))
                  for proto in ("holdout", "partial")}
            for rel in (["has_symptom"] + (["has_phenotype"] if label != "DO" else []))
        }
        result[label] = {"load_s": round(load_s, 2), "concepts": st["concepts"], "relations": st["relations"],
                         "finding_edges": {k: v for k, v in st["relation_types"].items() if k in ("has_symptom", "has_phenotype")},
                         "cases": cases, "evaluate_diagnosis": ev}
        print(f"## {label}: {st['concepts']} concepts, {st['relations']} relations (load {load_s:.1f} s)")
        print("| expected | findings | top 3 | rank of expected |")
        print("|---|---|---|---|")
        for c in cases:
            print(f"| {c['expected']} | {', '.join(c['findings'])} | {'; '.join(c['top3'])} | {c['rank_of_expected_in_top50']} |")
        for rel, d in ev.items():
            for proto, r in d.items():
                print(f"evaluate_diagnosis {rel} {proto}: queries={r['queries']} candidates={r['candidates']} "
                      f"diagnose={r['diagnose']} overlap={r['symptom_overlap']}")
    if a.out:
        a.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
