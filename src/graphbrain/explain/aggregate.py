"""Cohort summaries of per-subject attributions.

* :func:`class_means`: mean attribution per class and unit (ROI, edge or window);
* :func:`class_difference`: mean(class 1) - mean(class 0) per unit with a two-sided
  permutation p-value (labels permuted within folds, so that differences between fold
  models are not mistaken for class effects; all permutations in one matrix product)
  and Benjamini-Hochberg FDR q-values (statsmodels' ``multipletests`` when installed,
  else ``scipy.stats.false_discovery_control``); Cohen's d as effect size;
* :func:`top_units`: top-k ROI or edge table by mean |attribution| with atlas labels,
  MNI coordinates, per-class means and the test above;
* :func:`fold_stability`: per fold, the top-k set of that fold's model (mean |attr|
  over its held-out subjects); mean / min pairwise Jaccard overlap across folds.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.errors import ConfigError
from graphbrain.explain.atlas import Atlas
from graphbrain.explain.attribution import Explanation


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept as NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    try:
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    except ImportError:
        from scipy.stats import false_discovery_control

        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def class_means(expl: Explanation, unit: str = "roi") -> pd.DataFrame:
    """Rows = units, one column per class (``mean_<label>``), plus ``mean_abs``."""
    a = expl.units(unit)
    out = pd.DataFrame({unit: np.arange(a.shape[1])})
    for c in np.unique(expl.labels):
        if c < 0:
            continue
        out[f"mean_{c}"] = np.nanmean(a[expl.labels == c], axis=0)
    out["mean_abs"] = np.nanmean(np.abs(a), axis=0)
    return out


def _perm_labels(y: np.ndarray, groups: np.ndarray | None, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_perm, N)`` label permutations, shuffled within each group."""
    n = y.size
    out = np.empty((n_perm, n), dtype=y.dtype)
    if groups is None:
        groups = np.zeros(n)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[:, idx] = rng.permuted(np.tile(y[idx], (n_perm, 1)), axis=1)
    return out


def class_difference(
    expl: Explanation,
    unit: str = "roi",
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    within_folds: bool = True,
) -> pd.DataFrame:
    """Per unit: ``diff`` = mean(class 1) - mean(class 0), Cohen's ``d``, permutation ``p``, BH ``q``.

    The p-value is ``(1 + #{|diff_perm| >= |diff|}) / (1 + n_permutations)`` (two-sided).
    """
    a = np.asarray(expl.units(unit), dtype=np.float64)
    y = np.asarray(expl.labels)
    keep = y >= 0
    a, y = a[keep], y[keep]
    classes = np.unique(y)
    if classes.size != 2:
        raise ConfigError(f"a class difference needs two classes, found {classes.tolist()}")
    y1 = (y == classes[1]).astype(np.float64)
    valid = np.isfinite(a)
    a0 = np.where(valid, a, 0.0)
    v = valid.astype(np.float64)

    def diff(lab: np.ndarray) -> np.ndarray:  # lab (P, N) or (N,)
        s1, c1 = lab @ a0, lab @ v
        s0, c0 = (1 - lab) @ a0, (1 - lab) @ v
        with np.errstate(invalid="ignore", divide="ignore"):
            return s1 / c1 - s0 / c0

    obs = diff(y1)
    groups = expl.folds[keep] if (within_folds and expl.folds is not None) else None
    rng = np.random.default_rng(seed)
    perm = _perm_labels(y1, groups, n_permutations, rng)
    null = diff(perm)
    exceed = (np.abs(null) >= np.abs(obs)[None, :] - 1e-12).sum(0)
    p = (1.0 + exceed) / (1.0 + n_permutations)
    p = np.where(np.isfinite(obs), p, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.nanmean(np.where(y1[:, None] == 1, a, np.nan), axis=0)
        m0 = np.nanmean(np.where(y1[:, None] == 0, a, np.nan), axis=0)
        s1 = np.nanvar(np.where(y1[:, None] == 1, a, np.nan), axis=0, ddof=1)
        s0 = np.nanvar(np.where(y1[:, None] == 0, a, np.nan), axis=0, ddof=1)
        d = (m1 - m0) / np.sqrt((s1 + s0) / 2)
    return pd.DataFrame({unit: np.arange(a.shape[1]), "diff": obs, "cohen_d": d, "p": p, "q": fdr_bh(p)})


def _edge_pairs(r: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(r, 1)


def top_units(
    expl: Explanation,
    atlas: Atlas | None = None,
    *,
    unit: str = "roi",
    k: int = 10,
    stats: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-``k`` ROIs or edges by mean |attribution| with names, coordinates and statistics."""
    imp = expl.importance(unit)
    order = np.argsort(-np.nan_to_num(imp, nan=-np.inf), kind="stable")[:k]
    means = class_means(expl, unit)
    cls_cols = [c for c in means.columns if c.startswith("mean_") and c != "mean_abs"]
    rows: dict[str, Any] = {"rank": np.arange(1, len(order) + 1), unit: order, "importance": imp[order]}
    names = atlas.labels if atlas is not None else expl.roi_names
    coords = atlas.coords if atlas is not None else None
    if unit == "roi":
        rows["roi_id"] = [atlas.ids[i] if atlas is not None else expl.roi_names[i] for i in order]
        rows["label"] = [names[i] for i in order]
        if atlas is not None and atlas.groups is not None:
            rows["group"] = [atlas.groups[i] for i in order]
        if coords is not None:
            for j, ax in enumerate("xyz"):
                rows[ax] = np.round(coords[order, j], 1)
    elif unit == "edge":
        iu = _edge_pairs(expl.n_rois)
        i, j = iu[0][order], iu[1][order]
        rows["roi_i"], rows["roi_j"] = i, j
        rows["label_i"] = [names[x] for x in i]
        rows["label_j"] = [names[x] for x in j]
        if coords is not None:
            for n_, idx in (("i", i), ("j", j)):
                for c, ax in enumerate("xyz"):
                    rows[f"{ax}_{n_}"] = np.round(coords[idx, c], 1)
    out = pd.DataFrame(rows)
    for c in cls_cols:
        out[c] = means[c].to_numpy()[order]
    if stats is not None:
        for c in ("diff", "cohen_d", "p", "q"):
            if c in stats:
                out[c] = stats[c].to_numpy()[order]
    out.insert(0, "method", expl.method)
    return out


def top_k_sets(expl: Explanation, unit: str = "roi", k: int = 10) -> dict[str, set[int]]:
    """Per fold: the top-``k`` units by mean |attribution| over the fold's subjects."""
    a = np.abs(expl.units(unit))
    folds = expl.folds if expl.folds is not None else np.full(len(a), "all")
    out = {}
    for f in pd.unique(folds):
        imp = np.nanmean(a[folds == f], axis=0)
        out[str(f)] = set(np.argsort(-np.nan_to_num(imp, nan=-np.inf), kind="stable")[:k].tolist())
    return out


def jaccard(a: set[int], b: set[int]) -> float:
    u = a | b
    return len(a & b) / len(u) if u else 1.0


def fold_stability(expl: Explanation, unit: str = "roi", k: int = 10) -> dict[str, Any]:
    """Mean, sd and min of the pairwise Jaccard overlap of the folds' top-``k`` sets.

    Also ``chance``: the expected Jaccard of two random ``k``-sets out of the units.
    """
    sets = top_k_sets(expl, unit, k)
    vals = [jaccard(sets[a], sets[b]) for a, b in combinations(sets, 2)]
    m = expl.units(unit).shape[1]
    # E|A & B| = k^2/m for random k-sets; Jaccard ~ E|A&B| / (2k - E|A&B|)
    inter = k * k / m
    return {
        "method": expl.method,
        "unit": unit,
        "k": k,
        "n_folds": len(sets),
        "jaccard_mean": float(np.mean(vals)) if vals else float("nan"),
        "jaccard_sd": float(np.std(vals)) if vals else float("nan"),
        "jaccard_min": float(np.min(vals)) if vals else float("nan"),
        "chance": float(inter / (2 * k - inter)),
    }


def precision_at_k(expl: Explanation, truth: list[int], k: int | None = None, unit: str = "roi") -> float:
    """Fraction of the top-``k`` units (default ``k = len(truth)``) that are in ``truth``."""
    k = k or len(truth)
    top = np.argsort(-np.nan_to_num(expl.importance(unit), nan=-np.inf), kind="stable")[:k]
    return float(np.isin(top, np.asarray(truth)).mean())
