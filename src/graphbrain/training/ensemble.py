"""Ensembles of registered models as one :class:`CohortClassifier` (``model=ensemble``).

Members are given by name (``members=[logreg, brainnetcnn, stagin]``) or as dicts with
their own parameters (``{name: brainnetcnn, dropout: 0.3, train: {epochs: 20}}``); each
member starts from its packaged model preset (``configs/model/<name>.yaml``, as
``model=<name>`` would) and is trained with ``seeds`` different seeds. The run's
``connectome`` and ``train`` sections apply to every member; a member's own
``connectome`` / ``train`` dicts are merged over them.

``combine="mean"``: the ensemble probability is the mean of the members' probabilities
(each member's own probability is the mean over its seeds).
``combine="stack"``: a logistic regression on the members' log-odds, fitted on inner
out-of-fold predictions: the *training* cohort is split ``stack_folds`` ways (stratified),
every member is fitted on each inner training part and predicts the inner held-out part;
the stacker learns from those predictions, then every member is refitted on the whole
training cohort. Nothing outside the cohort passed to ``fit`` is seen.

Saving writes ``classifier.json`` (type ``ensemble``), one folder per fitted member
(``m<j>_<name>_s<seed>/``, each a saved classifier) and ``stacker.safetensors``; no pickle.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.models import get_model_spec
from graphbrain.training.estimator import (
    CLASSIFIER_FILE,
    CohortClassifier,
    _write_json,
    build_classifier,
    load_classifier,
)

log = logging.getLogger(__name__)

COMBINE = ("mean", "stack")
_MEMBER_KEYS = {"name", "connectome", "train", "seeds"}


def model_preset(name: str) -> dict[str, Any]:
    """The packaged ``configs/model/<name>.yaml`` parameters (without ``name``); ``{}`` if none."""
    path = files("graphbrain.configs").joinpath("model", f"{name}.yaml")
    if not path.is_file():
        return {}
    params = yaml.safe_load(path.read_text()) or {}
    params.pop("name", None)
    return params


def _member_spec(m: Any, index: int) -> dict[str, Any]:
    if isinstance(m, str):
        m = {"name": m}
    if not isinstance(m, dict) or not m.get("name"):
        raise ConfigError(f"model.members[{index}] must be a model name or a dict with a 'name', got {m!r}")
    name = str(m["name"])
    if name == "ensemble":
        raise ConfigError(f"model.members[{index}]: an ensemble cannot contain an ensemble")
    get_model_spec(name)  # unknown names fail here, listing the valid ones
    return dict(m)


class EnsembleClassifier(CohortClassifier):
    """Several registered models (and seeds) combined by mean or a stacked logistic regression.

    Args:
        members: model names or dicts ``{name, <model params>, connectome, train, seeds}``.
        seeds: seeds per member (``seed, seed+1, ...``); a member dict may override it.
        combine: ``"mean"`` or ``"stack"``.
        stack_folds: inner folds of the training cohort for the stacker's out-of-fold inputs.
        stack_C: inverse L2 strength of the stacking logistic regression.
        connectome, train: the run's sections, applied to every member.
        seed: base seed.
    """

    model_name = "ensemble"

    def __init__(
        self,
        members: list[Any] | tuple[Any, ...] = ("logreg",),
        *,
        seeds: int = 1,
        combine: str = "mean",
        stack_folds: int = 5,
        stack_C: float = 1.0,
        connectome: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if not members:
            raise ConfigError("model.members is empty; give at least one model name, e.g. members=[logreg,brainnetcnn]")
        if combine not in COMBINE:
            raise ConfigError(f"model.combine={combine!r} is not valid; use one of {list(COMBINE)}")
        if int(seeds) < 1:
            raise ConfigError(f"model.seeds must be >= 1, got {seeds}")
        if combine == "stack" and int(stack_folds) < 2:
            raise ConfigError(f"model.stack_folds must be >= 2, got {stack_folds}")
        self.members = [_member_spec(m, i) for i, m in enumerate(members)]
        self.seeds = int(seeds)
        self.combine = combine
        self.stack_folds = int(stack_folds)
        self.stack_C = float(stack_C)
        self.connectome = dict(connectome or {})
        self.train = dict(train or {})
        self.seed = int(seed)
        self.adapt = "none"
        self.adapt_covariates: list[str] | None = None
        self.fitted_: list[list[CohortClassifier]] = []
        self.stack_coef_: np.ndarray | None = None
        self.stack_intercept_: float = 0.0
        self.classes_: np.ndarray | None = None

    # -- members -------------------------------------------------------------------------
    def set_adapt(self, mode: str, covariates: list[str] | tuple[str, ...] | None = None) -> None:
        """Site adaptation for the static-FC members (dynamic members are left as they are)."""
        from graphbrain.training.harmonize import check_adapt

        self.adapt = check_adapt(mode)
        self.adapt_covariates = None if covariates is None else list(covariates)

    def member_names(self) -> list[str]:
        return [m["name"] for m in self.members]

    def _member_seeds(self, j: int) -> list[int]:
        n = int(self.members[j].get("seeds", self.seeds))
        return [self.seed + k for k in range(n)]

    def _new_member(self, j: int, seed: int) -> CohortClassifier:
        m = self.members[j]
        name = m["name"]
        params = {**model_preset(name), **{k: v for k, v in m.items() if k not in _MEMBER_KEYS}}
        conn = {**self.connectome, **dict(m.get("connectome") or {})}
        train = {**self.train, **dict(m.get("train") or {})}
        clf = build_classifier(name, model_params=params, connectome=conn, train=train, seed=seed)
        if self.adapt != "none":
            if get_model_spec(name).input == "static_fc":
                from graphbrain.training.harmonize import AdaptedClassifier

                clf = AdaptedClassifier(clf, self.adapt, self.adapt_covariates)
            else:
                log.warning("ensemble member %r uses dynamic FC: adapt=%s is not applied to it", name, self.adapt)
        return clf

    def _fit_members(self, cohort: Cohort) -> list[list[CohortClassifier]]:
        return [
            [self._new_member(j, s).fit(cohort) for s in self._member_seeds(j)]
            for j in range(len(self.members))
        ]

    @staticmethod
    def _member_proba(fitted: list[list[CohortClassifier]], cohort: Cohort) -> np.ndarray:
        """``(M, N, C)``: each member's probabilities, averaged over its seeds."""
        return np.stack([np.mean([np.asarray(c.predict_proba(cohort)) for c in seeds], axis=0) for seeds in fitted])

    # -- CohortClassifier API --------------------------------------------------------------
    def fit(self, cohort: Cohort) -> EnsembleClassifier:
        y = cohort.labels
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise DataError("the training cohort has a single class", source=cohort.name, reason="one_class")
        if self.combine == "stack":
            if len(self.classes_) != 2:
                raise ConfigError("combine=stack supports two classes; use combine=mean")
            oof = np.zeros((len(cohort), len(self.members)))
            skf = StratifiedKFold(self.stack_folds, shuffle=True, random_state=self.seed)
            for inner_tr, inner_te in skf.split(np.zeros(len(y)), y):
                fitted = self._fit_members(cohort.subset(inner_tr))
                oof[inner_te] = self._member_proba(fitted, cohort.subset(inner_te))[:, :, 1].T
            stacker = LogisticRegression(C=self.stack_C).fit(_logit(oof), y)
            self.stack_coef_ = stacker.coef_.ravel().astype(np.float64)
            self.stack_intercept_ = float(stacker.intercept_[0])
            self.oof_ = oof
        self.fitted_ = self._fit_members(cohort)
        return self

    def member_proba(self, cohort: Cohort) -> np.ndarray:
        """``(M, N, C)`` per-member probabilities (seed-averaged)."""
        if not self.fitted_:
            raise ConfigError("ensemble is not fitted; call fit() (or load a saved one) first")
        return self._member_proba(self.fitted_, cohort)

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        p = self.member_proba(cohort)
        if self.combine == "mean":
            return p.mean(axis=0)
        z = _logit(p[:, :, 1].T) @ self.stack_coef_ + self.stack_intercept_  # type: ignore[operator]
        p1 = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1.0 - p1, p1], axis=1)

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """Per key, the mean of the members' (and seeds') records whose shapes agree.

        Records of a key with different shapes across members (e.g. a dynamic model's
        ``(N, W, R)`` and a static one's ``(N, R)`` under the same key) are averaged over
        the most common shape; the others are left out (logged).
        """
        parts: dict[str, list[np.ndarray]] = {}
        for seeds in self.fitted_:
            for c in seeds:
                for k, v in c.explain(cohort).items():
                    parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
        out: dict[str, np.ndarray] = {}
        for k, arrs in parts.items():
            shape, _ = Counter(a.shape for a in arrs).most_common(1)[0]
            keep = [a for a in arrs if a.shape == shape]
            if len(keep) < len(arrs):
                log.info("ensemble explain: %d record(s) of %r with another shape left out", len(arrs) - len(keep), k)
            out[k] = np.mean(keep, axis=0)
        return out

    def history(self) -> list[dict[str, Any]]:
        rows = []
        for j, seeds in enumerate(self.fitted_):
            for s, c in zip(self._member_seeds(j), seeds, strict=True):
                rows += [{"member": self.members[j]["name"], "member_seed": s, **r} for r in c.history()]
        return rows

    # -- persistence -----------------------------------------------------------------------
    def _dirs(self) -> list[list[str]]:
        return [[f"m{j}_{self.members[j]['name']}_s{s}" for s in self._member_seeds(j)] for j in range(len(self.members))]

    def save(self, directory: str | Path) -> None:
        if not self.fitted_:
            raise ConfigError("ensemble is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        dirs = self._dirs()
        for j, seeds in enumerate(self.fitted_):
            for name, c in zip(dirs[j], seeds, strict=True):
                c.save(d / name)
        arrays = {"classes": np.asarray(self.classes_)}
        if self.stack_coef_ is not None:
            arrays["stack.coef"] = self.stack_coef_
            arrays["stack.intercept"] = np.array([self.stack_intercept_])
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(d / "stacker.safetensors"))
        _write_json(d / CLASSIFIER_FILE, {
            "type": "ensemble", "model": "ensemble", "members": self.members, "seeds": self.seeds,
            "combine": self.combine, "stack_folds": self.stack_folds, "stack_C": self.stack_C,
            "connectome": self.connectome, "train": self.train, "seed": self.seed,
            "adapt": self.adapt, "adapt_covariates": self.adapt_covariates, "member_dirs": dirs,
        })

    @classmethod
    def load(cls, directory: str | Path) -> EnsembleClassifier:
        d = Path(directory)
        meta = json.loads((d / CLASSIFIER_FILE).read_text())
        if meta.get("type") != "ensemble":
            raise ConfigError(f"{d / CLASSIFIER_FILE}: not an ensemble (type={meta.get('type')!r})")
        clf = cls(meta["members"], seeds=meta["seeds"], combine=meta["combine"], stack_folds=meta["stack_folds"],
                  stack_C=meta["stack_C"], connectome=meta["connectome"], train=meta["train"], seed=meta["seed"])
        clf.adapt, clf.adapt_covariates = meta.get("adapt", "none"), meta.get("adapt_covariates")
        clf.fitted_ = [[load_classifier(d / name) for name in seeds] for seeds in meta["member_dirs"]]
        arrays = load_file(str(d / "stacker.safetensors"))
        clf.classes_ = arrays["classes"]
        if "stack.coef" in arrays:
            clf.stack_coef_ = arrays["stack.coef"]
            clf.stack_intercept_ = float(arrays["stack.intercept"][0])
        return clf


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
