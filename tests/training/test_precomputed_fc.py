"""Both classifier kinds on subjects that come with precomputed FC matrices only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.training import binary_metrics, build_classifier, load_classifier


def _fc_only(cohort: Cohort) -> Cohort:
    subjects = [replace(s, timeseries=None, fc=np.corrcoef(s.timeseries.T)) for s in cohort]
    return Cohort(subjects=subjects, name="fc_only")


@pytest.mark.parametrize(
    "name,train",
    [("logreg", None), ("brainnetcnn", {"epochs": 15, "progress": False, "num_threads": 1})],
)
def test_precomputed_fc_trains_saves_and_refuses_time_series(small_cohort, tmp_path, name, train):
    fc_cohort = _fc_only(small_cohort)
    tr, te = fc_cohort.subset(range(40)), fc_cohort.subset(range(40, 60))
    clf = build_classifier(name, train=train).fit(tr)
    proba = clf.predict_proba(te)[:, 1]
    assert binary_metrics(te.labels, proba)["auroc"] > 0.7
    clf.save(tmp_path)
    again = load_classifier(tmp_path)
    np.testing.assert_allclose(again.predict_proba(te)[:, 1], proba, atol=1e-6)
    with pytest.raises(ConfigError, match="precomputed FC"):
        again.predict_proba(small_cohort.subset(range(40, 60)))
    mixed = Cohort(subjects=tr.subjects[:5] + small_cohort.subjects[5:10])
    with pytest.raises(DataError, match="mixes"):
        build_classifier(name, train=train).fit(mixed)
