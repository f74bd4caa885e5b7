import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score, roc_auc_score

from graphbrain.errors import ConfigError
from graphbrain.training import binary_metrics, inner_split, leave_site_out, make_folds, summarize


def test_stratified_folds_partition_and_balance():
    y = np.array([0] * 30 + [1] * 20)
    folds = make_folds("stratified", y, np.array(["a"] * 50), n_splits=5, seed=0)
    assert len(folds) == 5
    test_all = np.concatenate([f.test for f in folds])
    assert sorted(test_all.tolist()) == list(range(50))
    for f in folds:
        assert set(f.train).isdisjoint(f.test)
        assert y[f.test].sum() == 4  # 20 positives / 5 folds
    reps = make_folds("stratified", y, np.array(["a"] * 50), n_splits=5, repeats=2, seed=0)
    assert len(reps) == 10 and {f.repeat for f in reps} == {0, 1}
    assert not np.array_equal(reps[0].test, reps[5].test)


def test_leave_site_out():
    sites = np.array(["A"] * 4 + ["B"] * 3 + ["C"] * 3)
    y = np.array([0, 1] * 5)
    folds = list(leave_site_out(sites, y))
    assert [f.name for f in folds] == ["site=A", "site=B", "site=C"]
    for f in folds:
        assert len(set(sites[f.test])) == 1
        assert sites[f.test][0] not in set(sites[f.train])
    with pytest.raises(ConfigError, match="at least 2 sites"):
        list(leave_site_out(np.array(["A"] * 4), y[:4]))
    with pytest.raises(ConfigError, match="unknown cv scheme"):
        make_folds("random", y, sites)


def test_inner_split_stays_inside_training_fold():
    y = np.array([0, 1] * 50)
    train = np.arange(0, 100, 2)  # only even indices...
    y[train[: len(train) // 2]] = 1
    fit_idx, val_idx = inner_split(train, y, val_fraction=0.25, seed=3)
    assert set(fit_idx) | set(val_idx) == set(train)
    assert set(fit_idx).isdisjoint(val_idx)
    assert len(val_idx) == pytest.approx(len(train) * 0.25, abs=1)


def test_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    one_class = binary_metrics(np.ones(5, int), np.full(5, 0.9))
    assert np.isnan(one_class["auroc"]) and one_class["accuracy"] == 1.0
    s = summarize([m, one_class])
    assert s["auroc"]["n_folds"] == 1 and s["accuracy"]["n_folds"] == 2
    assert s["accuracy"]["mean"] == pytest.approx((m["accuracy"] + 1.0) / 2)
