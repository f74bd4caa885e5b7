"""Ten clinical presentations through ``diagnose`` on the DO graph and on the DO + HPO graph,
with the legacy scoring (before) and the information-content scoring (after).

Prints Markdown tables (top-3 answers, flat and grouped; the expected disease's rank among
the top 50) and the ``evaluate_diagnosis`` tables (holdout and partial, seed 0) for both
scorings, and writes everything as JSON. A hit counts when the expected disease concept or
one of its is-a descendants (e.g. "Parkinson disease 13" for Parkinson's disease) is in the
top 3. The presentations are an evaluation only: the scoring parameters were chosen on
``evaluate_diagnosis`` with another seed (``benchmarks/kg_diagnosis_tuning.py``).

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
SCORINGS = ("legacy", "ic")


def run_cases(kg: KnowledgeGraph, scoring: str) -> list[dict]:
    out = []
    for name, did, findings in CASES:
        ok_ids = {did, *kg.descendants(did)} if did in kg else set()
        t = time.perf_counter()
        res = kg.diagnose(findings, top_k=50, scoring=scoring)
        ms = (time.perf_counter() - t) * 1000
        grouped = kg.diagnose(findings, top_k=3, scoring=scoring, group=True)
        rank = next((c.rank for c in res.candidates if c.concept_id in ok_ids), None)
        out.append({
            "expected": name, "findings": findings,
            "linked": [f"{f.query} -> {f.name} [{f.concept_id}]" + (" (low confidence)" if f.low_confidence else "")
                       for f in res.findings],
            "unresolved": res.unresolved,
            "top3": [f"{c.name} [{c.concept_id}]" for c in res.candidates[:3]],
            "top3_grouped": [f"{c.name} [{c.concept_id}]" + (f" ({len(c.subtypes)} subtypes)" if c.subtypes else "")
                             for c in grouped.candidates],
            "rank_of_expected_in_top50": rank, "hit@3": rank is not None and rank <= 3,
            "hit@10": rank is not None and rank <= 10, "ms": round(ms, 1),
        })
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--eval-queries", type=int, default=200)
    p.add_argument("--no-eval", action="store_true")
    a = p.parse_args()
    result: dict = {}
    for label, sources in (("DO", ["do"]), ("DO+HPO", ["do", "hpo"])):
        t = time.perf_counter()
        kg = KnowledgeGraph.default(sources=sources)
        load_s = time.perf_counter() - t
        st = kg.stats()
        result[label] = {"load_s": round(load_s, 2), "concepts": st["concepts"], "relations": st["relations"],
                         "finding_edges": {k: v for k, v in st["relation_types"].items()
                                           if k in ("has_symptom", "has_phenotype")},
                         "merge": kg.metadata.get("merge")}
        for scoring in SCORINGS:
            cases = run_cases(kg, scoring)
            result[label][scoring] = {"cases": cases}
            n3 = sum(c["hit@3"] for c in cases)
            n10 = sum(c["hit@10"] for c in cases)
            print(f"## {label}, scoring={scoring}: {st['concepts']} concepts, {st['relations']} relations "
                  f"(load {load_s:.1f} s); expected in top 3: {n3}/10, top 10: {n10}/10")
            print("| expected | findings | top 3 | grouped top 3 | rank of expected |")
            print("|---|---|---|---|---|")
            for c in cases:
                print(f"| {c['expected']} | {', '.join(c['findings'])} | {'; '.join(c['top3'])} | "
                      f"{'; '.join(c['top3_grouped'])} | {c['rank_of_expected_in_top50']} |")
            result[label][scoring]["top3"] = n3
            result[label][scoring]["top10"] = n10
            if a.no_eval:
                continue
            ev = {}
            for rel in ["has_symptom"] + (["has_phenotype"] if label != "DO" else []):
                ev[rel] = {}
                for proto in ("holdout", "partial"):
                    t = time.perf_counter()
                    r = evaluate_diagnosis(kg, protocol=proto, n_queries=a.eval_queries, seed=0, relation=rel,
                                           holdout_relations=("has_symptom", "has_phenotype"), scoring=scoring)
                    r["seconds"] = round(time.perf_counter() - t, 1)
                    ev[rel][proto] = r
                    print(f"evaluate_diagnosis {label} {scoring} {rel} {proto}: queries={r['queries']} "
                          f"candidates={r['candidates']} diagnose={r['diagnose']} overlap={r['symptom_overlap']} "
                          f"({r['seconds']} s)", flush=True)
            result[label][scoring]["evaluate_diagnosis"] = ev
    if a.out:
        a.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
