"""Per-subject attributions for every model, one interface: :func:`explain`.

Methods (``method=``):

* ``"linear"`` (``logreg``, ``svm``): exact contributions. The linear score of subject
  ``n`` is ``f_n = b + sum_e w_e z_ne`` with ``z`` the standardised FC edge (training-fold
  scaler), so ``c_ne = w_e z_ne`` sums exactly to ``f_n - b``. Edges are reported on the
  ``(R, R)`` upper triangle; a ROI gets half the sum of its incident edges, so ROI
  attributions also sum to ``f_n - b``.
* ``"integrated_gradients"``, ``"saliency"``, ``"input_x_gradient"`` (every torch
  model, through Captum): gradients of the log-odds ``logit_1 - logit_0`` with respect to
  the model input (``"fc"`` ``(R, R)`` or ``"dfc"`` ``(W, R, R)``). Because a connectome
  is symmetric, edge ``(i, j)`` gets ``A_ij + A_ji``; windows get the sum over their
  edges; ROIs half the sum of incident edges (over all windows). Integrated gradients
  use the zero input as baseline (for standardised static FC: the training-fold mean
  connectome) and satisfy completeness: attributions sum to ``f(x) - f(0)``.
  Saliency is ``|gradient|`` (unsigned).
* ``"attention"``: what the model itself exposes (``clf.explain()``): STAGIN spatial
  ``(W, R)`` (ROI = mean over windows) and temporal ``(W,)`` attention; BNT attention
  received per ROI, the last layer's ``(R, R)`` attention (edges, mean over heads,
  symmetrised) and the soft cluster assignments ``(R, K)`` (in ``extra``); BrainNetCNN's
  node energy; GAT attention received; for linear models |contribution| per ROI.

Sign convention: signed attributions point towards class index 1 (the larger label;
autism in ABIDE-PCP). Attention and saliency are unsigned (``Explanation.signed``).

Given a :class:`~graphbrain.pipeline.result.PipelineResult` (or anything with
``predictions``, ``config``, ``output_dir``) instead of a classifier, each fold's model
explains its own held-out subjects and the rows line up with ``result.predictions``.
Fold models are read from ``run_dir/models/`` (written by ``graphbrain run ...
explain=true``); a run without them is refitted fold by fold from its configuration
(``refit=True``), using the folds recorded in ``predictions.parquet``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.explain._inputs import (
    input_batches,
    input_key,
    is_linear,
    is_torch,
    linear_inputs,
)

log = logging.getLogger(__name__)

GRADIENT_METHODS = ("integrated_gradients", "saliency", "input_x_gradient")
METHODS = ("linear", "attention", *GRADIENT_METHODS)
MODELS_DIR = "models"


# -- edge / ROI bookkeeping ----------------------------------------------------------------
def n_rois_from_edges(n_edges: int) -> int:
    r = int(round((1 + np.sqrt(1 + 8 * n_edges)) / 2))
    if r * (r - 1) // 2 != n_edges:
        raise DataError(f"{n_edges} values are not the strict triangle of a square matrix")
    return r


def tril_to_triu(vec: np.ndarray, r: int) -> np.ndarray:
    """Re-order nilearn's lower-triangle vectors ``(..., E)`` to upper-triangle order."""
    idx = np.zeros((r, r), dtype=np.int64)
    idx[np.tril_indices(r, -1)] = np.arange(r * (r - 1) // 2)
    return vec[..., idx.T[np.triu_indices(r, 1)]]


def edges_to_matrix(edge: np.ndarray, r: int) -> np.ndarray:
    """Upper-triangle vectors ``(..., E)`` -> symmetric ``(..., R, R)`` (zero diagonal)."""
    out = np.zeros((*edge.shape[:-1], r, r), dtype=np.float64)
    iu = np.triu_indices(r, 1)
    out[..., iu[0], iu[1]] = edge
    out[..., iu[1], iu[0]] = edge
    return out


def roi_from_edges(edge: np.ndarray, r: int) -> np.ndarray:
    """ROI attribution = half the sum of the incident edges' attributions ``(..., R)``."""
    iu = np.triu_indices(r, 1)
    inc = np.zeros((edge.shape[-1], r))
    inc[np.arange(edge.shape[-1]), iu[0]] = 0.5
    inc[np.arange(edge.shape[-1]), iu[1]] = 0.5
    return np.asarray(edge, dtype=np.float64) @ inc


@dataclass
class Explanation:
    """Per-subject attributions of one method; rows follow ``subject_ids``.

    Attributes:
        method, model: attribution method and model name.
        roi: ``(N, R)``.
        edge: ``(N, R(R-1)/2)`` in ``np.triu_indices(R, 1)`` order, or ``None``.
        window: ``(N, W)`` per sliding window (NaN past a subject's last window), or ``None``.
        signed: ``True`` when positive values push towards class index 1.
        subject_ids, labels: one per row; ``folds`` (:func:`fold_key`, ``r<repeat>-<fold>``)
            when from a run.
        roi_names: ``R`` ROI names (atlas label ids for ABIDE-PCP, e.g. ``"10"``).
        window_times: ``(W, 2)`` start / stop time point of each window, when known.
        extra: other per-subject arrays (``"roi_window"`` ``(N, W, R)``, ``"cluster"`` ...).
        proba: P(class index 1) per row when known (from the run's predictions).
    """

    method: str
    model: str
    roi: np.ndarray
    edge: np.ndarray | None
    window: np.ndarray | None
    signed: bool
    subject_ids: list[str]
    labels: np.ndarray
    roi_names: list[str]
    folds: np.ndarray | None = None
    window_times: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    proba: np.ndarray | None = None

    @property
    def n_rois(self) -> int:
        return int(self.roi.shape[1])

    def importance(self, unit: str = "roi") -> np.ndarray:
        """Cohort importance per unit: mean over subjects of ``|attribution|``."""
        a = self.units(unit)
        return np.nanmean(np.abs(a), axis=0)

    def units(self, unit: str) -> np.ndarray:
        a = {"roi": self.roi, "edge": self.edge, "window": self.window}.get(unit)
        if a is None:
            raise ConfigError(f"method {self.method!r} on model {self.model!r} has no {unit!r} attributions")
        return a

    def frame(self, unit: str = "roi") -> pd.DataFrame:
        """Long table: subject_id, label, fold, unit index, attribution."""
        a = self.units(unit)
        n, k = a.shape
        df = pd.DataFrame(
            {
                "subject_id": np.repeat(np.asarray(self.subject_ids), k),
                "label": np.repeat(self.labels, k),
                "fold": np.repeat(self.folds if self.folds is not None else np.full(n, ""), k),
                unit: np.tile(np.arange(k), n),
                "attribution": a.ravel(),
            }
        )
        df.insert(0, "method", self.method)
        return df


# -- linear ----------------------------------------------------------------------------
def _linear(clf: Any, cohort: Cohort) -> dict[str, Any]:
    z, w, _ = linear_inputs(clf, cohort)
    r = n_rois_from_edges(z.shape[1])
    edge = tril_to_triu(z * w, r)
    return {"roi": roi_from_edges(edge, r), "edge": edge, "window": None, "signed": True, "extra": {}}


# -- attention -------------------------------------------------------------------------
def _from_attention(att: dict[str, np.ndarray], n_rois: int | None) -> dict[str, Any]:
    extra: dict[str, np.ndarray] = {}
    roi = edge = window = None
    if "spatial" in att:
        sp = np.asarray(att["spatial"], dtype=np.float64)
        roi = np.nanmean(sp, axis=1)
        extra["roi_window"] = sp
    if "temporal" in att:
        window = np.asarray(att["temporal"], dtype=np.float64)
    if "node" in att and roi is None:
        roi = np.asarray(att["node"], dtype=np.float64)
    if "attention" in att:
        a = np.asarray(att["attention"], dtype=np.float64)
        if a.ndim == 4:
            a = a.mean(axis=1)
        r = a.shape[-1]
        edge = ((a + np.swapaxes(a, 1, 2)) / 2)[:, *np.triu_indices(r, 1)]
    if "cluster" in att:
        extra["cluster"] = np.asarray(att["cluster"], dtype=np.float64)
    if roi is None and edge is not None:
        roi = roi_from_edges(edge, n_rois_from_edges(edge.shape[1]))
    if roi is None:
        raise ConfigError(
            f"the model's attention record has no ROI-level entry (keys: {sorted(att)}); "
            "use a gradient method instead"
        )
    return {"roi": roi, "edge": edge, "window": window, "signed": False, "extra": extra}


# -- gradients (Captum) ------------------------------------------------------------------
def _captum_method(method: str, fwd: Any) -> Any:
    try:
        from captum.attr import InputXGradient, IntegratedGradients, Saliency
    except ImportError as err:  # pragma: no cover - captum is a dependency
        from graphbrain.errors import MissingDependencyError

        raise MissingDependencyError("gradient attributions need captum: pip install captum") from err
    return {"integrated_gradients": IntegratedGradients, "saliency": Saliency, "input_x_gradient": InputXGradient}[
        method
    ](fwd)


def _gradients(clf: Any, cohort: Cohort, method: str, *, n_steps: int = 32, batch_size: int = 16) -> dict[str, Any]:
    import torch

    key = input_key(clf)
    model = clf.model
    was_training = model.training
    model.eval()
    n = len(cohort)
    sums: dict[int, dict[str, np.ndarray]] = {}
    counts = np.zeros(n, dtype=np.int64)
    try:
        for rows, batch in input_batches(clf, cohort, batch_size):
            # Dynamic models with a linear path also read the static FC "fc": it is attributed
            # too (a second Captum input), so that the attributions cover the whole model.
            keys = [key, "fc"] if key != "fc" and torch.is_tensor(batch.get("fc")) else [key]
            xs = tuple(batch[k].detach().float() for k in keys)
            tensors = [(k, v) for k, v in batch.items() if k not in keys and torch.is_tensor(v)]
            fixed = {k: v for k, v in batch.items() if k not in keys and not torch.is_tensor(v)}
            names = [k for k, _ in tensors]
            n_in = len(keys)

            def fwd(*args: Any, _names: list[str] = names, _fixed: dict[str, Any] = fixed, _keys: list[str] = keys, _n: int = n_in) -> Any:
                b = {**_fixed, **dict(zip(_names, args[_n:])), **dict(zip(_keys, args[:_n]))}
                logits = model(b).logits.float()
                if logits.shape[1] != 2:
                    raise ConfigError("gradient attributions are implemented for two-class models")
                # inputs reached only through non-differentiable steps (top-k graphs) get
                # zero gradient instead of an autograd "unused input" error
                keep = sum(0.0 * a.reshape(a.shape[0], -1).sum(1) for a in args[:_n])
                return logits[:, 1] - logits[:, 0] + keep

            algo = _captum_method(method, fwd)
            kwargs: dict[str, Any] = {"additional_forward_args": tuple(v for _, v in tensors) or None}
            if method == "integrated_gradients":
                kwargs.update(
                    baselines=tuple(torch.zeros_like(x) for x in xs), n_steps=n_steps,
                    internal_batch_size=max(len(rows), 1) * 4,
                )
            if method == "saliency":
                kwargs["abs"] = True
            with torch.enable_grad():
                att = algo.attribute(tuple(x.clone().requires_grad_(True) for x in xs), **kwargs)
            att = [t.detach().double().cpu().numpy() for t in att]
            a = att[0]
            mask = batch.get("mask")
            parts = _reduce_input_attr(a, key, None if mask is None else mask.detach().cpu().numpy())
            if n_in == 2:  # the linear path's static-FC attribution adds to edges and ROIs
                static = _reduce_input_attr(att[1], "fc", None)
                parts["edge"] = parts["edge"] + static["edge"]
                parts["roi"] = parts["roi"] + static["roi"]
            for j, row in enumerate(rows):
                row = int(row)
                counts[row] += 1
                got = {k: v[j] for k, v in parts.items()}
                if row in sums:
                    for k in got:
                        sums[row][k] = _add_padded(sums[row][k], got[k])
                else:
                    sums[row] = got
    finally:
        model.train(was_training)
    if (counts == 0).any():
        raise DataError(f"{int((counts == 0).sum())} subjects got no model input batch", source=cohort.name)
    out = {k: [sums[i][k] / counts[i] for i in range(n)] for k in sums[0]}
    roi = np.stack(out["roi"])
    edge = np.stack(out["edge"])
    window = _pad_stack(out["window"]) if "window" in out else None
    extra = {"roi_window": _pad_stack(out["roi_window"])} if "roi_window" in out else {}
    if not np.any(np.abs(edge) > 0):
        log.warning(
            "%s of model %r is zero everywhere: the model's output does not depend smoothly on "
            "its input values (e.g. STAGIN without a linear path only sees thresholded graphs)",
            method,
            clf.model_name,
        )
    return {"roi": roi, "edge": edge, "window": window, "signed": method != "saliency", "extra": extra}


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape == b.shape:
        return a + b
    n = max(a.shape[0], b.shape[0])
    pa = np.zeros((n, *a.shape[1:]))
    pb = np.zeros((n, *b.shape[1:]))
    pa[: a.shape[0]] = a
    pb[: b.shape[0]] = b
    return pa + pb


def _pad_stack(items: list[np.ndarray]) -> np.ndarray:
    w = max(x.shape[0] for x in items)
    out = np.full((len(items), w, *items[0].shape[1:]), np.nan)
    for i, x in enumerate(items):
        out[i, : x.shape[0]] = x
    return out


def _reduce_input_attr(a: np.ndarray, key: str, mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """Input attribution ``(B, R, R)`` / ``(B, W, R, R)`` -> roi, edge, window (+ roi_window)."""
    r = a.shape[-1]
    s = a + np.swapaxes(a, -1, -2)
    iu = np.triu_indices(r, 1)
    if a.ndim == 3:
        edge = s[:, iu[0], iu[1]]
        return {"edge": edge, "roi": roi_from_edges(edge, r)}
    if mask is not None and mask.shape == s.shape[:2]:
        s = s * mask[:, :, None, None]
    ew = s[:, :, iu[0], iu[1]]  # (B, W, E)
    edge = ew.sum(1)
    out = {"edge": edge, "roi": roi_from_edges(edge, r), "window": ew.sum(-1), "roi_window": roi_from_edges(ew, r)}
    if mask is not None and mask.shape == s.shape[:2]:
        out["window"] = np.where(mask > 0, out["window"], np.nan)
    return out


# -- dispatch ----------------------------------------------------------------------------
def default_method(clf_or_model: Any) -> str:
    name = clf_or_model if isinstance(clf_or_model, str) else getattr(clf_or_model, "model_name", "")
    from graphbrain.models import get_model_spec

    return "linear" if get_model_spec(name).kind == "sklearn" else "integrated_gradients"


def available_methods(model_name: str) -> list[str]:
    """Methods that apply to a registered model (``linear`` only for scikit-learn models)."""
    from graphbrain.models import get_model_spec

    if get_model_spec(model_name).kind == "sklearn":
        return ["linear", "attention"]
    return ["attention", *GRADIENT_METHODS]


def _window_times(clf: Any, n_windows: int | None) -> np.ndarray | None:
    win, stride = getattr(clf, "window_", None), getattr(clf, "stride_", None)
    if not n_windows or not win or not stride:
        return None
    start = np.arange(n_windows) * int(stride)
    return np.stack([start, start + int(win)], axis=1)


def explain_classifier(clf: Any, cohort: Cohort, method: str = "auto", **kw: Any) -> Explanation:
    """Attributions of one fitted classifier for every subject of ``cohort`` (same order)."""
    if method == "auto":
        method = default_method(clf)
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "linear":
        if not is_linear(clf):
            raise ConfigError(
                f"method 'linear' needs a linear model (logreg, svm), not {clf.model_name!r}; "
                f"use one of {', '.join(GRADIENT_METHODS)}"
            )
        parts = _linear(clf, cohort)
    elif method == "attention":
        parts = _from_attention(clf.explain(cohort), cohort.n_rois)
    else:
        if not is_torch(clf):
            raise ConfigError(f"method {method!r} needs a torch model; for {clf.model_name!r} use 'linear'")
        parts = _gradients(clf, cohort, method, **kw)
    w = None if parts["window"] is None else parts["window"].shape[1]
    return Explanation(
        method=method,
        model=clf.model_name,
        roi=parts["roi"],
        edge=parts["edge"],
        window=parts["window"],
        signed=parts["signed"],
        subject_ids=list(cohort.ids),
        labels=np.asarray(cohort.labels),
        roi_names=list(cohort.roi_names or [f"ROI{i:03d}" for i in range(parts["roi"].shape[1])]),
        window_times=_window_times(clf, w),
        extra=parts["extra"],
    )


# -- runs --------------------------------------------------------------------------------
def fold_key(repeat: Any, fold: Any) -> str:
    """Folder name of a fold model: ``r<repeat>-<fold>`` with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"r{int(repeat)}-{fold}")


def fold_models(result: Any, cohort: Cohort | None = None, *, refit: bool = True, progress: bool = False) -> dict[str, Any]:
    """``{fold_key: fitted classifier}`` for every fold of a run.

    Saved models (``run_dir/models/<fold_key>/``) are loaded; otherwise, with ``refit``,
    each fold is refitted from the run's configuration on the same training subjects
    (all subjects of ``cohort`` not in that fold's test rows of ``predictions``).
    """
    from graphbrain.training import build_classifier, load_classifier

    pred = result.predictions
    groups = pred.groupby(["repeat", "fold"], sort=False)
    out: dict[str, Any] = {}
    run_dir = Path(result.output_dir) if getattr(result, "output_dir", None) else None
    cached = getattr(result, "fold_models", None) or {}
    missing: list[tuple[str, pd.DataFrame]] = []
    for (rep, fold), rows in groups:
        k = fold_key(rep, fold)
        if k in cached:
            out[k] = cached[k]
        elif run_dir is not None and (run_dir / MODELS_DIR / k / "classifier.json").exists():
            out[k] = load_classifier(run_dir / MODELS_DIR / k)
        else:
            missing.append((k, rows))
    if missing:
        if not refit or cohort is None:
            raise ConfigError(
                f"{run_dir or 'the run'}: no saved fold models for {[k for k, _ in missing][:3]}...; "
                "rerun with explain=true (saves them in models/) or allow refitting with the cohort"
            )
        kwargs = _classifier_kwargs(result.config, cohort)
        index = {sid: i for i, sid in enumerate(cohort.ids)}
        from tqdm.auto import tqdm

        for k, rows in tqdm(missing, desc="refit fold models", disable=not progress):
            test = {str(s) for s in rows["subject_id"]}
            train_idx = [i for sid, i in index.items() if sid not in test]
            clf = build_classifier(**kwargs)
            clf.fit(cohort.subset(train_idx))
            out[k] = clf
    return out


def _classifier_kwargs(cfg: dict[str, Any], cohort: Cohort) -> dict[str, Any]:
    """Classifier arguments from a saved run configuration (as the pipeline builds them).

    Refitting reproduces plain runs; runs with ``adapt`` or ``search`` enabled should be
    explained from their saved fold models (``explain=true``).
    """
    from graphbrain.models import get_model_spec

    m = dict(cfg.get("model", {}))
    name = m.pop("name")
    conn = dict(cfg.get("connectome", {}) or {})
    if get_model_spec(name).kind == "torch":
        from graphbrain.training.torch_estimator import CONNECTOME_DEFAULTS

        crops = (cfg.get("predict") or {}).get("crops")
        if crops is not None and "predict_crops" in CONNECTOME_DEFAULTS and conn.get("predict_crops") is None:
            conn["predict_crops"] = crops
    return {
        "model": name,
        "model_params": m,
        "connectome": conn,
        "train": {**dict(cfg.get("train", {}) or {}), "progress": False},
        "seed": int(cfg.get("seed", 0)),
    }


def _align(result: Any, cohort: Cohort) -> tuple[pd.DataFrame, dict[str, int]]:
    index = {str(sid): i for i, sid in enumerate(cohort.ids)}
    pred = result.predictions
    missing = sorted(set(pred["subject_id"].astype(str)) - set(index))
    if missing:
        raise DataError(
            f"{len(missing)} subjects of the run's predictions are not in the cohort given "
            f"(e.g. {missing[:3]}); pass the cohort the run was made on",
            source=str(getattr(result, "output_dir", "") or "result"),
            reason="missing_subjects",
        )
    return pred, index


def explain_result(
    result: Any,
    cohort: Cohort,
    method: str = "auto",
    *,
    models: dict[str, Any] | None = None,
    refit: bool = True,
    progress: bool = False,
    **kw: Any,
) -> Explanation:
    """Attributions of a cross-validated run: each fold's model on its held-out subjects."""
    model_name = result.config["model"]["name"]
    if method == "auto":
        method = default_method(model_name)
    pred, index = _align(result, cohort)
    n = len(pred)
    if method == "attention" and getattr(result, "attention", None):
        att = result.attention
        sizes = {k: v.shape[0] for k, v in att.items()}
        if all(s == n for s in sizes.values()):
            parts = _from_attention(att, cohort.n_rois)
            conn = result.config.get("connectome") or {}
            if parts["window"] is not None and conn.get("window") and conn.get("stride") and not conn.get("window_seconds"):
                start = np.arange(parts["window"].shape[1]) * int(conn["stride"])
                parts["window_times"] = np.stack([start, start + int(conn["window"])], axis=1)
            return _assemble(method, model_name, parts, pred, cohort, None)
    models = models if models is not None else fold_models(result, cohort, refit=refit, progress=progress)
    pieces: list[tuple[np.ndarray, Explanation]] = []
    any_clf = None
    for (rep, fold), rows in pred.groupby(["repeat", "fold"], sort=False):
        clf = models[fold_key(rep, fold)]
        any_clf = clf
        sub = cohort.subset([index[str(s)] for s in rows["subject_id"]])
        pieces.append((rows.index.to_numpy(), explain_classifier(clf, sub, method, **kw)))
    parts = _merge(pieces, n)
    return _assemble(method, model_name, parts, pred, cohort, any_clf)


def _merge(pieces: Iterable[tuple[np.ndarray, Explanation]], n: int) -> dict[str, Any]:
    pieces = list(pieces)
    first = pieces[0][1]

    def gather(get: Any) -> np.ndarray | None:
        vals = [get(e) for _, e in pieces]
        if any(v is None for v in vals):
            return None
        width = max(v.shape[1] for v in vals)
        out = np.full((n, width, *vals[0].shape[2:]), np.nan)
        for (rows, _), v in zip(pieces, vals):
            out[rows, : v.shape[1]] = v
        return out

    extra = {}
    for k in first.extra:
        g = gather(lambda e, k=k: e.extra.get(k))
        if g is not None:
            extra[k] = g
    return {
        "roi": gather(lambda e: e.roi),
        "edge": gather(lambda e: e.edge),
        "window": gather(lambda e: e.window),
        "signed": first.signed,
        "extra": extra,
        "window_times": first.window_times,
    }


def _assemble(method: str, model: str, parts: dict[str, Any], pred: pd.DataFrame, cohort: Cohort, clf: Any) -> Explanation:
    wt = parts.get("window_times")
    if wt is None and parts["window"] is not None:
        wt = _window_times(clf, parts["window"].shape[1]) if clf is not None else None
    return Explanation(
        method=method,
        model=model,
        roi=parts["roi"],
        edge=parts["edge"],
        window=parts["window"],
        signed=parts["signed"],
        subject_ids=pred["subject_id"].astype(str).tolist(),
        labels=pred["label"].to_numpy(),
        roi_names=list(cohort.roi_names or [f"ROI{i:03d}" for i in range(parts["roi"].shape[1])]),
        folds=np.array([fold_key(r, f) for r, f in zip(pred["repeat"], pred["fold"])]),
        window_times=wt,
        extra=parts["extra"],
        proba=pred["proba"].to_numpy() if "proba" in pred else None,
    )


def explain(classifier_or_result: Any, cohort: Cohort, method: str = "auto", **kw: Any) -> Explanation:
    """Per-subject attributions of a fitted classifier or of a cross-validated run.

    Args:
        classifier_or_result: a fitted :class:`~graphbrain.training.CohortClassifier`
            (rows = ``cohort``'s subjects) or a ``PipelineResult`` (rows =
            ``result.predictions``; each fold's model explains its own test subjects).
        cohort: the subjects (for a run: the cohort the run was made on).
        method: ``"linear"``, ``"attention"``, ``"integrated_gradients"``, ``"saliency"``,
            ``"input_x_gradient"`` or ``"auto"`` (linear for logreg/svm, integrated
            gradients for torch models).
        **kw: ``n_steps`` (integrated gradients, default 32), ``batch_size``; for runs
            ``models`` (``{fold_key: classifier}``), ``refit`` (default ``True``), ``progress``.
    """
    if hasattr(classifier_or_result, "predictions") and hasattr(classifier_or_result, "config"):
        return explain_result(classifier_or_result, cohort, method, **kw)
    return explain_classifier(classifier_or_result, cohort, method, **kw)
