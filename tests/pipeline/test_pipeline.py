"""End-to-end runs on the synthetic cohort: metrics, files, leakage and train/predict."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.errors import ConfigError
from graphbrain.pipeline import PipelineResult, predict, run_pipeline, train_model
from graphbrain.training import make_folds

METRIC_KEYS = {"accuracy", "auroc", "balanced_accuracy", "sensitivity", "specificity", "f1"}


def _fp(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


def test_planted_signal_far_above_chance_and_files(small_cohort, tmp_path):
    res = run_pipeline(cohort=small_cohort, cv={"scheme": "stratified", "n_splits": 5}, output_dir=tmp_path, progress=False)
    assert res["auroc"] > 0.85
    assert set(res.predictions["subject_id"]) == set(small_cohort.ids)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics) and len(metrics["per_fold"]) == 5
    assert metrics["auroc"] == pytest.approx(np.mean([f["auroc"] for f in metrics["per_fold"]]))
    loaded = PipelineResult.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.predictions, res.predictions)
    assert loaded["auroc"] == pytest.approx(res["auroc"])
    assert loaded.config["model"]["name"] == "logreg"
    # the config says what was really used: the cohort object, not the default data preset
    assert loaded.config["data"] == {"source": "in-memory cohort", "name": "synthetic", "n_subjects": 60}
    # node attributions align with predictions and point at the planted ROIs
    node = loaded.attention["node"]
    assert node.shape == (len(small_cohort), small_cohort.n_rois)
    top = set(np.argsort(-node.mean(0))[: len(small_cohort.meta["planted_rois"])].tolist())
    assert len(top & set(small_cohort.meta["planted_rois"])) >= 3


def test_shuffled_labels_give_chance(small_cohort):
    """With labels permuted, the out-of-fold AUROC must lie inside the permutation null.

    The null distribution is that of the AUROC of the run's own out-of-fold scores against
    randomly permuted labels (2000 permutations): a leak (or a bug that lets labels reach
    the features) pushes the real AUROC above its 99.9th percentile; a sign error or
    anti-learning bug pushes it below the 0.1th percentile. Two-sided, false alarm 0.2 %.
    """
    from dataclasses import replace

    from sklearn.metrics import roc_auc_score

    shuffled = small_cohort.subset(range(len(small_cohort)))
    rng = np.random.default_rng(0)
    labels = rng.permutation(small_cohort.labels)
    shuffled.subjects = [replace(s, label=int(y)) for s, y in zip(shuffled.subjects, labels)]
    res = run_pipeline(cohort=shuffled, cv={"scheme": "stratified", "n_splits": 5}, output_dir=None,
                       progress=False, overrides=["cache_dir=null"])
    y = res.predictions["label"].to_numpy()
    p = res.predictions["proba"].to_numpy()
    observed = roc_auc_score(y, p)
    # AUROC = Mann-Whitney U / (n1 n0) from the ranks of the scores; vectorised over permutations
    from scipy.stats import rankdata

    ranks, n1 = rankdata(p), int(y.sum())
    perms = np.argsort(rng.random((2000, len(y))), axis=1)[:, :n1]  # 2000 random positive sets
    null = (ranks[perms].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))
    lo, hi = np.quantile(null, [0.001, 0.999])
    assert 0.2 < lo < 0.5 < hi < 0.8  # centred on chance; sd ~0.075 for 30 vs 30, so +-3.1 sd ~ +-0.23
    assert lo < observed < hi, (observed, lo, hi)
    # the permutation null is computed right: the observed AUROC by the same formula
    assert (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)) == pytest.approx(observed)


class _Spy:
    """Records fingerprints of every subject's data that reaches a fit."""

    def __init__(self, monkeypatch):
        self.fits: list[set[str]] = []
        self.scaler_rows: list[int] = []
        orig_fit = ConnectivityTransformer.fit
        orig_scaler = StandardScaler.fit
        spy = self

        def fit(self_, X, y=None):
            spy.fits.append({_fp(x) for x in X})
            return orig_fit(self_, X, y)

        def sfit(self_, X, y=None, sample_weight=None):
            spy.scaler_rows.append(len(X))
            return orig_scaler(self_, X, y, sample_weight)

        monkeypatch.setattr(ConnectivityTransformer, "fit", fit)
        monkeypatch.setattr(StandardScaler, "fit", sfit)


@pytest.mark.parametrize("scheme", ["stratified", "leave_site_out"])
def test_nothing_is_fitted_on_test_subjects(small_cohort, monkeypatch, scheme):
    spy = _Spy(monkeypatch)
    cv = {"scheme": scheme, "n_splits": 4}
    run_pipeline(cohort=small_cohort, connectome={"kind": "tangent"}, cv=cv, output_dir=None, progress=False)
    folds = make_folds(scheme, small_cohort.labels, small_cohort.sites, n_splits=4)
    assert len(spy.fits) == len(folds)
    for fitted, fold in zip(spy.fits, folds):
        test_fp = {_fp(small_cohort[i].timeseries) for i in fold.test}
        train_fp = {_fp(small_cohort[i].timeseries) for i in fold.train}
        assert fitted == train_fp
        assert fitted.isdisjoint(test_fp)
    assert spy.scaler_rows == [len(f.train) for f in folds]


def test_the_spy_catches_a_leaky_procedure(small_cohort, monkeypatch):
    """The check above can fail: a whole-cohort fit before splitting is detected."""
    spy = _Spy(monkeypatch)
    ConnectivityTransformer(kind="tangent").fit(small_cohort.timeseries())  # the leak
    fold = make_folds("stratified", small_cohort.labels, small_cohort.sites, n_splits=4)[0]
    test_fp = {_fp(small_cohort[i].timeseries) for i in fold.test}
    assert not spy.fits[0].isdisjoint(test_fp)


def test_train_then_predict_on_other_sites(small_cohort, tmp_path):
    train_c = small_cohort.select_sites(["site1", "site2"])
    test_c = small_cohort.select_sites(["site3"])
    model_dir = train_model(cohort=train_c, output_dir=tmp_path / "m", connectome="tangent",
                            overrides=["cache_dir=null"])
    assert (model_dir / "model" / "classifier.json").exists()
    res = predict(model_dir, cohort=test_c, output_dir=tmp_path / "p")
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    # An independent implementation written here, straight from nilearn and scikit-learn:
    # Ledoit-Wolf tangent space (reference = geometric mean of the TRAINING covariances),
    # strict lower triangle, z-scoring with training statistics, balanced logistic regression.
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import LedoitWolf
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    cm = ConnectivityMeasure(kind="tangent", cov_estimator=LedoitWolf(store_precision=False),
                             vectorize=True, discard_diagonal=True)
    ts_train = [s.timeseries.astype(np.float64) for s in train_c]
    ts_test = [s.timeseries.astype(np.float64) for s in test_c]
    x_train = cm.fit_transform(ts_train)
    x_test = cm.transform(ts_test)
    scaler = StandardScaler().fit(x_train)
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(scaler.transform(x_train), train_c.labels)
    expected = lr.predict_proba(scaler.transform(x_test))[:, 1]
    # graphbrain stores features as float32: agreement to 1e-4 in probability, same ranking
    np.testing.assert_allclose(res.predictions["proba"].to_numpy(), expected, atol=1e-4)
    assert metrics["auroc"] == pytest.approx(roc_auc_score(test_c.labels, expected), abs=1e-9)
    assert metrics["auroc"] > 0.7  # the planted effect transfers to an unseen site
    preds = pd.read_parquet(tmp_path / "p" / "predictions.parquet")
    assert list(preds["subject_id"]) == test_c.ids


def test_config_errors(small_cohort):
    with pytest.raises(ConfigError, match="unknown model"):
        run_pipeline(cohort=small_cohort, model={"name": "nope"}, output_dir=None)
    with pytest.raises(ConfigError, match="unknown parameter"):
        run_pipeline(cohort=small_cohort, model={"name": "logreg", "depth": 3}, output_dir=None)
    with pytest.raises(ConfigError, match="unknown connectome key"):
        run_pipeline(cohort=small_cohort, connectome={"knd": "tangent"}, output_dir=None)
    with pytest.raises(ConfigError, match="Could not override"):
        run_pipeline(cohort=small_cohort, overrides=["cv.nsplits=3"], output_dir=None)


def test_predict_without_labels_writes_predictions_only(small_cohort, tmp_path):
    from dataclasses import replace

    model_dir = train_model(cohort=small_cohort.subset(range(40)), output_dir=tmp_path / "m")
    unlabelled = small_cohort.subset(range(40, 60))
    unlabelled.subjects = [replace(s, label=None) for s in unlabelled.subjects]
    res = predict(model_dir, cohort=unlabelled, output_dir=tmp_path / "p")
    assert not (tmp_path / "p" / "metrics.json").exists()
    preds = pd.read_parquet(tmp_path / "p" / "predictions.parquet")
    assert list(preds["subject_id"]) == unlabelled.ids
    assert preds["proba"].between(0, 1).all() and res.pooled == {}


def test_rerun_a_saved_config_with_other_choices(small_cohort, tmp_path):
    first = run_pipeline(cohort=small_cohort, cv={"scheme": "stratified", "n_splits": 3},
                         output_dir=tmp_path / "a", progress=False)
    again = run_pipeline(PipelineResult.load(tmp_path / "a").config, cohort=small_cohort,
                         model="svm", output_dir=tmp_path / "b", overrides=["cv.n_splits=4"])
    assert first.config["model"]["name"] == "logreg"
    assert again.config["model"] == {"name": "svm", "C": 0.01, "class_weight": "balanced"}
    assert len(again.per_fold) == 4 and (tmp_path / "b" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="unknown model option"):
        run_pipeline(first.config, cohort=small_cohort, model="nope", output_dir=None)
