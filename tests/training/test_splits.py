"""Inner validation splits with small classes and grouped participants."""

from __future__ import annotations

import numpy as np
import pytest

from graphbrain.training.splits import inner_split


@pytest.mark.parametrize("labels", [[1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]])
def test_grouped_inner_split_with_a_small_class_keeps_participants_apart(labels):
    """A class with fewer members than the inner folds (found by Hypothesis): fewer folds,
    or a plain grouped split for a single member, never a scikit-learn error."""
    labels = np.array(labels)
    groups = np.array(["p0", "p1", "p1", "p2", "p3", "p4"])
    train = np.arange(6)
    fit_idx, val_idx = inner_split(train, labels, val_fraction=0.25, seed=1, groups=groups)
    assert sorted([*fit_idx, *val_idx]) == list(train) and len(fit_idx) and len(val_idx)
    assert not set(groups[fit_idx]) & set(groups[val_idx])


def test_inner_split_too_small_to_stratify_falls_back_to_a_plain_split():
    """7 subjects at val_fraction 0.125: one validation subject cannot hold both classes."""
    labels = np.array([0, 0, 0, 0, 0, 1, 1])
    fit_idx, val_idx = inner_split(np.arange(7), labels, val_fraction=0.125, seed=0)
    assert len(val_idx) == 1 and sorted([*fit_idx, *val_idx]) == list(range(7))
