"""Leakage spy for the fusion room: every data-dependent fit sees the training fold only,
and predicting fits nothing (the generic spy in tests/training skips these kinds)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.fusion.model import FusionClassifier
from graphbrain.fusion.phenotypes import PhenotypeEncoder
from graphbrain.fusion.population import PopulationGraphClassifier
from graphbrain.fusion.synthetic import make_multimodal_cohort
from graphbrain.training import trainer


def _fp(x) -> str:
    return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


@pytest.fixture
def spy(monkeypatch):
    seen: dict[str, list] = {"transformer": [], "trainer": [], "phenotypes": []}
    t_fit, tr_fit, p_fit = ConnectivityTransformer.fit, trainer.Trainer.fit, PhenotypeEncoder.fit

    def transformer_fit(self, X, *a, **k):
        seen["transformer"].append({_fp(x) for x in X})
        return t_fit(self, X, *a, **k)

    def trainer_fit(self, model, train_set, val_set, *a, **k):
        seen["trainer"].append(set(map(str, train_set.ids)) | set(map(str, val_set.ids)))
        return tr_fit(self, model, train_set, val_set, *a, **k)

    def pheno_fit(self, cohort):
        seen["phenotypes"].append(set(cohort.ids))
        return p_fit(self, cohort)

    monkeypatch.setattr(ConnectivityTransformer, "fit", transformer_fit)
    monkeypatch.setattr(trainer.Trainer, "fit", trainer_fit)
    monkeypatch.setattr(PhenotypeEncoder, "fit", pheno_fit)
    return seen


@pytest.mark.parametrize("make", [
    lambda t: FusionClassifier(image=t, strategy="cross_attention", train={"progress": False, "epochs": 3}),
    lambda t: FusionClassifier(image=t, branch="brainnetcnn", branch_params={"e2e_channels": [4], "e2n_channels": 4,
                               "n2g_channels": 8, "fc_hidden": [8]}, train={"progress": False, "epochs": 2}),
    lambda t: PopulationGraphClassifier(epochs=10),
], ids=["fusion-logreg", "fusion-brainnetcnn", "population"])
def test_fusion_fits_see_the_training_fold_only(spy, make):
    cohort, table = make_multimodal_cohort(48, signal="both", seed=7, n_rois=8, n_timepoints=60)
    train, test = cohort.subset(np.arange(36)), cohort.subset(np.arange(36, 48))
    train_fp, test_fp = {_fp(s.timeseries) for s in train}, {_fp(s.timeseries) for s in test}
    clf = make(table).fit(train)
    counts = {k: len(v) for k, v in spy.items()}
    assert spy["transformer"], "the connectome transformer was never fitted"
    for fps in spy["transformer"]:
        assert fps <= train_fp and fps.isdisjoint(test_fp)
    for ids in spy["trainer"] + spy["phenotypes"]:
        assert ids <= set(train.ids) and ids.isdisjoint(test.ids)
    clf.predict_proba(test)
    clf.explain(test)
    assert {k: len(v) for k, v in spy.items()} == counts, "predicting fitted something"


def test_the_fusion_spy_detects_a_refit_on_test_subjects(spy):
    cohort, table = make_multimodal_cohort(40, signal="both", seed=8, n_rois=8, n_timepoints=60)
    train, test = cohort.subset(np.arange(30)), cohort.subset(np.arange(30, 40))
    clf = FusionClassifier(image=table, train={"progress": False, "epochs": 2}).fit(train)
    clf._inputs(test, fit=True, y=test.labels)  # what a leaky predict would do
    test_fp = {_fp(s.timeseries) for s in test}
    assert any(not fps.isdisjoint(test_fp) for fps in spy["transformer"])
    assert any(not ids.isdisjoint(test.ids) for ids in spy["phenotypes"])
