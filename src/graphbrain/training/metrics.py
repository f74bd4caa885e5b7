"""Binary classification metrics per fold and their summary over folds.

Positive class = label 1 (e.g. autism in ABIDE). ``sensitivity`` = TP/(TP+FN),
``specificity`` = TN/(TN+FP), ``balanced_accuracy`` = their mean, ``f1`` on the positive
class, ``auroc`` from the positive-class probability (NaN when the fold holds one class).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

METRICS = ("accuracy", "balanced_accuracy", "auroc", "sensitivity", "specificity", "f1")


def binary_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All metrics for one set of predictions; ``proba`` is P(label = 1), shape ``(N,)``."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    if math.isnan(sens) or math.isnan(spec):
        bacc = sens if math.isnan(spec) else spec
    else:
        bacc = (sens + spec) / 2
    auroc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(bacc),
        "auroc": auroc,
        "sensitivity": float(sens),
        "specificity": float(spec),
        "f1": float(f1_score(y, pred, zero_division=0.0)),
        "n": int(y.size),
    }


def summarize(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (ddof=1) of each metric over folds, ignoring NaN."""
    out: dict[str, dict[str, float]] = {}
    for m in METRICS:
        vals = np.asarray([f[m] for f in per_fold if m in f], dtype=float)
        vals = vals[~np.isnan(vals)]
        out[m] = {
            "mean": float(vals.mean()) if vals.size else float("nan"),
            "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0 if vals.size else float("nan"),
            "n_folds": int(vals.size),
        }
    return out
