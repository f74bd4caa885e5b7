"""ABIDE-PCP fusion rows: connectome only, + phenotypes, + KG ROI features, population graph.

Same leave-site-out folds (7 sites) for every row; everything fitted inside the training
fold (FC estimator, per-edge scaler, stacked logistic regression with inner out-of-fold
scores, phenotype encoder, early stopping on an inner validation split, the population
graph's feature selection). ABIDE has no imaging-encoder embeddings in ../shared/data,
so the image path is measured on synthetic and haxby data only (tests/fusion).

    .venv/bin/python benchmarks/abide_fusion.py [--rows logreg fusion_pheno ...] [--out f.json]

Prints a markdown table (mean +/- sd over folds, pooled AUROC) for benchmarks/RESULTS_fusion.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from graphbrain.data import read_abide_pcp
from graphbrain.fusion.factory import build_multimodal
from graphbrain.training import binary_metrics, build_classifier, leave_site_out

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "abide_pcp"
LABELS = ROOT.parent / "atlases_pcp" / "ho_labels.csv"
TRAIN = {"epochs": 60, "patience": 15, "lr": 3e-3, "batch_size": 32, "progress": False, "num_threads": 1}
CONN = {"kind": "correlation", "estimator": "ledoit_wolf"}
PHENO = ["age", "sex", "handedness_score", "func_mean_fd"]

ROWS = {
    "logreg": lambda: build_classifier("logreg", connectome=CONN),
    "fusion_conn": lambda: build_multimodal("fusion", model_params={"phenotypes": []}, connectome=CONN, train=TRAIN),
    "fusion_pheno": lambda: build_multimodal("fusion", model_params={"phenotypes": PHENO}, connectome=CONN, train=TRAIN),
    "fusion_agesex": lambda: build_multimodal("fusion", model_params={"phenotypes": ["age", "sex"]}, connectome=CONN,
                                              train=TRAIN),
    "fusion_pheno_kg": lambda: build_multimodal(
        "fusion", model_params={"phenotypes": PHENO, "kg_roi": {"labels": str(LABELS), "dim": 16, "epochs": 30}},
        connectome=CONN, train=TRAIN),
    "fusion_pheno_kg_xattn": lambda: build_multimodal(
        "fusion", model_params={"phenotypes": PHENO, "strategy": "cross_attention",
                                "kg_roi": {"labels": str(LABELS), "dim": 16, "epochs": 30}},
        connectome=CONN, train=TRAIN),
    "population_inductive": lambda: build_multimodal("population", model_params={"phenotypes": ["sex", "age"]},
                                                     connectome=CONN),
    "population_transductive": lambda: build_multimodal(
        "population", model_params={"phenotypes": ["sex", "age"], "mode": "transductive"}, connectome=CONN),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    ap.add_argument("--root", default=str(ROOT))
    ap.add_argument("--out", default="/tmp/abide_fusion.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cohort = read_abide_pcp(args.root, constant_roi="keep")
    y = cohort.labels
    folds = list(leave_site_out(cohort.sites, y))
    results = {}
    for name in args.rows:
        t0 = time.perf_counter()
        per, ps, ys = [], [], []
        for f in folds:
            clf = ROWS[name]().fit(cohort.subset(f.train))
            p = clf.predict_proba(cohort.subset(f.test))[:, 1]
            per.append(binary_metrics(y[f.test], p))
            ps.append(p)
            ys.append(y[f.test])
            if name == "fusion_pheno_kg" and not results.get("kg_coverage"):
                results["kg_coverage"] = getattr(clf, "kg_coverage_", None)
        auc = np.array([m["auroc"] for m in per], dtype=float)
        acc = np.array([m["accuracy"] for m in per], dtype=float)
        pooled = binary_metrics(np.concatenate(ys), np.concatenate(ps))["auroc"]
        results[name] = {"auroc_mean": float(np.nanmean(auc)), "auroc_sd": float(np.nanstd(auc)),
                         "acc_mean": float(acc.mean()), "acc_sd": float(acc.std()), "pooled_auroc": float(pooled),
                         "per_fold": per, "seconds": time.perf_counter() - t0}
        print(f"| {name} | {acc.mean():.3f} +/- {acc.std():.3f} | {np.nanmean(auc):.3f} +/- {np.nanstd(auc):.3f} "
              f"| {pooled:.3f} | {time.perf_counter() - t0:.0f} s |", flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
