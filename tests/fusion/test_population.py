"""Population graph: planted signal found; inductive predictions depend on nothing but the
training graph and the subject itself; transductive never reads test labels."""

from __future__ import annotations

import dataclasses

import numpy as np

from graphbrain.data import Cohort, make_synthetic_cohort
from graphbrain.fusion.population import PopulationGraphClassifier
from graphbrain.training import binary_metrics


def _split():
    c = make_synthetic_cohort(100, n_rois=12, n_timepoints=100, effect_size=2.0, seed=3)
    return c.subset(np.arange(70)), c.subset(np.arange(70, 100))


def test_inductive_population_graph_recovers_the_planted_signal_and_is_per_subject(tmp_path):
    train, test = _split()
    clf = PopulationGraphClassifier(epochs=120).fit(train)
    p = clf.predict_proba(test)[:, 1]
    assert binary_metrics(test.labels, p)["auroc"] > 0.85
    # a subject's prediction does not depend on which other subjects are predicted with it
    alone = np.array([clf.predict_proba(test.subset([i]))[0, 1] for i in (0, 7, 21)])
    np.testing.assert_allclose(alone, p[[0, 7, 21]], atol=1e-5)
    clf.save(tmp_path / "m")
    from graphbrain.fusion.factory import load_multimodal

    np.testing.assert_allclose(load_multimodal(tmp_path / "m").predict_proba(test)[:, 1], p, atol=1e-5)


def test_transductive_mode_never_reads_test_labels():
    train, test = _split()
    unlabelled = Cohort([dataclasses.replace(s, label=None) for s in test], name="unlabelled")
    clf = PopulationGraphClassifier(mode="transductive", epochs=120).fit(train)
    p = clf.predict_proba(unlabelled)[:, 1]  # labels are None: reading one would raise
    assert binary_metrics(test.labels, p)["auroc"] > 0.85
