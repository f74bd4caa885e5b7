"""TorchClassifier on synthetic cohorts: leakage-free early stopping, save/load, errors,
and the models learning the planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.data import Cohort, Subject, make_synthetic_cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.metrics import binary_metrics
from graphbrain.training.torch_estimator import TorchClassifier
from graphbrain.training.trainer import Trainer

FAST = {"epochs": 4, "batch_size": 16, "progress": False}
STAGIN_SMALL = {"hidden": 16, "n_layers": 2}
DYN = {"window": 20, "stride": 10}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core box, OpenMP threads spinning against other
    processes make 2 threads far slower than 1."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return make_synthetic_cohort(n_subjects=48, n_rois=12, n_timepoints=80, n_planted=4, effect_size=2.0, seed=4)


def test_early_stopping_sees_only_inner_validation_subjects_of_the_training_fold(cohort, monkeypatch):
    seen: list[list[str]] = []
    original = Trainer.evaluate

    def spy(self, model, dataset, **kw):
        seen.append(list(dataset.ids))
        return original(self, model, dataset, **kw)

    monkeypatch.setattr(Trainer, "evaluate", spy)
    train_idx, test_idx = np.arange(0, 36), np.arange(36, 48)
    train, test = cohort.subset(train_idx), cohort.subset(test_idx)
    clf = build_classifier("stagin", model_params=STAGIN_SMALL, connectome=DYN, train={**FAST, "val_fraction": 0.25})
    clf.fit(train)
    assert len(seen) == 4  # one validation pass per epoch
    val = set(seen[0])
    assert all(set(s) == val for s in seen)
    assert val == set(clf.val_ids_) and len(val) == 9
    assert val <= set(train.ids)
    assert not val & set(test.ids)
    # the model was trained on the rest of the training fold, never on the validation part
    clf.predict_proba(test)  # prediction does not go through early stopping
    assert len(seen) == 4


@pytest.mark.parametrize(
    "name,params,conn",
    [
        ("stagin", STAGIN_SMALL, DYN),
        ("bnt", {"heads": 2, "n_clusters": 4}, {"kind": "tangent"}),
        ("brainnetcnn", {}, {}),
        ("gat", {"hidden": 8}, {"top_percent": 25}),
    ],
)
def test_save_load_round_trip_gives_identical_probabilities(cohort, tmp_path, name, params, conn):
    clf = build_classifier(name, model_params=params, connectome=conn, train=FAST, seed=1)
    clf.fit(cohort.subset(range(36)))
    test = cohort.subset(range(36, 48))
    p = clf.predict_proba(test)
    assert p.shape == (12, 2)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    clf.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").exists()
    loaded = load_classifier(tmp_path / "m")
    assert isinstance(loaded, TorchClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(test), p)
    assert loaded.history() == clf.history()
    for k, v in clf.explain(test).items():
        np.testing.assert_array_equal(loaded.explain(test)[k], v)


def test_static_fc_is_standardised_with_training_fold_statistics_only(cohort, monkeypatch):
    # Regression (ABIDE): raw correlations (mean ~0.3, sd ~0.24, diagonal 1) went into the
    # static-FC models unscaled. Inputs are now z-scored per edge with the mean / sd of the
    # training cohort passed to fit (never of the data being predicted), diagonal 0.
    seen: list[torch.Tensor] = []
    original = Trainer.fit

    def spy(self, model, train_set, val_set=None, **kw):
        seen.append(torch.cat([train_set.tensors["fc"], val_set.tensors["fc"]]))
        return original(self, model, train_set, val_set, **kw)

    monkeypatch.setattr(Trainer, "fit", spy)
    train, test = cohort.subset(range(36)), cohort.subset(range(36, 48))
    clf = build_classifier("brainnetcnn", connectome={"estimator": "empirical"}, train=FAST).fit(train)
    raw = clf.transformer.transform(train.timeseries()).astype(np.float64)
    np.testing.assert_allclose(clf.fc_mean_, raw.mean(0), atol=1e-5)
    x = seen[0].numpy().astype(np.float64)
    off = ~np.eye(x.shape[-1], dtype=bool)
    np.testing.assert_allclose(x.mean(0)[off], 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(0)[off], 1.0, atol=1e-3)
    assert np.all(x[:, ~off] == 0.0)
    mean_before = clf.fc_mean_.copy()
    clf.predict_proba(test)  # predicting must not refit the statistics
    np.testing.assert_array_equal(clf.fc_mean_, mean_before)
    off_clf = build_classifier("brainnetcnn", connectome={"estimator": "empirical", "standardize": False}, train=FAST)
    off_clf.fit(train)
    assert off_clf.fc_mean_ is None
    np.testing.assert_allclose(seen[1].numpy()[:, ~off], 1.0, atol=1e-5)  # raw correlations when switched off


def test_explain_returns_attention_per_subject(cohort):
    clf = build_classifier("stagin", model_params=STAGIN_SMALL, connectome=DYN, train=FAST).fit(cohort)
    att = clf.explain(cohort.subset(range(5)))
    w = clf.n_windows_
    assert w == (80 - 20) // 10 + 1
    assert att["spatial"].shape == (5, w, 12)
    assert att["temporal"].shape == (5, w)
    np.testing.assert_allclose(att["temporal"].sum(1), 1.0, rtol=1e-5)
    assert [h["epoch"] for h in clf.history()] == list(range(len(clf.history())))


def test_scan_shorter_than_one_window_raises_naming_it(cohort):
    # scans of any length are taken (50 TRs here, trained on 80), but not one shorter than a window
    clf = build_classifier("stagin", model_params=STAGIN_SMALL, connectome=DYN, train=FAST).fit(cohort.subset(range(24)))
    s = cohort[30]
    shorter = Subject(id="sub-shorter", timeseries=s.timeseries[:50], label=s.label, site=s.site)
    assert clf.predict_proba(Cohort([cohort[31], shorter])).shape == (2, 2)
    short = Subject(id="sub-short", timeseries=s.timeseries[:15], label=s.label, site=s.site)
    with pytest.raises(DataError, match="sub-short"):
        clf.predict_proba(Cohort([cohort[31], short]))


def test_window_in_seconds_and_common_length(cohort):
    clf = TorchClassifier("stagin", model_params=STAGIN_SMALL, connectome={"window_seconds": 30, "stride": 10, "n_timepoints": 70}, train=FAST)
    clf.fit(cohort.subset(range(24)))
    assert clf.window_ == 15 and clf.n_timepoints_ == 70  # 30 s / TR 2 s
    assert clf.n_windows_ == (70 - 15) // 10 + 1


def test_bad_configuration_is_refused_early():
    with pytest.raises(ConfigError, match="valid keys"):
        TorchClassifier("stagin", train={"epoch": 3})
    with pytest.raises(ConfigError):
        TorchClassifier("logreg")
    with pytest.raises(ConfigError, match="valid keys"):
        TorchClassifier("gin", connectome={"windw": 3})


def _planted_auroc(name, params, conn, train, cohort_kw, n_train):
    c = make_synthetic_cohort(**cohort_kw)
    clf = build_classifier(name, model_params=params, connectome=conn, train=train, seed=0)
    clf.fit(c.subset(range(n_train)))
    test = c.subset(range(n_train, len(c)))
    return binary_metrics(test.labels, clf.predict_proba(test)[:, 1])["auroc"]


@pytest.mark.slow
def test_stagin_small_config_recovers_planted_signal_fast():
    """Planted coupling of 4 of 16 ROIs in the middle third of 100 TRs, effect size 2.0.

    The budget is fixed by the configuration (30 epochs of a 2 x 32 model, about 5 s on
    one CPU thread, well under the issue's one minute); wall-clock time is not asserted
    here because speed belongs in benchmarks/, not in unit tests on a shared CI machine.
    """
    auroc = _planted_auroc(
        "stagin",
        {"hidden": 32, "n_layers": 2},
        {"window": 20, "stride": 4},
        {"epochs": 30, "patience": 12, "lr": 3e-3, "batch_size": 16, "progress": False},
        dict(n_subjects=120, n_rois=16, n_timepoints=100, n_planted=4, effect_size=2.0, seed=3),
        n_train=80,
    )
    assert auroc >= 0.95, auroc


@pytest.mark.parametrize("name,params", [("gin", {"hidden": 32}), ("brainnetcnn", {})])
def test_static_models_learn_planted_signal(name, params):
    auroc = _planted_auroc(
        name,
        params,
        {"kind": "correlation", "estimator": "empirical"},
        {"epochs": 30, "patience": 10, "lr": 3e-3, "batch_size": 16, "progress": False},
        dict(n_subjects=120, n_rois=16, n_timepoints=120, n_planted=4, effect_size=2.0, seed=3),
        n_train=80,
    )
    assert auroc >= 0.8, auroc
