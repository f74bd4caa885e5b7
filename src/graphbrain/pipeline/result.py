"""PipelineResult: one object per run, saved to and loaded from a folder.

Files in ``output_dir``:

* ``metrics.json``: top-level ``accuracy``, ``auroc``, ``balanced_accuracy``,
  ``sensitivity``, ``specificity``, ``f1`` (means over folds), ``std`` (their standard
  deviations), ``pooled`` (metrics over all out-of-fold predictions), ``per_fold``;
* ``predictions.parquet``: one row per (subject, repeat): subject_id, site, label, fold,
  repeat, proba (P(label=1)), pred;
* ``excluded.parquet``: subjects left out while reading, with reasons;
* ``attention.safetensors``: attention / attribution arrays, rows aligned with
  ``predictions.parquet`` (only for models that produce them);
* ``history.parquet``: per-fold, per-epoch training log of iterative models;
* ``config.yaml``: the full resolved configuration; ``timings.json``;
* with ``explain=true``: ``models/r<repeat>-<fold>/`` (each fold's fitted classifier) and
  ``explain/`` (attribution tables as Parquet, figures, ``report.html``; see
  :mod:`graphbrain.explain.report`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from graphbrain.training.estimator import safe_loader
from graphbrain.training.metrics import METRICS


def _clean(o: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    return o


def _n_without_file(excluded: pd.DataFrame) -> int:
    """Rows of the phenotypic / labels table whose data file does not exist (reason missing_file)."""
    if not len(excluded) or "reason" not in excluded:
        return 0
    return int((excluded["reason"] == "missing_file").sum())


def _unclean(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _unclean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_unclean(v) for v in o]
    return float("nan") if o is None else o


@dataclass
class PipelineResult:
    """Everything a run produced.

    Attributes:
        config: the resolved configuration (plain dict).
        metrics: per metric ``{"mean", "std", "n_folds"}`` over folds.
        pooled: metrics over all out-of-fold predictions together.
        per_fold: one dict per fold: name, n_train, n_test, metrics, seconds.
        predictions: out-of-fold predictions, one row per subject and repeat.
        excluded: subjects excluded while reading, with reasons.
        attention: attention arrays with rows aligned to ``predictions``.
        history: per-epoch training log (iterative models).
        timings: seconds spent loading, per fold and in total.
    """

    config: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    pooled: dict[str, float]
    per_fold: list[dict[str, Any]]
    predictions: pd.DataFrame
    excluded: pd.DataFrame
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)
    output_dir: Path | None = None
    # KG reading of each subject's top attributed ROIs (graphbrain.fusion.reading), or None
    kg_reading: pd.DataFrame | None = None

    def __getitem__(self, metric: str) -> float:
        """Mean over folds of ``metric`` (``result["auroc"]``)."""
        return self.metrics[metric]["mean"]

    def metrics_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: self.metrics[m]["mean"] for m in METRICS}
        # one fold (e.g. `predict`) has no spread: null, not 0.0
        out["std"] = {m: self.metrics[m]["std"] if self.metrics[m]["n_folds"] > 1 else None for m in METRICS}
        out["n_folds"] = {m: self.metrics[m]["n_folds"] for m in METRICS}
        out["pooled"] = self.pooled
        out["per_fold"] = self.per_fold
        out["n_subjects"] = int(self.predictions["subject_id"].nunique()) if len(self.predictions) else 0
        out["n_excluded"] = len(self.excluded)
        out["n_listed_without_file"] = _n_without_file(self.excluded)
        out["model"] = self.config.get("model", {}).get("name")
        out["cv"] = self.config.get("cv", {}).get("scheme")
        return _clean(out)

    def summary(self) -> str:
        """A readable table of mean +/- sd per metric."""
        lines = [f"{'metric':<18} {'mean':>7} {'sd':>7}"]
        for m in METRICS:
            v = self.metrics[m]
            lines.append(f"{m:<18} {v['mean']:>7.3f} {v['std']:>7.3f}")
        n = self.predictions["subject_id"].nunique() if len(self.predictions) else 0
        no_file = _n_without_file(self.excluded)
        line = f"{len(self.per_fold)} folds, {n} subjects, {len(self.excluded) - no_file} excluded"
        if no_file:  # phenotypic / labels rows without a data file are not failed subjects
            line += f", {no_file} listed without a data file (see excluded.parquet)"
        lines.append(line)
        return "\n".join(lines)

    def save(self, output_dir: str | Path) -> Path:
        d = Path(output_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "metrics.json").write_text(json.dumps(self.metrics_json(), indent=2))
        self.predictions.to_parquet(d / "predictions.parquet", index=False)
        self.excluded.to_parquet(d / "excluded.parquet", index=False)
        if len(self.history):
            self.history.to_parquet(d / "history.parquet", index=False)
        if self.attention:
            from safetensors.numpy import save_file

            save_file(
                {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.attention.items()},
                str(d / "attention.safetensors"),
            )
        (d / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        (d / "timings.json").write_text(json.dumps(_clean(self.timings), indent=2))
        if self.kg_reading is not None:
            self.kg_reading.to_parquet(d / "kg_reading.parquet", index=False)
        self.output_dir = d
        return d

    @classmethod
    @safe_loader  # safetensors checked first; damaged files give a DataError naming the folder
    def load(cls, output_dir: str | Path) -> PipelineResult:
        d = Path(output_dir)
        mj = _unclean(json.loads((d / "metrics.json").read_text()))
        metrics = {m: {"mean": mj[m], "std": mj["std"][m], "n_folds": mj["n_folds"][m]} for m in METRICS}
        attention: dict[str, np.ndarray] = {}
        if (d / "attention.safetensors").exists():
            from safetensors.numpy import load_file

            attention = load_file(str(d / "attention.safetensors"))
        history = pd.read_parquet(d / "history.parquet") if (d / "history.parquet").exists() else pd.DataFrame()
        timings = json.loads((d / "timings.json").read_text()) if (d / "timings.json").exists() else {}
        return cls(
            config=yaml.safe_load((d / "config.yaml").read_text()),
            metrics=metrics,
            pooled=mj["pooled"],
            per_fold=mj["per_fold"],
            predictions=pd.read_parquet(d / "predictions.parquet"),
            excluded=pd.read_parquet(d / "excluded.parquet"),
            attention=attention,
            history=history,
            timings=timings,
            output_dir=d,
            kg_reading=pd.read_parquet(d / "kg_reading.parquet") if (d / "kg_reading.parquet").exists() else None,
        )
