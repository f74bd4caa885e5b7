import numpy as np
import pytest

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


def test_metrics_agree_with_hand_computation():
    """Every metric against values counted by hand on 8 subjects (threshold 0.5, ties >= 0.5)."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.5, 0.1, 0.5])
    # predictions 1 1 0 1 0 1 0 1 -> TP 3 (0, 1, 7), FN 1 (2), FP 2 (3, 5), TN 2 (4, 6)
    # AUROC: of the 16 (positive, negative) pairs the positive scores higher in
    # 4 (0.9) + 3 (0.6) + 2 (0.4) + 2 (0.5) pairs, and 0.5 ties 0.5 once (half a pair): 11.5 / 16
    m = binary_metrics(y, p)
    assert m["accuracy"] == 5 / 8
    assert m["sensitivity"] == 3 / 4
    assert m["specificity"] == 2 / 4
    assert m["balanced_accuracy"] == (3 / 4 + 2 / 4) / 2
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["auroc"] == pytest.approx(11.5 / 16)
    assert m["n"] == 8
    # a one-class fold: AUROC and specificity undefined, balanced accuracy = sensitivity
    one_class = binary_metrics(np.ones(3, int), np.array([0.9, 0.4, 0.6]))
    assert np.isnan(one_class["auroc"]) and np.isnan(one_class["specificity"])
    assert one_class["sensitivity"] == one_class["balanced_accuracy"] == one_class["accuracy"] == 2 / 3
    assert one_class["f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    # another threshold moves the predictions: at 0.65 only 0.9 and 0.7 are positive
    m65 = binary_metrics(y, p, threshold=0.65)
    assert (m65["sensitivity"], m65["specificity"]) == (1 / 4, 3 / 4)
    s = summarize([m, one_class])
    assert s["auroc"]["n_folds"] == 1 and s["auroc"]["mean"] == pytest.approx(11.5 / 16)
    assert s["auroc"]["std"] == 0.0
    assert s["accuracy"]["n_folds"] == 2
    assert s["accuracy"]["mean"] == pytest.approx((5 / 8 + 2 / 3) / 2)
    # sample standard deviation (ddof=1) of two values a, b is |a - b| / sqrt(2)
    assert s["accuracy"]["std"] == pytest.approx(abs(5 / 8 - 2 / 3) / np.sqrt(2))
    assert np.isnan(summarize([{}])["auroc"]["mean"])
