"""Fusion beats single modalities where the label is split between them; missing
modalities degrade gracefully and are never imputed; save/load is exact."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.fusion.model import FusionClassifier, FusionNet
from graphbrain.fusion.synthetic import make_multimodal_cohort
from graphbrain.training import binary_metrics, build_classifier, make_folds

FAST = {"progress": False, "epochs": 40}


class _ImageOnly:
    """Logistic regression on the embedding alone (chance, 0.5, where it is missing)."""

    def __init__(self, table):
        self.table = table

    def fit(self, cohort):
        v, p = self.table.align(cohort.ids)
        self.m = LogisticRegression(max_iter=1000).fit(v[p], cohort.labels[p])
        return self

    def predict_proba(self, cohort):
        v, p = self.table.align(cohort.ids)
        out = self.m.predict_proba(v)
        out[~p] = 0.5
        return out


def _cv_auroc(cohort, make, n_splits=3):
    ps, ys = [], []
    for f in make_folds("stratified", cohort.labels, cohort.sites, n_splits=n_splits, seed=0):
        tr, te = cohort.subset(f.train), cohort.subset(f.test)
        ps.append(make().fit(tr).predict_proba(te)[:, 1])
        ys.append(te.labels)
    return binary_metrics(np.concatenate(ys), np.concatenate(ps))["auroc"]


def test_fusion_beats_each_single_modality_when_the_label_is_split():
    cohort, table = make_multimodal_cohort(120, signal="both", seed=0)
    conn = _cv_auroc(cohort, lambda: build_classifier("logreg"))
    img = _cv_auroc(cohort, lambda: _ImageOnly(table))
    fused = _cv_auroc(cohort, lambda: FusionClassifier(image=table, phenotypes=None, train=FAST))
    # each modality shows the label for about half the subjects: alone ~0.8, together ~0.9
    assert fused > max(conn, img) + 0.05, (fused, conn, img)


@pytest.mark.parametrize("signal", ["image", "connectome"])
def test_fusion_follows_the_informative_modality(signal):
    cohort, table = make_multimodal_cohort(120, signal=signal, seed=1)
    conn = _cv_auroc(cohort, lambda: build_classifier("logreg"))
    img = _cv_auroc(cohort, lambda: _ImageOnly(table))
    fused = _cv_auroc(cohort, lambda: FusionClassifier(image=table, phenotypes=None, train=FAST, strategy="concat"))
    good, bad = (img, conn) if signal == "image" else (conn, img)
    assert good - bad > 0.2  # the cohort is built that way
    assert fused >= good - 0.05 and fused > bad + 0.15, (fused, good, bad)


def test_missing_modalities_degrade_gracefully_and_are_recorded():
    full, table_full = make_multimodal_cohort(120, signal="both", seed=0)
    cohort, table = make_multimodal_cohort(120, signal="both", seed=0, missing=0.3)
    assert 0.55 < len(table) / len(cohort) < 0.85  # about 30 % of subjects have no embedding
    conn = _cv_auroc(cohort, lambda: build_classifier("logreg"))
    with_full = _cv_auroc(full, lambda: FusionClassifier(image=table_full, train=FAST))
    with_missing = _cv_auroc(cohort, lambda: FusionClassifier(image=table, train=FAST))
    assert conn + 0.02 < with_missing <= with_full + 0.03, (conn, with_missing, with_full)
    clf = FusionClassifier(image=table, train=FAST).fit(cohort.subset(np.arange(90)))
    test = cohort.subset(np.arange(90, 120))
    cols = clf.prediction_columns(test)
    assert cols["has_image"].tolist() == [sid in table for sid in test.ids]
    rec = clf.explain(test)["modality_mask"]
    assert rec.shape == (30, 3) and (rec[:, 0] == 1).all()
    np.testing.assert_array_equal(rec[:, 1] > 0, cols["has_image"])


@pytest.mark.parametrize("strategy", ["concat", "gated", "cross_attention"])
def test_a_missing_modality_contributes_nothing(strategy):
    torch.manual_seed(0)
    net = FusionNet(n_rois=6, hidden=8, strategy=strategy, image_dim=4, pheno_dim=3).eval()
    b = 5
    fc = torch.randn(b, 6, 6)
    base = {"fc": fc, "image": torch.randn(b, 4), "image_mask": torch.zeros(b),
            "pheno": torch.randn(b, 3), "pheno_mask": torch.ones(b)}
    other = {**base, "image": torch.randn(b, 4) * 100}  # a different value where it is missing
    torch.testing.assert_close(net(base).logits, net(other).logits)
    shown = {**other, "image_mask": torch.ones(b)}
    assert not torch.allclose(net(base).logits, net(shown).logits)  # when present, it counts


def test_save_load_predicts_identically(tmp_path):
    cohort, table = make_multimodal_cohort(60, signal="both", seed=2)
    table.save(tmp_path / "emb.parquet")
    clf = FusionClassifier(image=tmp_path / "emb.parquet", strategy="cross_attention",
                           train={"progress": False, "epochs": 5}).fit(cohort.subset(np.arange(40)))
    test = cohort.subset(np.arange(40, 60))
    clf.save(tmp_path / "m")
    assert sorted(p.suffix for p in (tmp_path / "m").iterdir()) == [".json", ".safetensors", ".safetensors"]
    from graphbrain.fusion.factory import load_multimodal

    loaded = load_multimodal(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(test), clf.predict_proba(test), atol=1e-6)
    # another atlas with the same ROI count is refused, not silently scored
    renamed = Cohort([dataclasses.replace(s, roi_names=[f"other{i}" for i in range(s.n_rois)]) for s in test],
                     roi_names=[f"other{i}" for i in range(test.n_rois)])
    with pytest.raises(DataError, match="ROI"):
        loaded.predict_proba(renamed)
    # a pickle in place of the weights is refused before anything parses it
    marker = tmp_path / "EXECUTED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "m" / "weights.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DataError, match="pickle"):
        load_multimodal(tmp_path / "m")
    assert not marker.exists()


def test_a_dynamic_model_is_a_connectome_branch_through_stacking(tmp_path):
    """stagin (dynamic FC) as the branch: inner out-of-fold log-odds, refitted for prediction."""
    cohort, table = make_multimodal_cohort(60, signal="both", seed=3, n_rois=8, n_timepoints=80)
    tiny = {"hidden": 8, "n_layers": 1, "connectome": {"window": 20, "stride": 10},
            "train": {"epochs": 2, "progress": False, "batch_size": 16}}
    clf = FusionClassifier(image=table, phenotypes=None, branch="stagin", branch_params=tiny,
                           train={"progress": False, "epochs": 5})
    seen: list[int] = []
    orig = clf._branch_classifier

    def spy():
        inner = orig()
        fit = inner.fit
        inner.fit = lambda c: (seen.append(len(c)), fit(c))[1]
        return inner

    clf._branch_classifier = spy
    train, test = cohort.subset(np.arange(45)), cohort.subset(np.arange(45, 60))
    clf.fit(train)
    assert sorted(seen) == [30, 30, 30, 45]  # 3 inner fits on 2/3 of the fold, then the whole fold
    p = clf.predict_proba(test)
    clf.save(tmp_path / "m")
    from graphbrain.fusion.factory import load_multimodal

    loaded = load_multimodal(tmp_path / "m")
    with pytest.raises(ConfigError, match="set_image"):  # the table was given in memory: say so
        loaded.predict_proba(test)
    loaded.set_image(table)
    np.testing.assert_allclose(loaded.predict_proba(test), p, atol=1e-5)
