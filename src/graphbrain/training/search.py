"""Hyper-parameter search on inner folds of the training cohort only (Optuna).

:class:`SearchClassifier` is a :class:`CohortClassifier`: its ``fit(cohort)`` runs an
Optuna study whose every trial builds the model with the trial's settings, fits it on the
training part of each inner split of ``cohort`` and scores it on the inner held-out part
(stratified k-fold repeated ``inner_repeats`` times: one ~50-subject inner split is too
noisy to rank settings). The best setting (highest mean inner score) is then refitted on
the whole ``cohort``. Inside :func:`graphbrain.pipeline.run_pipeline` the cohort is an
outer training fold, so test-fold subjects never reach the search.

The space is declared per model in ``configs/search/<model>.yaml`` (or passed as
``space``)::

    C: {type: float, low: 1.0e-3, high: 10.0, log: true}
    train.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    connectome.kind: {type: categorical, choices: [correlation, tangent]}
    hidden: {type: int, low: 16, high: 64, step: 16}

Keys without a prefix (or ``model.``) are model parameters; ``train.`` and
``connectome.`` keys go to those sections. Budget: ``n_trials`` and/or ``timeout_s``.
Optuna is an optional extra (``pip install graphbrain[tune]``), imported lazily.
"""

from __future__ import annotations

import json
import math
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, MissingDependencyError
from graphbrain.training.estimator import (
    CLASSIFIER_FILE,
    CohortClassifier,
    _write_json,
    build_classifier,
    load_classifier,
)
from graphbrain.training.harmonize import check_adapt, with_adaptation

SEARCH_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "n_trials": 20,
    "timeout_s": None,
    "inner_splits": 3,
    "inner_repeats": 2,
    "metric": "auroc",
    "space": None,
}
METRICS = ("auroc", "accuracy")
_TYPES = ("float", "int", "categorical")


def load_space(model: str) -> dict[str, Any]:
    """The packaged search space ``configs/search/<model>.yaml``."""
    path = files("graphbrain.configs").joinpath("search", f"{model}.yaml")
    if not path.is_file():
        avail = sorted(p.name.removesuffix(".yaml") for p in files("graphbrain.configs").joinpath("search").iterdir()
                       if p.name.endswith(".yaml"))
        raise ConfigError(
            f"no search space for model {model!r} (configs/search/{model}.yaml); packaged spaces: "
            f"{avail}; or give search.space={{param: {{type: float, low: ..., high: ...}}}}"
        )
    return dict(yaml.safe_load(path.read_text()) or {})


def check_space(space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate a space declaration; returns it with every entry a dict."""
    if not space:
        raise ConfigError("the search space is empty")
    out = {}
    for key, d in space.items():
        if isinstance(d, list):
            d = {"type": "categorical", "choices": d}
        if not isinstance(d, dict) or d.get("type") not in _TYPES:
            raise ConfigError(f"search space entry {key!r} needs type: one of {list(_TYPES)}, got {d!r}")
        if d["type"] == "categorical" and not d.get("choices"):
            raise ConfigError(f"search space entry {key!r}: categorical needs a non-empty 'choices' list")
        if d["type"] in ("float", "int") and ("low" not in d or "high" not in d or d["low"] > d["high"]):
            raise ConfigError(f"search space entry {key!r}: needs low <= high")
        out[str(key)] = dict(d)
    return out


def _suggest(trial: Any, key: str, d: dict[str, Any]) -> Any:
    if d["type"] == "float":
        return trial.suggest_float(key, float(d["low"]), float(d["high"]), log=bool(d.get("log", False)))
    if d["type"] == "int":
        return trial.suggest_int(key, int(d["low"]), int(d["high"]), step=int(d.get("step", 1)),
                                 log=bool(d.get("log", False)))
    # choices may be lists (e.g. channel sizes): Optuna wants primitives, so JSON strings
    encoded = [json.dumps(c) for c in d["choices"]]
    return json.loads(trial.suggest_categorical(key, encoded))


def apply_setting(kwargs: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """``build_classifier`` keyword arguments with a search setting merged in."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    for key, val in setting.items():
        section, _, name = key.partition(".")
        if name and section in ("train", "connectome", "model"):
            target = "model_params" if section == "model" else section
        else:
            target, name = "model_params", key
        out[target] = {**(out.get(target) or {}), name: val}
    return out


class SearchClassifier(CohortClassifier):
    """Optuna search over ``space`` on repeated inner splits, then a refit with the best setting.

    Args:
        model, model_params, connectome, train, seed: as :func:`build_classifier`.
        space: the search space (default ``configs/search/<model>.yaml``).
        n_trials, timeout_s: the budget (trials, seconds; whichever ends first).
        inner_splits, inner_repeats: stratified k-fold of the training cohort, repeated.
        metric: ``auroc`` or ``accuracy`` (mean over inner splits).
        adapt, adapt_covariates: site adaptation of every candidate (see ``harmonize``).
    """

    def __init__(
        self,
        model: str,
        *,
        model_params: dict[str, Any] | None = None,
        connectome: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        seed: int = 0,
        space: dict[str, Any] | None = None,
        n_trials: int | None = 20,
        timeout_s: float | None = None,
        inner_splits: int = 3,
        inner_repeats: int = 2,
        metric: str = "auroc",
        adapt: str = "none",
        adapt_covariates: list[str] | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"search.metric={metric!r} is not valid; use one of {list(METRICS)}")
        if n_trials is None and timeout_s is None:
            raise ConfigError("the search needs a budget: search.n_trials and/or search.timeout_s")
        if int(inner_splits) < 2 or int(inner_repeats) < 1:
            raise ConfigError("search.inner_splits must be >= 2 and search.inner_repeats >= 1")
        self.model_name = model
        self.kwargs = {"model": model, "model_params": dict(model_params or {}),
                       "connectome": dict(connectome or {}), "train": dict(train or {}), "seed": int(seed)}
        self.space = check_space(dict(space) if space else load_space(model))
        self.n_trials = None if n_trials is None else int(n_trials)
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self.inner_splits = int(inner_splits)
        self.inner_repeats = int(inner_repeats)
        self.metric = metric
        self.adapt = check_adapt(adapt)
        self.adapt_covariates = adapt_covariates
        self.seed = int(seed)
        self.best_: CohortClassifier | None = None
        self.chosen_: dict[str, Any] = {}
        self.trials_: list[dict[str, Any]] = []

    def candidate(self, setting: dict[str, Any]) -> CohortClassifier:
        """An unfitted classifier with ``setting`` applied."""
        clf = build_classifier(**apply_setting(self.kwargs, setting))
        return with_adaptation(clf, self.adapt, self.adapt_covariates)

    def _score(self, y: np.ndarray, p: np.ndarray) -> float:
        if self.metric == "accuracy":
            return float(np.mean((p >= 0.5).astype(int) == y))
        return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan

    def fit(self, cohort: Cohort) -> SearchClassifier:
        try:
            import optuna
        except ImportError as err:  # pragma: no cover - optuna is installed in dev
            raise MissingDependencyError(
                "search.enabled=true needs Optuna: pip install 'graphbrain[tune]'"
            ) from err
        y = cohort.labels
        splits = list(RepeatedStratifiedKFold(n_splits=self.inner_splits, n_repeats=self.inner_repeats,
                                              random_state=self.seed).split(np.zeros(len(y)), y))
        self.trials_ = []

        seen: dict[str, float] = {}

        def objective(trial: Any) -> float:
            setting = {k: _suggest(trial, k, d) for k, d in self.space.items()}
            key = json.dumps(setting, sort_keys=True)
            if key in seen:  # TPE re-proposes settings of small discrete spaces: no refit
                return seen[key]
            t0 = time.perf_counter()
            scores = []
            for tr, va in splits:
                clf = self.candidate(setting).fit(cohort.subset(tr))
                p = np.asarray(clf.predict_proba(cohort.subset(va)))[:, 1]
                scores.append(self._score(y[va], p))
            value = float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else 0.0
            self.trials_.append({"trial": trial.number, "setting": setting, "value": value,
                                 "split_scores": scores, "seconds": time.perf_counter() - t0})
            seen[key] = value
            return value

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed))
        study.optimize(objective, n_trials=self.n_trials, timeout=self.timeout_s)
        best = max(self.trials_, key=lambda t: t["value"])
        self.chosen_ = dict(best["setting"])
        self.best_value_ = best["value"]
        self.best_ = self.candidate(self.chosen_).fit(cohort)
        return self

    def _fitted(self) -> CohortClassifier:
        if self.best_ is None:
            raise ConfigError("search is not fitted; call fit() (or load a saved one) first")
        return self.best_

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        return self._fitted().predict_proba(cohort)

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        return self._fitted().explain(cohort)

    def history(self) -> list[dict[str, Any]]:
        return self._fitted().history()

    def trials_frame(self) -> Any:
        """One row per trial: trial, value, seconds and one column per searched key."""
        import pandas as pd

        rows = [{"trial": t["trial"], "value": t["value"], "seconds": t["seconds"],
                 **{k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in t["setting"].items()}}
                for t in self.trials_]
        return pd.DataFrame(rows)

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self._fitted().save(d / "best")
        _write_json(d / CLASSIFIER_FILE, {
            "type": "search", "model": self.model_name, "kwargs": self.kwargs, "space": self.space,
            "n_trials": self.n_trials, "timeout_s": self.timeout_s, "inner_splits": self.inner_splits,
            "inner_repeats": self.inner_repeats, "metric": self.metric, "adapt": self.adapt,
            "adapt_covariates": self.adapt_covariates, "chosen": self.chosen_, "trials": self.trials_,
        })

    @classmethod
    def load(cls, directory: str | Path) -> SearchClassifier:
        d = Path(directory)
        meta = json.loads((d / CLASSIFIER_FILE).read_text())
        if meta.get("type") != "search":
            raise ConfigError(f"{d / CLASSIFIER_FILE}: not a search classifier (type={meta.get('type')!r})")
        k = meta["kwargs"]
        clf = cls(k["model"], model_params=k["model_params"], connectome=k["connectome"], train=k["train"],
                  seed=k["seed"], space=meta["space"], n_trials=meta["n_trials"], timeout_s=meta["timeout_s"],
                  inner_splits=meta["inner_splits"], inner_repeats=meta["inner_repeats"], metric=meta["metric"],
                  adapt=meta["adapt"], adapt_covariates=meta["adapt_covariates"])
        clf.chosen_, clf.trials_ = dict(meta["chosen"]), list(meta["trials"])
        clf.best_ = load_classifier(d / "best")
        return clf


def fold_classifier(
    kwargs: dict[str, Any],
    *,
    adapt: str | None = "none",
    adapt_covariates: list[str] | None = None,
    search: dict[str, Any] | None = None,
) -> CohortClassifier:
    """The classifier a pipeline fits in each outer training fold.

    ``kwargs`` are :func:`build_classifier`'s; ``adapt`` wraps it for site adaptation;
    ``search`` (the run's ``search`` section) with ``enabled: true`` makes it a
    :class:`SearchClassifier` whose every candidate is adapted the same way.
    """
    s = {**SEARCH_DEFAULTS, **dict(search or {})}
    unknown = sorted(set(s) - set(SEARCH_DEFAULTS) - {"chosen"})
    if unknown:
        raise ConfigError(f"unknown search key(s) {unknown}; valid keys: {sorted(SEARCH_DEFAULTS)}")
    if not s["enabled"]:
        return with_adaptation(build_classifier(**kwargs), adapt, adapt_covariates)
    return SearchClassifier(
        **kwargs, space=s["space"], n_trials=s["n_trials"], timeout_s=s["timeout_s"],
        inner_splits=s["inner_splits"], inner_repeats=s["inner_repeats"], metric=s["metric"],
        adapt=check_adapt(adapt), adapt_covariates=adapt_covariates,
    )
