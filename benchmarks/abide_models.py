"""ABIDE-PCP (323 subjects, 7 sites, HO atlas): deep models against the logreg baseline.

Same folds for every model: leave-site-out (7 folds) and 5-fold stratified (seed 0).
Each fold: ``fold_classifier(row).fit(train)`` -- connectome estimators, scalers, site
adaptation (``adapt``), hyper-parameter search (``search``), ensemble stackers and
early stopping (inner validation split carved from the training fold) see the training
fold only -- then accuracy / AUROC on the held-out fold. Hyper-parameters below were
chosen on inner-validation splits of 5-fold training folds 0-1 only (small models, CPU
budget); nothing is tuned on test folds.

    .venv/bin/python benchmarks/abide_models.py [--models stagin bnt] [--schemes loso kfold]
        [--out results.json] [--threads 1]

Prints a markdown table (mean +/- sd over folds) and writes per-fold JSON to ``--out``.
Needs ``../shared/data/abide_pcp`` (or ``--root``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from graphbrain.data import read_abide_pcp
from graphbrain.training import binary_metrics, fold_classifier, leave_site_out, stratified_kfold

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "abide_pcp"
CACHE = Path("/tmp/graphbrain_abide_cache")  # per-subject static FC, content-hashed (outside the repo)

# Trainer defaults after the ABIDE fixes: early stopping on inner-validation AUROC (the
# validation *loss* of an over-confident model rises from the first epochs and kept
# near-initial weights), warm-up epochs never taken as the best, AdamW weight decay 1e-2.
TRAIN = {"epochs": 30, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-2, "warmup_epochs": 2, "patience": 10,
         "val_fraction": 0.2, "monitor": "val_auroc", "progress": False, "num_threads": 1}
# Static FC: Ledoit-Wolf correlation, then (torch models) per-edge z-scoring with the
# training fold's mean / sd (TorchClassifier ``connectome.standardize``, the default).
STATIC = {"kind": "correlation", "estimator": "ledoit_wolf"}
# 78 TRs = the shortest scan in the cohort (OHSU), fixed up front so every site's
# subjects can be windowed the same way in every fold.
DYNAMIC = {"window": 30, "stride": 8, "n_timepoints": 78, "random_crop": True}  # 7 windows (CPU budget)

CONFIGS: dict[str, dict] = {
    "logreg": {"model_params": {"C": 1.0}, "connectome": STATIC},
    "stagin": {"model_params": {"hidden": 32, "n_layers": 2, "readout": "sero", "dropout": 0.5},
               "connectome": DYNAMIC, "train": {**TRAIN, "epochs": 20}},
    "bnt": {"model_params": {"heads": 4, "n_layers": 2, "n_clusters": 10, "ff_dim": 256},
            "connectome": STATIC, "train": TRAIN},
    "brainnetcnn": {"model_params": {"e2e_channels": [8, 8], "e2n_channels": 16, "n2g_channels": 32,
                                     "fc_hidden": [32, 16]},
                    "connectome": STATIC, "train": TRAIN},
    "gin": {"model_params": {"hidden": 64, "n_layers": 2, "top_percent": 20.0},
            "connectome": STATIC, "train": TRAIN},
}

# -- Issue 9 ablation rows (items 4-6). A row may name its ``model`` (default: the row key),
# ``adapt`` (none | site | combat; ComBat protects age and sex) and ``search`` (Optuna on
# inner folds of each training fold). Every row runs on the same outer folds; nothing is
# chosen on a test fold (search: repeated inner k-fold of the training fold only).
BNC_PARAMS = CONFIGS["brainnetcnn"]["model_params"]
ENS_STATIC = {"model": "ensemble", "connectome": STATIC, "train": TRAIN, "model_params": {
    "members": [{"name": "logreg", "C": 1.0}, {"name": "brainnetcnn", **BNC_PARAMS}], "seeds": 3, "combine": "mean"}}
CONFIGS.update({
    "logreg+site": {**CONFIGS["logreg"], "model": "logreg", "adapt": "site"},
    "logreg+combat": {**CONFIGS["logreg"], "model": "logreg", "adapt": "combat"},
    "brainnetcnn+site": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn", "adapt": "site"},
    "brainnetcnn+combat": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn", "adapt": "combat"},
    "logreg+search": {**CONFIGS["logreg"], "model": "logreg",
                      "search": {"enabled": True, "n_trials": 6, "inner_splits": 3, "inner_repeats": 2}},
    # members: logreg (C 1) + brainnetcnn (8/8/16/32), 3 seeds each, probabilities averaged
    "ens(logreg+bnc)": ENS_STATIC,
    "ens(logreg+bnc)+site": {**ENS_STATIC, "adapt": "site"},
    "ens(logreg+bnc) stack": {**ENS_STATIC, "model_params": {**ENS_STATIC["model_params"], "seeds": 1,
                                                             "combine": "stack", "stack_folds": 3}},
    # the cheap ensemble: the baseline on correlation and on tangent-space FC (fitted in-fold)
    "logreg-tangent": {"model": "logreg", "model_params": {"C": 1.0}, "connectome": {**STATIC, "kind": "tangent"}},
    "ens(logreg+logreg-tangent)": {"model": "ensemble", "connectome": STATIC, "model_params": {
        "members": [{"name": "logreg", "C": 1.0}, {"name": "logreg", "C": 1.0, "connectome": {"kind": "tangent"}}],
        "seeds": 1, "combine": "mean"}},
    "ens(logreg+logreg-tangent) stack": {"model": "ensemble", "connectome": STATIC, "model_params": {
        "members": [{"name": "logreg", "C": 1.0}, {"name": "logreg", "C": 1.0, "connectome": {"kind": "tangent"}}],
        "seeds": 1, "combine": "stack", "stack_folds": 5}},
    # + STAGIN (the small 2 x 32 configuration above, one seed): CPU-expensive
    "ens(logreg+bnc+stagin)": {**ENS_STATIC, "model_params": {**ENS_STATIC["model_params"], "members": [
        *ENS_STATIC["model_params"]["members"],
        {"name": "stagin", **CONFIGS["stagin"]["model_params"], "connectome": DYNAMIC,
         "train": CONFIGS["stagin"]["train"], "seeds": 1}]}},
})


# -- Issue 9 ablation, dynamic model (items 1-3). STAGIN at the packaged defaults' design
# (window-FC node features, window 20 / stride 10 TRs, SERO) at half width (2 x 32) and 20
# epochs for the CPU budget; each row switches items on or off. Item 5 (site adaptation)
# works on static FC only and is refused for dynamic-FC models, so it has no STAGIN row.
ST_MODEL = {"hidden": 32, "n_layers": 2, "node_features": "window_fc"}
ST_TRAIN = {**TRAIN, "epochs": 20, "patience": 8, "batch_size": 16}
ST_WIN = {**STATIC, "window": 20, "stride": 10}


def _stagin_row(*, whole: bool, cover: bool, linear: bool, init: str = "zeros", l2: float | str = 0.0) -> dict:
    return {"model": "stagin", "train": ST_TRAIN,
            "model_params": {**ST_MODEL, "linear_path": linear,
                             **({"linear_init": init, "linear_l2": l2} if linear else {})},
            "connectome": {**ST_WIN, "n_timepoints": None if whole else "min",
                           "predict_crops": "cover" if cover else "first"}}


CONFIGS.update({
    "stagin-all-off": _stagin_row(whole=False, cover=False, linear=False),  # the old design
    "stagin+whole": _stagin_row(whole=True, cover=False, linear=False),  # item 1 alone
    "stagin+crops": _stagin_row(whole=False, cover=True, linear=False),  # item 2 alone
    "stagin+linear": _stagin_row(whole=False, cover=False, linear=True),  # item 3 alone
    "stagin-1-3": _stagin_row(whole=True, cover=True, linear=True),  # the new defaults
    "stagin-1-3-loginit": _stagin_row(whole=True, cover=True, linear=True, init="logreg"),
    # started from the logistic regression, with that regression's own ridge (linear_l2=auto)
    "stagin-1-3-loginit-ridge": _stagin_row(whole=True, cover=True, linear=True, init="logreg", l2="auto"),
    # the linear path kept at the in-fold logistic regression, refitted on the training fold
    "stagin-1-3-frozen": _stagin_row(whole=True, cover=True, linear=True, init="logreg_frozen"),
    # static deep models: item 3 (linear path) off / on; items 1-2 do not apply to static FC
    "brainnetcnn-nolinear": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn",
                             "model_params": {**BNC_PARAMS, "linear_path": False}},
    "brainnetcnn+linear": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn",
                           "model_params": {**BNC_PARAMS, "linear_path": True}},
    "brainnetcnn+linear-loginit": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn",
                                   "model_params": {**BNC_PARAMS, "linear_path": True, "linear_init": "logreg"}},
    "brainnetcnn+linear-loginit-ridge": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn",
                                         "model_params": {**BNC_PARAMS, "linear_path": True, "linear_init": "logreg",
                                                          "linear_l2": "auto"}},
    "brainnetcnn+linear-frozen": {**CONFIGS["brainnetcnn"], "model": "brainnetcnn",
                                  "model_params": {**BNC_PARAMS, "linear_path": True, "linear_init": "logreg_frozen"}},
    "gin+linear-frozen": {**CONFIGS["gin"], "model": "gin",
                          "model_params": {**CONFIGS["gin"]["model_params"], "linear_path": True,
                                           "linear_init": "logreg_frozen"}},
    "bnt+linear-frozen": {**CONFIGS["bnt"], "model": "bnt",
                          "model_params": {**CONFIGS["bnt"]["model_params"], "linear_path": True,
                                           "linear_init": "logreg_frozen"}},
    "bnt-nolinear": {**CONFIGS["bnt"], "model": "bnt",
                     "model_params": {**CONFIGS["bnt"]["model_params"], "linear_path": False}},
    "bnt+linear": {**CONFIGS["bnt"], "model": "bnt",
                   "model_params": {**CONFIGS["bnt"]["model_params"], "linear_path": True}},
    "gin-nolinear": {**CONFIGS["gin"], "model": "gin",
                     "model_params": {**CONFIGS["gin"]["model_params"], "linear_path": False}},
    "gin+linear": {**CONFIGS["gin"], "model": "gin",
                   "model_params": {**CONFIGS["gin"]["model_params"], "linear_path": True}},
})


def folds_for(cohort, scheme: str):
    y, sites = cohort.labels, cohort.sites
    if scheme == "loso":
        return list(leave_site_out(sites, y))
    return list(stratified_kfold(y, 5, seed=0))


def run(models: list[str], schemes: list[str], root: Path, out: Path | None) -> dict:
    cohort = read_abide_pcp(root, drop_rois=["3455"])
    print(f"{len(cohort)} subjects, {cohort.n_rois} ROIs, {len(cohort.excluded)} excluded", flush=True)
    results: dict = json.loads(out.read_text()) if out and out.exists() else {}
    y = cohort.labels
    for scheme in schemes:
        folds = folds_for(cohort, scheme)
        for name in models:
            key = f"{name}/{scheme}"
            if key in results and len(results[key]) == len(folds):
                continue
            rows = results.setdefault(key, [])  # resumable: finished folds are kept
            for fold in folds[len(rows):]:
                t0 = time.perf_counter()
                cfg = dict(CONFIGS[name])
                model, adapt, search = cfg.pop("model", name), cfg.pop("adapt", "none"), cfg.pop("search", None)
                conn = {**cfg.get("connectome", {}), "cache_dir": str(CACHE)}
                clf = fold_classifier({"model": model, "seed": 0, **cfg, "connectome": conn}, adapt=adapt,
                                      search=search)
                clf.fit(cohort.subset(fold.train))
                p = clf.predict_proba(cohort.subset(fold.test))[:, 1]
                m = binary_metrics(y[fold.test], p)
                hist = clf.history()
                rows.append({"fold": fold.name, "accuracy": m["accuracy"], "auroc": m["auroc"], "n_test": m["n"],
                             "epochs": len(hist), "best_epoch": getattr(clf, "best_epoch_", None),
                             "chosen": getattr(clf, "chosen_", None), "seconds": time.perf_counter() - t0,
                             "ids": [cohort.ids[i] for i in fold.test], "proba": [float(v) for v in p]})
                gate = getattr(getattr(clf, "model", None), "gate", None)
                rows[-1]["gate"] = None if gate is None else float(gate.detach())
                print(key, {k: v for k, v in rows[-1].items() if k not in ("ids", "proba")}, flush=True)
                if out:
                    out.write_text(json.dumps(results, indent=1))
    return results


# Mean-combined ensembles derived from rows run above: per fold, the mean of the members'
# test-fold probabilities. This is exactly what EnsembleClassifier(combine="mean") computes
# from the same (deterministic, same-seed) members -- tests/training/test_ensemble.py checks
# that equality -- without training every member a second time on the shared CPU.
DERIVED: dict[str, list[str]] = {
    "ens(logreg+bnc) [derived]": ["logreg", "brainnetcnn"],
    "ens(logreg+bnc)+site [derived]": ["logreg+site", "brainnetcnn+site"],
    "ens(logreg+bnc+stagin) [derived]": ["logreg", "brainnetcnn", "stagin"],
    "ens(logreg+stagin-1-3) [derived]": ["logreg", "stagin-1-3"],
    "ens(logreg+stagin-1-3-loginit) [derived]": ["logreg", "stagin-1-3-loginit"],
    "ens(logreg+bnc+linear) [derived]": ["logreg", "brainnetcnn+linear"],
    "ens(logreg+bnc+linear-loginit) [derived]": ["logreg", "brainnetcnn+linear-loginit"],
    "ens(logreg+logreg-tangent) [derived]": ["logreg", "logreg-tangent"],
    "ens(logreg+stagin-1-3-frozen) [derived]": ["logreg", "stagin-1-3-frozen"],
}


def derive(results: dict, cohort_labels: dict[str, int]) -> dict:
    """Add the :data:`DERIVED` ensemble rows whose members all ran on every fold."""
    out = dict(results)
    for name, members in DERIVED.items():
        for scheme in ("loso", "kfold"):
            parts = [results.get(f"{m}/{scheme}") for m in members]
            if not all(parts) or any("proba" not in r for p in parts for r in p):
                continue
            rows = []
            n = min(len(p) for p in parts)  # the folds every member has finished (same order)
            for fold_rows in zip(*(p[:n] for p in parts), strict=True):
                ids = fold_rows[0]["ids"]
                if any(r["ids"] != ids for r in fold_rows):
                    raise SystemExit(f"{name}: members were not run on the same folds")
                p = np.mean([r["proba"] for r in fold_rows], axis=0)
                m = binary_metrics(np.array([cohort_labels[i] for i in ids]), p)
                rows.append({"fold": fold_rows[0]["fold"], "accuracy": m["accuracy"], "auroc": m["auroc"],
                             "n_test": m["n"], "seconds": sum(r["seconds"] for r in fold_rows),
                             "ids": ids, "proba": p.tolist()})
            out[f"{name}/{scheme}"] = rows
    return out


def pooled_auroc(rows: list[dict], labels: dict[str, int] | None) -> str:
    """AUROC of all held-out predictions pooled over folds (sites): unlike the per-fold mean,
    it sees whether scores are comparable across sites (what site adaptation targets)."""
    if not labels or not rows or any("proba" not in r for r in rows):
        return "n/a"
    ids = [i for r in rows for i in r["ids"]]
    p = np.concatenate([r["proba"] for r in rows])
    return f"{binary_metrics(np.array([labels[i] for i in ids]), p)['auroc']:.3f}"


def table(results: dict, labels: dict[str, int] | None = None) -> str:
    lines = ["| model | LOSO accuracy | LOSO AUROC | LOSO pooled AUROC | LOSO AUROC minus logreg, same folds "
             "| 5-fold accuracy | 5-fold AUROC | 5-fold AUROC minus logreg | s/fold |",
             "|---|---|---|---|---|---|---|---|---|"]
    names = list(dict.fromkeys(k.split("/")[0] for k in results))
    n_folds = {"loso": 7, "kfold": 5}
    for name in names:
        cells = []
        secs = []
        for scheme in ("loso", "kfold"):
            rows = results.get(f"{name}/{scheme}", [])
            part = f" ({len(rows)}/{n_folds[scheme]} folds)" if 0 < len(rows) < n_folds[scheme] else ""
            for metric in ("accuracy", "auroc"):
                v = np.array([r[metric] for r in rows], dtype=float)
                v = v[~np.isnan(v)]
                cells.append(f"{v.mean():.3f} +/- {v.std(ddof=1):.3f}{part}" if v.size > 1 else "n/a")
            base = {r["fold"]: r["auroc"] for r in results.get(f"logreg/{scheme}", [])}
            d = [r["auroc"] - base[r["fold"]] for r in rows if r["fold"] in base]
            cells.append(f"{np.mean(d):+.3f} ({sum(x > 0 for x in d)}/{len(d)} folds better)" if d else "n/a")
            if scheme == "loso":
                cells.insert(-1, pooled_auroc(rows, labels) if not part else "n/a")
            secs += [r["seconds"] for r in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(secs):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(CONFIGS))
    ap.add_argument("--schemes", nargs="+", default=["loso", "kfold"], choices=["loso", "kfold"])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-only", action="store_true", help="only print the table of --out")
    ap.add_argument("--merge", nargs="*", default=[], help="with --table-only: more result files to merge")
    args = ap.parse_args(argv)
    if args.table_only:
        results, labels = {}, None
        for f in [args.out, *args.merge]:  # later files add rows (or replace rows of the same name)
            results.update(json.loads(Path(f).read_text()))
        if args.root.joinpath("ABIDE_pcp").is_dir():
            cohort = read_abide_pcp(args.root, drop_rois=["3455"])
            labels = dict(zip(cohort.ids, cohort.labels.tolist(), strict=True))
            results = derive(results, labels)
        print(table(results, labels))
        return 0
    if not (args.root / "ABIDE_pcp").is_dir():
        print(f"ABIDE-PCP not found under {args.root}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    results = run(args.models, args.schemes, args.root, args.out)
    print(table(results))
    print("derived ensembles: --table-only --out FILE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
