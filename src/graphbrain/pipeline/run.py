"""run_pipeline(): configuration in, PipelineResult out; train once, predict elsewhere.

For each cross-validation fold a fresh classifier is built and fitted on the training
subjects only (connectome reference, scaler, weights, early stopping included), then
scores the held-out subjects. Nothing is fitted on the whole cohort before splitting.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError
from graphbrain.models import get_model_spec
from graphbrain.pipeline.config import build_config
from graphbrain.pipeline.result import PipelineResult
from graphbrain.training import (
    binary_metrics,
    load_classifier,
    make_folds,
    summarize,
)
from graphbrain.training.distributed import is_main_process
from graphbrain.training.harmonize import adapt_loaded
from graphbrain.training.search import SearchClassifier, fold_classifier
from graphbrain.training.torch_estimator import CONNECTOME_DEFAULTS, set_predict_crops

log = logging.getLogger(__name__)

CONNECTOME_KEYS = set(CONNECTOME_DEFAULTS)
CV_KEYS = {"scheme", "n_splits", "repeats", "seed"}


def _record_cohort(cfg: dict[str, Any], cohort: Cohort, data_given: bool) -> None:
    """When a Cohort object (not a data config) was passed, record that in the config."""
    if not data_given:
        cfg["data"] = {"source": "in-memory cohort", "name": cohort.name, "n_subjects": len(cohort)}


def load_data(data: Mapping[str, Any]) -> Cohort:
    """Read the cohort described by a ``data`` config section (``source`` + reader params)."""
    from graphbrain.data.loaders import load_cohort

    params = dict(data)
    source = params.pop("source", None)
    if source is None:
        raise ConfigError("the data configuration needs a 'source' (synthetic, abide_pcp, nifti, bids, precomputed)")
    return load_cohort(source, **params)


def _no_usable_subjects(cohort: Cohort, output_dir: Any, what: str) -> ConfigError:
    """The error when every subject was excluded: the count per reason with the first
    messages; ``excluded.parquet`` is written first (when there is an output_dir)."""
    frame = cohort.exclusions_frame()
    where = ""
    if output_dir:
        d = Path(output_dir)
        d.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(d / "excluded.parquet", index=False)
        where = f"; every subject and its reason: {d / 'excluded.parquet'}"
    lines = [f"no usable subjects {what} ({len(frame)} excluded{where})"]
    for reason, grp in frame.groupby("reason", sort=True):
        lines.append(f"  {reason}: {len(grp)}")
        lines += [f"    {m}" for m in grp["message"].head(3)]
    return ConfigError("\n".join(lines))


def _check_keys(section: str, values: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"unknown {section} key(s) {unknown}; valid keys: {sorted(allowed)}")


def _model_args(cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(model name, builder parameters), refusing parameters the builder does not take."""
    m = dict(cfg["model"])
    name = m.pop("name", None)
    if name is None:
        raise ConfigError("the model configuration needs a 'name'")
    spec = get_model_spec(name)
    sig = inspect.signature(spec.builder)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        allowed = set(sig.parameters) - {"n_rois", "n_windows", "n_classes", "n_timepoints"}
        unknown = sorted(set(m) - allowed)
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown} for model {name!r}; valid: {sorted(allowed)}")
    return name, m


def _classifier_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    name, params = _model_args(cfg)
    conn = dict(cfg.get("connectome", {}))
    _check_keys("connectome", conn, CONNECTOME_KEYS)
    crops = (cfg.get("predict") or {}).get("crops")
    if crops is not None and conn.get("predict_crops") is None:
        conn["predict_crops"] = crops  # predict.crops: which crops of a scan are scored
    if cfg.get("cache_dir") and "cache_dir" not in conn:
        conn["cache_dir"] = str(Path(cfg["cache_dir"]) / "connectomes")
    return {
        "model": name,
        "model_params": params,
        "connectome": conn,
        # progress=false silences every bar, the trainer's per-epoch bars included
        "train": dict(cfg.get("train", {})) | ({} if cfg.get("progress", True) else {"progress": False}),
        "seed": int(cfg.get("seed", 0)),
    }


def _fold_classifier(kwargs: dict[str, Any], cfg: Mapping[str, Any]) -> Any:
    """The classifier fitted in each training fold: multimodal models (fusion room) or
    :func:`graphbrain.training.search.fold_classifier` (adaptation, search)."""
    from graphbrain.fusion.factory import MULTIMODAL_MODELS, build_multimodal

    if kwargs["model"] in MULTIMODAL_MODELS:
        if (cfg.get("search") or {}).get("enabled") or cfg.get("adapt") not in (None, "none"):
            raise ConfigError(f"model={kwargs['model']} does not support search or adapt yet")
        return build_multimodal(**kwargs)
    return fold_classifier(kwargs, adapt=cfg.get("adapt"), adapt_covariates=cfg.get("adapt_covariates"),
                           search=cfg.get("search"))


def _load_any_classifier(directory: Path) -> Any:
    from graphbrain.fusion.factory import load_multimodal

    return load_multimodal(directory) or load_classifier(directory)


def _kg_reading(cfg: Mapping[str, Any], cohort: Cohort, attention: Mapping[str, np.ndarray],
                subject_ids: Sequence[str]) -> pd.DataFrame | None:
    """``kg_reading.enabled``: each subject's top attributed ROIs read through the KG."""
    kr = dict(cfg.get("kg_reading") or {})
    if not kr.get("enabled"):
        return None
    from graphbrain.fusion.kg_features import map_rois_to_kg, read_label_table, roi_label_texts
    from graphbrain.fusion.reading import kg_reading, roi_attribution
    from graphbrain.kg import KnowledgeGraph

    att = roi_attribution(dict(attention))
    if att is None:
        log.warning("kg_reading: the model keeps no ROI attribution; nothing to read")
        return None
    names = cohort.roi_names or [str(i) for i in range(att.shape[1])]
    table = read_label_table(kr["atlas_labels"]) if kr.get("atlas_labels") else None
    kg = KnowledgeGraph.load(kr["kg"]) if kr.get("kg") else KnowledgeGraph.default()
    mapping = map_rois_to_kg(roi_label_texts(names, table), kg, roi_names=names, mapping=kr.get("mapping"))
    return kg_reading(att, mapping, kg, list(subject_ids), top_rois=int(kr.get("top_rois", 5)),
                      top_k=int(kr.get("top_k", 3)))


def run_pipeline(
    config: Mapping[str, Any] | None = None,
    *,
    data: str | Mapping[str, Any] | None = None,
    connectome: str | Mapping[str, Any] | None = None,
    model: str | Mapping[str, Any] | None = None,
    cv: str | Mapping[str, Any] | None = None,
    train: str | Mapping[str, Any] | None = None,
    output_dir: str | Path | None = "__default__",
    seed: int | None = None,
    cohort: Cohort | None = None,
    overrides: Sequence[str] = (),
    progress: bool | None = None,
    adapt: str | None = None,
    search: Mapping[str, Any] | None = None,
) -> PipelineResult:
    """Cross-validated classification of a cohort; returns (and saves) a PipelineResult.

    Args:
        config: a complete configuration (e.g. a saved ``config.yaml`` as a dict); when
            given, the group arguments below are merged over it.
        data, connectome, model, cv, train: a config-group option name (``model="svm"``)
            or a dict of values (``data={"source": "abide_pcp", "root": "/data"}``).
        output_dir: where results are written; ``None`` writes nothing; by default the
            configured ``outputs/<data>_<model>_<cv>``.
        seed: random seed for folds, inner splits and model initialisation.
        cohort: an already-loaded cohort (then ``data`` is only recorded).
        overrides: Hydra-style overrides, e.g. ``["cv.n_splits=5"]``.
        progress: show progress bars (default: configured ``progress``).
        adapt: label-free site adaptation of static FC (``none`` | ``site`` | ``combat``):
            test-fold sites not in the training fold are adapted with their own subjects'
            features only (see :mod:`graphbrain.training.harmonize`).
        search: the ``search`` section (``{"enabled": True, "n_trials": 20, ...}``):
            Optuna search on inner folds of each training fold; the chosen settings land
            in ``config.yaml`` under ``search.chosen`` and all trials in ``search.parquet``.

    Example:
        >>> result = run_pipeline(model="logreg", cv="stratified", output_dir=None)
        >>> result["auroc"] > 0.5
        True
    """
    groups: dict[str, Any] = {"data": data, "connectome": connectome, "model": model, "cv": cv, "train": train}
    if seed is not None:
        groups["seed"] = seed
    if progress is not None:
        groups["progress"] = progress
    if adapt is not None:
        groups["adapt"] = adapt
    if search is not None:
        groups["search"] = dict(search)
    if output_dir != "__default__":
        groups["output_dir"] = None if output_dir is None else str(output_dir)
    cfg = build_config(config, overrides=overrides, **groups)
    show = bool(cfg.get("progress", True))
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    if cohort is None:
        cohort = load_data(cfg["data"])
    else:
        _record_cohort(cfg, cohort, data is not None or config is not None)
    timings["load_s"] = time.perf_counter() - t_start
    if len(cohort) == 0:
        raise _no_usable_subjects(cohort, cfg.get("output_dir"), "in the cohort")
    kwargs = _classifier_kwargs(cfg)
    # Dynamic-FC models take whole scans of any length (connectome.n_timepoints=min or an
    # int crops every scan to a common length instead); attention records are aligned to
    # each subject's own windows and NaN-padded to the longest scan (see TorchClassifier.explain).
    cv_cfg = dict(cfg["cv"])
    _check_keys("cv", cv_cfg, CV_KEYS)
    labels = cohort.labels
    folds = make_folds(
        cv_cfg.get("scheme", "stratified"),
        labels,
        cohort.sites,
        n_splits=int(cv_cfg.get("n_splits", 10)),
        repeats=int(cv_cfg.get("repeats", 1)),
        seed=int(cv_cfg.get("seed", cfg.get("seed", 0))),
        groups=cohort.participants,
    )
    rows: list[pd.DataFrame] = []
    per_fold: list[dict[str, Any]] = []
    attn_parts: dict[str, list[np.ndarray]] = {}
    hist_parts: list[pd.DataFrame] = []
    ids = np.asarray(cohort.ids)
    sites = cohort.sites
    search_chosen: dict[str, Any] = {}
    search_parts: list[pd.DataFrame] = []
    fold_models: dict[tuple[int, str], Any] = {}  # explain=true: kept for explanations, saved in models/
    for fold in tqdm(folds, desc=f"{kwargs['model']} folds", disable=not show):
        t0 = time.perf_counter()
        train_c, test_c = cohort.subset(fold.train), cohort.subset(fold.test)
        clf = _fold_classifier(kwargs, cfg)
        clf.fit(train_c)
        if cfg.get("explain"):
            fold_models[(int(fold.repeat), fold.name)] = clf
        if isinstance(clf, SearchClassifier):  # search.enabled: the setting chosen on inner folds
            search_chosen[fold.name] = clf.chosen_
            search_parts.append(clf.trials_frame().assign(fold=fold.name))
        proba = np.asarray(clf.predict_proba(test_c))[:, 1]
        seconds = time.perf_counter() - t0
        m = binary_metrics(labels[fold.test], proba)
        per_fold.append(
            {"fold": fold.name, "repeat": fold.repeat, "n_train": int(fold.train.size), "n_test": int(fold.test.size), **m, "seconds": seconds}
        )
        rows.append(
            pd.DataFrame(
                {
                    "subject_id": ids[fold.test],
                    "site": sites[fold.test],
                    "label": labels[fold.test],
                    "fold": fold.name,
                    "repeat": fold.repeat,
                    "proba": proba,
                    "pred": (proba >= 0.5).astype(int),
                }
            )
        )
        if hasattr(clf, "prediction_columns"):  # e.g. which modalities each fusion prediction had
            for col, val in clf.prediction_columns(test_c).items():
                rows[-1][col] = val
        for k, v in clf.explain(test_c).items():
            attn_parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
        hist = clf.history()
        if hist:
            h = pd.DataFrame(hist)
            h.insert(0, "fold", fold.name)
            hist_parts.append(h)
        timings[f"fold:{fold.name}_s"] = seconds
    attention: dict[str, np.ndarray] = {}
    for k, parts in attn_parts.items():
        if len({p.shape[1:] for p in parts}) == 1 and len(parts) == len(folds):
            attention[k] = np.concatenate(parts, axis=0)
        elif len({p.ndim for p in parts}) == 1 and len(parts) == len(folds):
            # window axes differ between folds (scans of different lengths): NaN-pad to the longest
            shape = tuple(max(p.shape[d] for p in parts) for d in range(1, parts[0].ndim))
            padded = [np.full((p.shape[0], *shape), np.nan, dtype=np.float32) for p in parts]
            for dst, p in zip(padded, parts):
                dst[(slice(None), *(slice(0, n) for n in p.shape[1:]))] = p
            attention[k] = np.concatenate(padded, axis=0)
        else:
            log.warning("attention %r has different shapes across folds; not kept", k)
    timings["total_s"] = time.perf_counter() - t_start
    predictions = pd.concat(rows, ignore_index=True)
    if search_chosen:
        cfg["search"]["chosen"] = search_chosen
    result = PipelineResult(
        config=cfg,
        metrics=summarize(per_fold),
        pooled=binary_metrics(predictions["label"].to_numpy(), predictions["proba"].to_numpy()),
        per_fold=per_fold,
        predictions=predictions,
        excluded=cohort.exclusions_frame(),
        attention=attention,
        history=pd.concat(hist_parts, ignore_index=True) if hist_parts else pd.DataFrame(),
        timings=timings,
    )
    result.kg_reading = _kg_reading(cfg, cohort, attention, predictions["subject_id"].tolist())
    if cfg.get("output_dir") and is_main_process():  # torchrun: rank 0 writes the folder
        result.save(cfg["output_dir"])
        if search_parts:
            pd.concat(search_parts, ignore_index=True).to_parquet(Path(cfg["output_dir"]) / "search.parquet", index=False)
    if cfg.get("explain") and is_main_process():  # torchrun: rank 0 explains and writes
        _explain_run(result, cohort, fold_models, cfg)
    return result


def _explain_run(result: PipelineResult, cohort: Cohort, fold_models: dict[tuple[int, str], Any], cfg: Mapping[str, Any]) -> None:
    """explain=true: save each fold's model in output_dir/models/ and write output_dir/explain/."""
    from graphbrain.explain.attribution import MODELS_DIR, fold_key

    models = {fold_key(r, f): clf for (r, f), clf in fold_models.items()}
    result.fold_models = models  # type: ignore[attr-defined]
    if not cfg.get("output_dir"):
        log.warning("explain=true without an output_dir: fold models kept on result.fold_models, no report written")
        return
    from graphbrain.explain.report import explain_run
    from graphbrain.pipeline.explain_cmd import CLASS_NAMES, atlas_options, explain_settings

    for key, clf in models.items():
        if hasattr(clf, "save"):
            clf.save(Path(cfg["output_dir"]) / MODELS_DIR / key)
    names = CLASS_NAMES.get(str((cfg.get("data") or {}).get("source")))
    explain_run(result, cohort, models=models, atlas=atlas_options(dict(cfg)), class_names=names,
                progress=bool(cfg.get("progress", True)), **explain_settings(cfg.get("explain_options")))


def train_model(
    config: Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path | None = None,
    cohort: Cohort | None = None,
    overrides: Sequence[str] = (),
    **groups: Any,
) -> Path:
    """Fit the configured classifier on the whole cohort and save it to ``output_dir``.

    The folder gets ``model/`` (the fitted classifier: connectome transformer, scaler
    and weights as safetensors + JSON), ``config.yaml``, ``training_subjects.parquet``
    and ``excluded.parquet``. :func:`predict` loads it for a new cohort.
    """
    if output_dir is not None:
        groups["output_dir"] = str(output_dir)
    cfg = build_config(config, overrides=overrides, **{k: v for k, v in groups.items() if v is not None})
    out = cfg.get("output_dir")
    if not out:
        raise ConfigError("train needs an output_dir to save the fitted model in")
    if cohort is None:
        cohort = load_data(cfg["data"])
    else:
        _record_cohort(cfg, cohort, "data" in groups or config is not None)
    if len(cohort) == 0:
        raise _no_usable_subjects(cohort, out, "to train on")
    clf = _fold_classifier(_classifier_kwargs(cfg), cfg)
    clf.fit(cohort)
    d = Path(out)
    if not is_main_process():  # torchrun: every rank trained the same replica; rank 0 saves it
        return d
    if isinstance(clf, SearchClassifier):
        cfg["search"]["chosen"] = {"all": clf.chosen_}
        d.mkdir(parents=True, exist_ok=True)
        clf.trials_frame().assign(fold="all").to_parquet(d / "search.parquet", index=False)
    clf.save(d / "model")
    (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cohort.phenotypes().to_parquet(d / "training_subjects.parquet", index=False)
    cohort.exclusions_frame().to_parquet(d / "excluded.parquet", index=False)
    if clf.history():
        pd.DataFrame(clf.history()).to_parquet(d / "history.parquet", index=False)
    return d


def predict(
    model_dir: str | Path,
    *,
    data: str | Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    cohort: Cohort | None = None,
    overrides: Sequence[str] = (),
    adapt: str | None = None,
) -> PipelineResult:
    """Apply a model saved by :func:`train_model` to a new cohort.

    ``adapt="site"`` (or the override ``adapt=site``) standardises each site of the new
    cohort with its own subjects' FC statistics, no labels read (see
    :func:`graphbrain.training.harmonize.adapt_loaded`).

    Writes ``predictions.parquet`` (and, when the cohort has labels, ``metrics.json``
    with the same keys as a cross-validated run, as one "fold") to ``output_dir``.
    """
    md = Path(model_dir)
    if not (md / "model").is_dir():
        raise ConfigError(f"{md}: not a trained model folder (no model/ inside); create one with `graphbrain train`")
    clf = _load_any_classifier(md / "model")
    cfg = build_config(data=data, overrides=overrides, output_dir=str(output_dir) if output_dir else None)
    train_cfg = yaml.safe_load((md / "config.yaml").read_text())
    cfg["model"] = train_cfg.get("model", {})
    # adapt=... given now (argument or override): label-free adaptation of the new sites;
    # otherwise the model's training setting (an adapted model always adapts)
    if adapt is None and any(o.lstrip("+").startswith("adapt=") for o in overrides):
        adapt = cfg.get("adapt")
    clf = adapt_loaded(clf, adapt)
    cfg["adapt"] = adapt if adapt is not None else train_cfg.get("adapt", "none")
    crops = (cfg.get("predict") or {}).get("crops")
    if crops is not None and any(o.lstrip("+").startswith("predict.crops=") for o in overrides):
        # predict.crops=... given now: which crops of each scan the loaded model averages over
        if set_predict_crops(clf, str(crops)) == 0:
            log.warning("predict.crops=%s ignored: model %s reads static FC (no crops to choose)",
                        crops, cfg["model"].get("name"))
    cfg["model_dir"] = str(md)
    if cohort is None:
        cohort = load_data(cfg["data"])
    else:
        _record_cohort(cfg, cohort, data is not None)
    if len(cohort) == 0:
        raise _no_usable_subjects(cohort, output_dir, "to predict")
    t0 = time.perf_counter()
    proba = np.asarray(clf.predict_proba(cohort))[:, 1]
    labelled = cohort.has_labels
    labels = cohort.labels if labelled else np.full(len(cohort), -1)
    predictions = pd.DataFrame(
        {
            "subject_id": cohort.ids,
            "site": cohort.sites,
            "label": labels,
            "fold": "external",
            "repeat": 0,
            "proba": proba,
            "pred": (proba >= 0.5).astype(int),
        }
    )
    per_fold: list[dict[str, Any]] = []
    pooled: dict[str, float] = {}
    if labelled:
        pooled = binary_metrics(labels, proba)
        per_fold = [{"fold": "external", "repeat": 0, "n_train": 0, "n_test": len(cohort), **pooled}]
    attention = {k: np.asarray(v) for k, v in clf.explain(cohort).items()}
    result = PipelineResult(
        config=cfg,
        metrics=summarize(per_fold) if per_fold else summarize([{}]),
        pooled=pooled,
        per_fold=per_fold,
        predictions=predictions,
        excluded=cohort.exclusions_frame(),
        attention=attention,
        timings={"predict_s": time.perf_counter() - t0},
    )
    if output_dir:
        d = Path(output_dir)
        d.mkdir(parents=True, exist_ok=True)
        if labelled:
            result.save(d)
        else:
            predictions.to_parquet(d / "predictions.parquet", index=False)
            result.excluded.to_parquet(d / "excluded.parquet", index=False)
            (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            (d / "summary.json").write_text(json.dumps({"n_subjects": len(cohort), "labels": False}))
        result.output_dir = d
    return result
