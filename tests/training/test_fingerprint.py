"""Atlas fingerprint: a trained classifier refuses a cohort whose ROIs differ, even with the same count."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from graphbrain.data import Cohort, make_synthetic_cohort
from graphbrain.errors import DataError
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.estimator import check_rois, roi_fingerprint

KINDS = [
    ("logreg", {}),
    ("gcn", {"hidden": 8}),
]
TRAIN = {"epochs": 1, "progress": False, "batch_size": 16}


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return make_synthetic_cohort(n_subjects=24, n_rois=8, n_timepoints=60, n_sites=2, seed=5)


def _renamed(c: Cohort, names: list[str] | None) -> Cohort:
    return Cohort([replace(s, roi_names=names) for s in c], name="other", roi_names=names)


@pytest.mark.parametrize(("model", "params"), KINDS)
def test_other_atlas_with_same_roi_count_is_refused_before_and_after_saving(cohort, model, params, tmp_path):
    clf = build_classifier(model, model_params=params, train=TRAIN).fit(cohort)
    names = list(cohort.roi_names)
    other = _renamed(cohort, [f"Schaefer_{i}" for i in range(8)])
    with pytest.raises(DataError, match=r"ROI000.*Schaefer_0") as err:
        clf.predict_proba(other)
    assert "trained on" in str(err.value) and "first difference at ROI 0" in str(err.value)
    # the same names in another order are another atlas layout too
    swapped = names.copy()
    swapped[3], swapped[5] = swapped[5], swapped[3]
    with pytest.raises(DataError, match="first difference at ROI 3: 'ROI003' vs 'ROI005'"):
        clf.predict_proba(_renamed(cohort, swapped))
    # the training atlas passes, and so does a cohort without names (count only, warned)
    p_same = clf.predict_proba(_renamed(cohort, names))
    np.testing.assert_allclose(p_same, clf.predict_proba(cohort), atol=1e-6)
    with pytest.warns(UserWarning, match="no ROI names"):
        clf.predict_proba(_renamed(cohort, None))
    clf.save(tmp_path / "m")
    stored = json.loads((tmp_path / "m" / "classifier.json").read_text())["rois"]
    assert stored["roi_names"] == names and stored["n_rois"] == 8
    loaded = load_classifier(tmp_path / "m")
    with pytest.raises(DataError, match="Schaefer_0"):
        loaded.predict_proba(other)
    np.testing.assert_allclose(loaded.predict_proba(cohort), p_same, atol=1e-6)


def test_cohort_without_names_trains_with_one_warning_and_checks_the_count(cohort):
    bare = _renamed(cohort, None)
    with pytest.warns(UserWarning, match="no ROI names") as rec:
        clf = build_classifier("logreg").fit(bare)
    assert len([w for w in rec if "no ROI names" in str(w.message)]) == 1
    assert clf.rois_ == {"n_rois": 8, "roi_names": None, "sha256": None}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no names on either side: nothing to warn about
        clf.predict_proba(bare)
    smaller = make_synthetic_cohort(n_subjects=4, n_rois=6, n_timepoints=60, seed=1)
    with pytest.raises(DataError, match="trained on 8 ROIs, this cohort has 6"):
        clf.predict_proba(smaller)


def test_fingerprint_hash_and_mixed_cohorts(cohort):
    fp = roi_fingerprint(cohort)
    import hashlib

    assert fp["sha256"] == hashlib.sha256("\n".join(f"ROI{i:03d}" for i in range(8)).encode()).hexdigest()
    mixed = Cohort([cohort[0], replace(cohort[1], roi_names=[f"x{i}" for i in range(8)])], name="mixed")
    with pytest.raises(DataError, match="different ROI names"):
        roi_fingerprint(mixed)
    check_rois(None, cohort)  # an old model without a fingerprint is not checked
