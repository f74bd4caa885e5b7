"""Tests written against mutants of ``training/splits.py`` that the suite let survive.

Each test states a documented property (agreement with scikit-learn's splitters, the
defaults in the signature, the count an error reports) and fails on the mutant named
in its docstring (``python tools/mutation.py splits``; see docs/testing.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from graphbrain.errors import ConfigError
from graphbrain.training.splits import stratified_kfold


def _labels(n: int = 60) -> np.ndarray:
    return np.random.default_rng(7).permutation(np.arange(n) % 2)


def test_stratified_kfold_defaults_are_ten_folds_one_repeat_seed_zero():
    """Defaults (n_splits=10, repeats=1, seed=0) give exactly sklearn's shuffled
    StratifiedKFold(10, random_state=0). Kills mutants of the three default values."""
    y = _labels()
    folds = list(stratified_kfold(y))
    ref = list(StratifiedKFold(n_splits=10, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    assert len(folds) == 10
    assert [f.name for f in folds] == [f"fold{k}" for k in range(10)]
    assert {f.repeat for f in folds} == {0}
    for f, (tr, te) in zip(folds, ref, strict=True):
        np.testing.assert_array_equal(f.train, np.sort(tr))
        np.testing.assert_array_equal(f.test, np.sort(te))


def test_grouped_folds_are_sklearns_seeded_stratified_group_kfold():
    """With repeated participants, repeat r is StratifiedGroupKFold(random_state=seed + r):
    reproducible across calls and equal to sklearn's. Kills ``random_state=None``."""
    groups = np.repeat([f"p{i:02d}" for i in range(30)], 2)
    y = np.repeat(np.random.default_rng(3).permutation(np.arange(30) % 2), 2)
    a = list(stratified_kfold(y, 5, repeats=2, seed=4, groups=groups))
    b = list(stratified_kfold(y, 5, repeats=2, seed=4, groups=groups))
    for r in range(2):
        ref = list(
            StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=4 + r).split(np.zeros(60), y, groups)
        )
        for k, (tr, te) in enumerate(ref):
            np.testing.assert_array_equal(a[5 * r + k].test, np.sort(te))
            np.testing.assert_array_equal(a[5 * r + k].train, np.sort(tr))
            np.testing.assert_array_equal(a[5 * r + k].test, b[5 * r + k].test)


@pytest.mark.parametrize(("labels", "count"), [([], 0), ([1], 1), ([0, 1, 1], 1)])
def test_too_few_subjects_error_reports_the_smallest_class_count(labels, count):
    """The error names the size of the smallest class: 0 for an empty label vector (a
    ConfigError, not a numpy error on an empty minimum), 1 for a single subject."""
    with pytest.raises(ConfigError, match=rf"smallest class has {count} subject\(s\)"):
        list(stratified_kfold(np.asarray(labels, dtype=int), 2))
