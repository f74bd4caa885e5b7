"""Optuna search on inner folds: picks the planted-best setting, never sees test-fold
subjects inside run_pipeline (spy), records the chosen settings, round-trips on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import graphbrain.training.search as search_mod
from graphbrain.data import Cohort, Subject
from graphbrain.errors import ConfigError
from graphbrain.pipeline import run_pipeline
from graphbrain.training import SearchClassifier, load_classifier
from graphbrain.training.search import apply_setting, check_space, load_space

pytest.importorskip("optuna")

R = 8
NAMES = [f"ROI{i}" for i in range(R)]
KIND_SPACE = {"connectome.kind": {"type": "categorical", "choices": ["correlation", "covariance"]}}


def _variance_cohort(n: int = 90, seed: int = 0) -> Cohort:
    """Class 1 scales ROIs 0-2 by 1.6: covariance sees it, correlation (scale-free) cannot."""
    rng = np.random.default_rng(seed)
    loading = rng.standard_normal(R)
    subjects = []
    for i in range(n):
        y = i % 2
        x = rng.standard_normal((60, 1)) * loading + rng.standard_normal((60, R))
        if y:
            x[:, :3] *= 1.6
        subjects.append(Subject(id=f"s{i}", timeseries=x, label=y, site=f"site{i % 3}", roi_names=NAMES))
    return Cohort(subjects, roi_names=NAMES)


def test_search_picks_the_planted_best_setting():
    cohort = _variance_cohort()
    s = SearchClassifier("logreg", space=KIND_SPACE, n_trials=4, inner_splits=3, inner_repeats=1).fit(cohort)
    assert s.chosen_ == {"connectome.kind": "covariance"}
    values = {t["setting"]["connectome.kind"]: t["value"] for t in s.trials_}
    assert values["covariance"] > 0.7 and values["correlation"] < 0.65  # planted vs. scale-free
    assert len(s.trials_) == 2  # re-proposed settings are not refitted
    assert s.best_.connectome["kind"] == "covariance"  # the refit uses the chosen setting


class _Spy:
    log: list[dict[str, set[str]]] = []

    def __init__(self, inner):
        self.inner = inner
        self.rec = {"fit": set(), "predict": set()}
        _Spy.log.append(self.rec)

    def fit(self, cohort):
        self.rec["fit"] |= set(cohort.ids)
        self.inner.fit(cohort)
        return self

    def predict_proba(self, cohort):
        self.rec["predict"] |= set(cohort.ids)
        return self.inner.predict_proba(cohort)

    def explain(self, cohort):
        return self.inner.explain(cohort)

    def history(self):
        return []


def test_search_inside_the_pipeline_never_sees_test_fold_subjects(monkeypatch, tmp_path: Path):
    real = search_mod.build_classifier
    monkeypatch.setattr(search_mod, "build_classifier", lambda *a, **k: _Spy(real(*a, **k)))
    _Spy.log.clear()
    cohort = _variance_cohort(60)
    res = run_pipeline(cohort=cohort, model="logreg", cv={"scheme": "stratified", "n_splits": 3},
                       output_dir=tmp_path / "run", progress=False,
                       search={"enabled": True, "n_trials": 2, "inner_splits": 2, "inner_repeats": 1,
                               "space": KIND_SPACE})
    test_ids = {f: set(g["subject_id"]) for f, g in res.predictions.groupby("fold")}
    all_ids = set(cohort.ids)
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    trials = pd.read_parquet(tmp_path / "run" / "search.parquet")
    i = 0
    for fold in ("fold0", "fold1", "fold2"):
        n_cand = 2 * int((trials["fold"] == fold).sum())  # inner splits x distinct settings tried
        train_ids = all_ids - test_ids[fold]
        for rec in _Spy.log[i:i + n_cand]:  # the search's candidates
            assert rec["fit"] | rec["predict"] <= train_ids
            assert not rec["fit"] & rec["predict"]
        best = _Spy.log[i + n_cand]  # the refit on the whole training fold scores the test fold
        assert best["fit"] == train_ids and best["predict"] == test_ids[fold]
        assert fold in cfg["search"]["chosen"]
        i += n_cand + 1
    assert i == len(_Spy.log)
    assert set(trials.columns) >= {"trial", "value", "seconds", "connectome.kind", "fold"}


def test_settings_go_to_their_sections_and_spaces_are_checked():
    kw = {"model": "brainnetcnn", "model_params": {"dropout": 0.5}, "connectome": {"kind": "correlation"},
          "train": {"lr": 1e-3, "epochs": 5}, "seed": 0}
    out = apply_setting(kw, {"dropout": 0.2, "train.lr": 3e-4, "connectome.kind": "tangent", "model.slope": 0.1})
    assert out["model_params"] == {"dropout": 0.2, "slope": 0.1}
    assert out["train"] == {"lr": 3e-4, "epochs": 5} and out["connectome"] == {"kind": "tangent"}
    assert kw["train"]["lr"] == 1e-3  # the caller's dict is not modified
    assert "C" in load_space("logreg")
    with pytest.raises(ConfigError, match="no search space"):
        load_space("ensemble")
    with pytest.raises(ConfigError, match="low <= high"):
        check_space({"C": {"type": "float", "low": 2, "high": 1}})
    with pytest.raises(ConfigError, match="budget"):
        SearchClassifier("logreg", n_trials=None, timeout_s=None)


def test_save_load_round_trip(tmp_path: Path):
    cohort = _variance_cohort(60)
    s = SearchClassifier("logreg", n_trials=2, inner_splits=2, inner_repeats=1).fit(cohort)
    s.save(tmp_path / "s")
    back = load_classifier(tmp_path / "s")
    assert isinstance(back, SearchClassifier) and back.chosen_ == s.chosen_
    np.testing.assert_allclose(back.predict_proba(cohort), s.predict_proba(cohort))
