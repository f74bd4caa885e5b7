"""Tests written against mutants of ``training/metrics.py`` that the suite let survive.

The edge cases of a cross-validation fold that a site-wise scheme does produce (a test
site with one class, sensitivity with as many misses as hits) and of the summary over
folds, each against a hand count or sklearn (``python tools/mutation.py metrics``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from graphbrain.training.metrics import binary_metrics, summarize


def test_fold_without_positives_has_undefined_sensitivity_and_auroc():
    """A leave-site-out fold may hold controls only: sensitivity and AUROC are undefined
    (NaN, not an exception), balanced accuracy falls back to specificity."""
    y = np.zeros(6, dtype=int)
    p = np.array([0.1, 0.7, 0.2, 0.4, 0.9, 0.3])
    m = binary_metrics(y, p)
    assert math.isnan(m["sensitivity"]) and math.isnan(m["auroc"])
    assert m["specificity"] == 4 / 6 and m["balanced_accuracy"] == 4 / 6
    assert m["accuracy"] == 4 / 6 and m["f1"] == 0.0
    # nothing positive, nothing predicted positive: F1 is 0/0, reported as 0.0 (sklearn's
    # zero_division=0 convention, silently), never as a perfect 1.0
    quiet = binary_metrics(y, np.full(6, 0.2))
    assert quiet["f1"] == 0.0 and quiet["accuracy"] == 1.0


def test_fold_without_negatives_falls_back_to_sensitivity():
    y = np.ones(4, dtype=int)
    m = binary_metrics(y, np.array([0.8, 0.3, 0.6, 0.55]))
    assert math.isnan(m["specificity"]) and math.isnan(m["auroc"])
    assert m["sensitivity"] == 3 / 4 and m["balanced_accuracy"] == 3 / 4


def test_as_many_misses_as_hits_gives_sensitivity_one_half():
    """TP = FN = 2: sensitivity 2 / 4 (a defined value), balanced accuracy as sklearn's."""
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.2, 0.1, 0.3, 0.6, 0.1])
    m = binary_metrics(y, p)
    assert m["sensitivity"] == 0.5
    assert m["specificity"] == 2 / 3
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, (p >= 0.5).astype(int)))


def test_summary_of_a_metric_undefined_in_every_fold_is_nan_not_zero():
    """AUROC NaN in every fold (one class per test site): mean and sd are NaN and no
    folds count; a metric defined in one fold only has sd 0; NaN folds are skipped."""
    folds = [
        {"accuracy": 0.5, "auroc": float("nan")},
        {"accuracy": 0.7, "auroc": float("nan")},
        {"accuracy": 0.9, "auroc": float("nan"), "f1": 0.4},
    ]
    s = summarize(folds)
    assert math.isnan(s["auroc"]["mean"]) and math.isnan(s["auroc"]["std"]) and s["auroc"]["n_folds"] == 0
    assert s["f1"] == {"mean": 0.4, "std": 0.0, "n_folds": 1}
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    assert s["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=1))
    assert s["accuracy"]["n_folds"] == 3
    assert math.isnan(s["sensitivity"]["mean"]) and s["sensitivity"]["n_folds"] == 0
