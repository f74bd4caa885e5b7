"""Figures for explanations (matplotlib + nilearn plotting), each saved as PNG and SVG.

Every function takes an output folder and a file stem, writes ``<stem>.png`` and
``<stem>.svg`` and returns the PNG path (``None`` when the figure cannot be drawn, e.g.
glass-brain plots without ROI coordinates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from graphbrain.explain.atlas import Atlas
from graphbrain.explain.attribution import Explanation, edges_to_matrix


def _plt():  # noqa: ANN202 - matplotlib is imported lazily, headless
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


#: File formats written besides PNG (the report embeds the PNG); ``explain_run`` sets it.
EXTRA_FORMATS: tuple[str, ...] = ("svg",)


def _save(fig: object, out: Path, stem: str, *, tight: bool = True) -> Path:
    """``tight=False`` for nilearn glass brains: they fill their figure already, and a
    tight bounding box would draw the (heavy) brain outlines twice per file."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{stem}.png"
    bbox = "tight" if tight else None
    fig.savefig(png, dpi=100, bbox_inches=bbox)  # type: ignore[attr-defined]
    for ext in EXTRA_FORMATS:
        fig.savefig(out / f"{stem}.{ext}", bbox_inches=bbox)  # type: ignore[attr-defined]
    _plt().close(fig)  # type: ignore[arg-type]
    return png


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k]


def glass_brain_rois(expl: Explanation, atlas: Atlas | None, out: Path, stem: str, k: int = 10) -> Path | None:
    """Markers at the top-``k`` ROIs (size/colour = mean |attribution|), glass brain."""
    if atlas is None or atlas.coords is None:
        return None
    from nilearn import plotting

    imp = expl.importance("roi")
    top = [i for i in _top(imp, k) if np.all(np.isfinite(atlas.coords[i]))]
    if not top:
        return None
    plt = _plt()
    fig = plt.figure(figsize=(9, 3.2))
    vals = imp[top]
    plotting.plot_markers(
        vals, atlas.coords[top], node_size=40 + 160 * vals / vals.max(), node_cmap="viridis",
        figure=fig, title=f"top {len(top)} ROIs: {expl.method}", colorbar=True,
    )
    return _save(fig, out, stem, tight=False)


def glass_brain_edges(
    expl: Explanation, atlas: Atlas | None, out: Path, stem: str, k: int = 20, values: np.ndarray | None = None
) -> Path | None:
    """Connectome of the top-``k`` edges by mean |attribution| (colour = ``values``, default class difference)."""
    if atlas is None or atlas.coords is None or expl.edge is None:
        return None
    from nilearn import plotting

    imp = expl.importance("edge")
    top = _top(imp, k)
    r = expl.n_rois
    if values is None:
        y = expl.labels
        values = np.nanmean(expl.edge[y == y.max()], 0) - np.nanmean(expl.edge[y == y.min()], 0)
    vec = np.zeros(imp.shape)
    vec[top] = values[top]
    mat = edges_to_matrix(vec, r)
    nodes = np.flatnonzero(np.abs(mat).sum(1) > 0)
    nodes = nodes[np.all(np.isfinite(atlas.coords[nodes]), axis=1)]
    if nodes.size < 2:
        return None
    plt = _plt()
    fig = plt.figure(figsize=(9, 3.2))
    vmax = float(np.abs(mat).max()) or 1.0
    plotting.plot_connectome(
        mat[np.ix_(nodes, nodes)], atlas.coords[nodes], node_size=25, edge_cmap="RdBu_r",
        edge_vmin=-vmax, edge_vmax=vmax, figure=fig, colorbar=True,
        title=f"top {k} edges: {expl.method} (colour: class 1 - class 0)",
    )
    return _save(fig, out, stem, tight=False)


def class_heatmaps(expl: Explanation, atlas: Atlas | None, out: Path, stem: str, class_names: dict | None = None) -> Path:
    """Per-class mean attribution in atlas order (edges as ``R x R`` matrices when available).

    ROIs are grouped by network / lobe when the atlas gives groups; group boundaries are
    drawn as lines.
    """
    plt = _plt()
    order = atlas.order() if atlas is not None else np.arange(expl.n_rois)
    groups = [atlas.groups[i] for i in order] if atlas is not None and atlas.groups is not None else None
    y = expl.labels
    classes = [c for c in np.unique(y) if c >= 0]
    names = class_names or {}
    title = {c: f"class {c}" + (f" ({names[c]})" if c in names else "") for c in classes}
    if expl.edge is not None:
        mats = [edges_to_matrix(np.nanmean(expl.edge[y == c], 0), expl.n_rois)[np.ix_(order, order)] for c in classes]
        panels = [*mats, mats[-1] - mats[0]]
        heads = [title[c] for c in classes] + ["difference (last - first)"]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4))
        for ax, m, h in zip(np.atleast_1d(axes), panels, heads):
            v = float(np.nanmax(np.abs(m))) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-v, vmax=v, interpolation="nearest")
            ax.set_title(h, fontsize=10)
            ax.set_xlabel("ROI (atlas order)")
            _group_lines(ax, groups, square=True)
            fig.colorbar(im, ax=ax, shrink=0.75)
        fig.suptitle(f"mean edge attribution per class: {expl.method}", fontsize=11)
    else:
        rows = [np.nanmean(expl.roi[y == c], 0)[order] for c in classes]
        rows.append(rows[-1] - rows[0])
        fig, ax = plt.subplots(figsize=(min(18, 2 + 0.12 * expl.n_rois), 2.4))
        m = np.stack(rows)
        v = float(np.nanmax(np.abs(m))) or 1.0
        im = ax.imshow(m, cmap="RdBu_r" if expl.signed else "magma", aspect="auto",
                       vmin=-v if expl.signed else None, vmax=v, interpolation="nearest")
        ax.set_yticks(range(len(rows)), [title[c] for c in classes] + ["difference"])
        ax.set_xlabel("ROI (atlas order)")
        _group_lines(ax, groups, square=False)
        fig.colorbar(im, ax=ax)
        ax.set_title(f"mean ROI attribution per class: {expl.method}", fontsize=10)
    return _save(fig, out, stem)


def _group_lines(ax: object, groups: list[str] | None, *, square: bool) -> None:
    if not groups:
        return
    cuts = [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
    edges = [0, *cuts, len(groups)]
    centres = [(a + b - 1) / 2 for a, b in zip(edges[:-1], edges[1:])]
    ax.set_xticks(centres, [groups[a] for a in edges[:-1]], rotation=90, fontsize=7)  # type: ignore[attr-defined]
    ax.set_xlabel("ROI (atlas order, grouped)")  # type: ignore[attr-defined]
    if square:
        ax.set_yticks(centres, [groups[a] for a in edges[:-1]], fontsize=7)  # type: ignore[attr-defined]
    for c in cuts:
        ax.axvline(c - 0.5, color="k", lw=0.4)  # type: ignore[attr-defined]
        if square:
            ax.axhline(c - 0.5, color="k", lw=0.4)  # type: ignore[attr-defined]


def temporal(
    expl: Explanation, out: Path, stem: str, *, tr: float | None = None, planted: tuple[int, int] | None = None
) -> Path | None:
    """Attribution per window over the scan: mean +/- s.e.m. per class (window centres)."""
    if expl.window is None:
        return None
    plt = _plt()
    w = expl.window
    if expl.window_times is not None:
        centre = expl.window_times[: w.shape[1]].mean(1)
        xlabel = "time point (window centre)"
    else:
        centre = np.arange(w.shape[1])
        xlabel = "window"
    if tr and expl.window_times is not None:
        centre = centre * tr
        xlabel = "time (s, window centre)"
    fig, ax = plt.subplots(figsize=(7, 3.2))
    vals = np.abs(w) if expl.signed else w
    for c in [c for c in np.unique(expl.labels) if c >= 0]:
        sel = vals[expl.labels == c]
        m = np.nanmean(sel, 0)
        se = np.nanstd(sel, 0) / np.sqrt(np.maximum(np.isfinite(sel).sum(0), 1))
        ax.plot(centre, m, label=f"class {c}")
        ax.fill_between(centre, m - se, m + se, alpha=0.25)
    if planted is not None:
        a, b = planted
        if tr and expl.window_times is not None:
            a, b = a * tr, b * tr
        ax.axvspan(a, b, color="orange", alpha=0.15, label="planted window")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("|attribution|" if expl.signed else "attention")
    ax.set_title(f"temporal attribution: {expl.method}", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, out, stem)


def deletion_curves(curves: pd.DataFrame, out: Path, stem: str) -> Path | None:
    """Deletion and insertion curves per unit; one line per method, random rankings dashed."""
    if curves.empty:
        return None
    plt = _plt()
    units = list(dict.fromkeys(curves["unit"]))
    fig, axes = plt.subplots(2, len(units), figsize=(4.2 * len(units), 6.2), squeeze=False)
    for j, unit in enumerate(units):
        for i, kind in enumerate(("deletion", "insertion")):
            ax = axes[i, j]
            sub = curves[(curves["unit"] == unit) & (curves["curve"] == kind)]
            for m, g in sub.groupby("method", sort=False):
                ax.plot(g["fraction"], g["score"], ls="--" if m.startswith("random") else "-",
                        color="grey" if m.startswith("random") else None, label=m, marker=".")
            ax.set_title(f"{kind}: {unit}s", fontsize=10)
            ax.set_xlabel(f"fraction of {unit}s {'removed' if kind == 'deletion' else 'restored'}")
            ax.set_ylabel("P(predicted class)")
            ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, stem)


def roc_curve(labels: np.ndarray, proba: np.ndarray, out: Path, stem: str, folds: np.ndarray | None = None) -> Path | None:
    """Pooled out-of-fold ROC curve (and one thin curve per fold with both classes)."""
    from sklearn.metrics import auc
    from sklearn.metrics import roc_curve as _roc

    ok = labels >= 0
    labels, proba = labels[ok], proba[ok]
    if np.unique(labels).size < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    if folds is not None:
        folds = folds[ok]
        for f in pd.unique(folds):
            s = folds == f
            if np.unique(labels[s]).size == 2:
                fpr, tpr, _ = _roc(labels[s], proba[s])
                ax.plot(fpr, tpr, color="grey", lw=0.6, alpha=0.5)
    fpr, tpr, _ = _roc(labels, proba)
    ax.plot(fpr, tpr, lw=2, label=f"pooled AUROC {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC (out-of-fold; grey: per fold)", fontsize=10)
    return _save(fig, out, stem)


def confusion(labels: np.ndarray, pred: np.ndarray, out: Path, stem: str) -> Path | None:
    from sklearn.metrics import ConfusionMatrixDisplay

    ok = labels >= 0
    if not ok.any():
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ConfusionMatrixDisplay.from_predictions(labels[ok], pred[ok], ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("confusion matrix (out-of-fold)", fontsize=10)
    return _save(fig, out, stem)
