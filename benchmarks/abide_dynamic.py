"""ABIDE-PCP (323 subjects, 7 sites, HO atlas): STAGIN with whole scans, crop-averaged
prediction and the linear path (issue 9, items 1-3), on the same folds as
``benchmarks/abide_models.py``: leave-site-out (7 folds) and 5-fold stratified (seed 0).

Every fold fits everything on the training fold only (static-FC transformer and scaler for
the linear path and node features, weights, early stopping on an inner 20 % split of the
training fold). The configurations below were fixed before looking at any test fold.

    .venv/bin/python benchmarks/abide_dynamic.py [--rows stagin stagin-nolinear] [--schemes loso kfold]
        [--out /tmp/abide_dynamic.json] [--threads 1]

Rows:
  stagin           the packaged defaults (configs/model/stagin.yaml, connectome and train
                   defaults): whole scans of any length, window 20 / stride 10 TRs, FC-row
                   node features, linear path on, predict.crops=cover
  stagin-cpu       the defaults at half width (2 x 32) and 20 epochs (CPU budget)
  stagin-nolinear  the same without the linear path (item 3 switched off)
  stagin-min78     the old setting: every scan cropped to the shortest scan (78 TRs),
                   first crop at prediction, no linear path (items 1-3 off)
  logreg           the baseline on the same folds
Writes per-fold JSON (``--out``) and prints a markdown table (mean +/- sd over folds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from graphbrain.data import read_abide_pcp
from graphbrain.training import binary_metrics, build_classifier, leave_site_out, stratified_kfold

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "abide_pcp"
CACHE = Path("/tmp/graphbrain_abide_cache")  # per-subject static FC, content-hashed (outside the repo)
TRAIN = {"progress": False, "num_threads": 1}

ROWS: dict[str, dict] = {
    "logreg": {"model": "logreg", "model_params": {"C": 1.0}, "connectome": {}},
    "stagin": {"model": "stagin", "model_params": {}, "connectome": {}, "train": TRAIN},
    # CPU budget on the shared 2-core VM: the defaults at half width (2 x 32) and 20 epochs
    "stagin-cpu": {"model": "stagin", "model_params": {"hidden": 32, "n_layers": 2, "node_features": "window_fc"},
                   "connectome": {"window": 20, "stride": 10},
                   "train": {**TRAIN, "epochs": 20, "patience": 8, "batch_size": 16}},
    "stagin-nolinear": {"model": "stagin", "model_params": {"linear_path": False}, "connectome": {},
                        "train": TRAIN},
    "stagin-min78": {"model": "stagin", "model_params": {"linear_path": False},
                     "connectome": {"n_timepoints": "min", "predict_crops": "first"}, "train": TRAIN},
}


def folds_for(cohort, scheme: str):
    if scheme == "loso":
        return list(leave_site_out(cohort.sites, cohort.labels))
    return list(stratified_kfold(cohort.labels, 5, seed=0))


def run(rows: list[str], schemes: list[str], root: Path, out: Path | None) -> dict:
    cohort = read_abide_pcp(root, drop_rois=["3455"])
    lens = np.array([s.n_timepoints for s in cohort])
    print(f"{len(cohort)} subjects, {cohort.n_rois} ROIs, scans {lens.min()}-{lens.max()} TRs", flush=True)
    results: dict = json.loads(out.read_text()) if out and out.exists() else {}
    y = cohort.labels
    for scheme in schemes:
        folds = folds_for(cohort, scheme)
        for name in rows:
            key = f"{name}/{scheme}"
            done = results.setdefault(key, [])
            for fold in folds[len(done):]:
                t0 = time.perf_counter()
                cfg = ROWS[name]
                clf = build_classifier(cfg["model"], model_params=cfg["model_params"],
                                       connectome={**cfg["connectome"], "cache_dir": str(CACHE)},
                                       train=cfg.get("train"), seed=0)
                clf.fit(cohort.subset(fold.train))
                p = clf.predict_proba(cohort.subset(fold.test))[:, 1]
                m = binary_metrics(y[fold.test], p)
                row = {"fold": fold.name, "accuracy": m["accuracy"], "auroc": m["auroc"], "n_test": m["n"],
                       "best_epoch": getattr(clf, "best_epoch_", None), "seconds": time.perf_counter() - t0,
                       "gate": float(clf.model.gate) if hasattr(getattr(clf, "model", None), "gate") else None}
                done.append(row)
                print(key, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                if out:
                    out.write_text(json.dumps(results, indent=1))
    return results


def table(results: dict) -> str:
    lines = ["| row | scheme | folds | accuracy | AUROC | s/fold |", "|---|---|---|---|---|---|"]
    for key, rows in results.items():
        if not rows:
            continue
        name, scheme = key.split("/")
        acc = np.array([r["accuracy"] for r in rows])
        auc = np.array([r["auroc"] for r in rows])
        sec = np.mean([r["seconds"] for r in rows])
        lines.append(f"| {name} | {scheme} | {len(rows)} | {acc.mean():.3f} +/- {acc.std():.3f} | "
                     f"{auc.mean():.3f} +/- {auc.std():.3f} | {sec:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=["stagin"], choices=sorted(ROWS))
    ap.add_argument("--schemes", nargs="+", default=["loso"], choices=["loso", "kfold"])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.table_only:
        print(table(json.loads(args.out.read_text())))
        return
    print(table(run(args.rows, args.schemes, args.root, args.out)))


if __name__ == "__main__":
    main()
