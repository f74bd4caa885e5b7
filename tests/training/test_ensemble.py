"""model=ensemble: exact mean of members, stacking on inner out-of-fold predictions of the
training cohort only (spy), explain averages, safetensors/JSON round trip, registry + CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphbrain.training.ensemble as ens_mod
from graphbrain.cli import main as cli_main
from graphbrain.data import Cohort, Subject
from graphbrain.errors import ConfigError
from graphbrain.models import available_models
from graphbrain.pipeline import run_pipeline
from graphbrain.training import EnsembleClassifier, build_classifier, load_classifier

R = 8
LO = np.tril_indices(R, -1)
NAMES = [f"ROI{i}" for i in range(R)]
TINY_BNC = {"e2e_channels": [2], "e2n_channels": 2, "n2g_channels": 4, "fc_hidden": [4]}
TRAIN = {"epochs": 2, "progress": False, "num_threads": 1, "batch_size": 32}


def _cohort(n: int, seed: int, start: int = 0) -> Cohort:
    rng = np.random.default_rng(seed)
    subjects = []
    for i in range(n):
        y = i % 2
        v = rng.standard_normal(LO[0].size)
        v[:5] += 1.5 * y
        m = np.eye(R)
        m[LO] = v
        m[LO[1], LO[0]] = v
        subjects.append(Subject(id=f"s{start + i}", timeseries=None, fc=m, label=y, site=f"site{i % 3}",
                                roi_names=NAMES))
    return Cohort(subjects, roi_names=NAMES)


def test_mean_is_exactly_the_average_of_independently_built_members():
    train, test = _cohort(60, 0), _cohort(30, 1, start=100)
    ens = EnsembleClassifier([{"name": "logreg", "C": 0.5}, "svm"], seeds=2).fit(train)
    expected = []
    for name, params in (("logreg", {"C": 0.5}), ("svm", {})):
        preset = ens_mod.model_preset(name)
        per_seed = [build_classifier(name, model_params={**preset, **params}, seed=s).fit(train).predict_proba(test)
                    for s in (0, 1)]
        expected.append(np.mean(per_seed, axis=0))
    np.testing.assert_allclose(ens.predict_proba(test), np.mean(expected, axis=0), rtol=1e-10)
    # explain: the mean of the members' node records
    node = np.mean([build_classifier("logreg", model_params={**ens_mod.model_preset("logreg"), "C": 0.5})
                    .fit(train).explain(test)["node"]] * 2
                   + [build_classifier("svm", model_params=ens_mod.model_preset("svm")).fit(train)
                      .explain(test)["node"]] * 2, axis=0)
    np.testing.assert_allclose(ens.explain(test)["node"], node, rtol=1e-5)


class _Spy:
    """Wraps a classifier; records the subject ids it is fitted on and predicts."""

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


def test_stacking_uses_inner_out_of_fold_predictions_of_the_training_cohort_only(monkeypatch):
    train, test = _cohort(60, 0), _cohort(30, 1, start=100)
    real = ens_mod.build_classifier
    monkeypatch.setattr(ens_mod, "build_classifier", lambda *a, **k: _Spy(real(*a, **k)))
    _Spy.log.clear()
    ens = EnsembleClassifier(["logreg", "svm"], seeds=1, combine="stack", stack_folds=3).fit(train)
    p = ens.predict_proba(test)
    train_ids, test_ids = set(train.ids), set(test.ids)
    assert len(_Spy.log) == 2 * (3 + 1)  # 2 members x (3 inner folds + the final refit)
    for rec in _Spy.log:
        assert rec["fit"] <= train_ids  # nothing outside the training cohort is fitted on
        assert not rec["fit"] & rec["predict"]  # every prediction is out of fold
    inner = _Spy.log[:6]
    assert all(rec["predict"] <= train_ids for rec in inner)  # the stacker never sees test subjects
    assert set().union(*(r["predict"] for r in inner)) == train_ids  # every training subject gets an OOF
    assert all(r["predict"] == test_ids for r in _Spy.log[6:])
    # the stacker is a logistic regression on the members' log-odds
    z = np.log(ens.member_proba(test)[:, :, 1].T.clip(1e-6, 1 - 1e-6))
    z -= np.log((1 - ens.member_proba(test)[:, :, 1].T).clip(1e-6, 1 - 1e-6))
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-(z @ ens.stack_coef_ + ens.stack_intercept_))), rtol=1e-6)


def test_save_load_round_trip_with_a_torch_member_no_pickle(tmp_path: Path):
    train, test = _cohort(60, 0), _cohort(30, 1, start=100)
    ens = build_classifier("ensemble", model_params={
        "members": ["logreg", {"name": "brainnetcnn", **TINY_BNC, "train": TRAIN}], "seeds": 2,
        "combine": "stack", "stack_folds": 2})
    ens.fit(train)
    ens.save(tmp_path / "e")
    back = load_classifier(tmp_path / "e")
    assert isinstance(back, EnsembleClassifier) and back.combine == "stack"
    np.testing.assert_allclose(back.predict_proba(test), ens.predict_proba(test), atol=1e-6)
    suffixes = {p.suffix for p in (tmp_path / "e").rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors"}
    assert len([p for p in (tmp_path / "e").iterdir() if p.is_dir()]) == 4  # 2 members x 2 seeds


def test_registry_lists_ensemble_and_bad_members_are_refused(capsys):
    assert "ensemble" in available_models()
    assert cli_main(["models"]) == 0
    assert "ensemble" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_classifier("ensemble", model_params={"members": ["logreg", "nope"]})
    with pytest.raises(ConfigError, match="combine"):
        build_classifier("ensemble", model_params={"members": ["logreg"], "combine": "vote"})


def test_ensemble_through_the_pipeline_config():
    res = run_pipeline(cohort=_cohort(60, 0), cv={"scheme": "stratified", "n_splits": 3}, output_dir=None,
                       overrides=["model=ensemble", "model.members=[logreg,svm]", "model.seeds=1"],
                       progress=False)
    assert res.config["model"]["members"] == ["logreg", "svm"]
    assert res["auroc"] > 0.8  # the planted 5-edge difference (1.5 sd) is easy; chance is 0.5
    assert "node" in res.attention
