"""Tests written against mutants of ``training/torch_estimator.py`` that the suite let survive.

The configured covariance estimator reaches the connectome; the linear path's
``logreg`` start is sklearn's logistic regression on the fitting subjects; a model
trained on a GPU predicts on a CPU-only machine; attribution inputs cover the cohort in
order; errors name the subject; a model folder may be a new nested path
(``python tools/mutation.py torch_estimator``; see docs/testing.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import graphbrain.training.torch_estimator as te
from graphbrain.data import Cohort, make_synthetic_cohort
from graphbrain.errors import ConfigError
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.trainer import TrainResult

FAST = {"epochs": 2, "batch_size": 16, "progress": False}
BNC = {"e2e_channels": [2], "e2n_channels": 2, "n2g_channels": 4, "fc_hidden": [4]}


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return make_synthetic_cohort(n_subjects=32, n_rois=8, n_timepoints=60, n_planted=4, effect_size=2.0, seed=9)


def test_configured_estimator_and_nested_save_folder(cohort, tmp_path: Path):
    clf = build_classifier("brainnetcnn", model_params=BNC, connectome={"estimator": "empirical"}, train=FAST)
    clf.fit(cohort)
    assert clf.transformer.estimator == "empirical"
    target = tmp_path / "runs" / "fold0" / "model"
    clf.save(target)
    np.testing.assert_allclose(load_classifier(target).predict_proba(cohort), clf.predict_proba(cohort), atol=1e-6)


def test_linear_path_starts_from_sklearns_logistic_regression_on_the_fitting_subjects(cohort, monkeypatch):
    """With ``linear_init="logreg"`` and no training step, the linear path holds exactly
    LogisticRegression(C=1, balanced) fitted on the fitting part of the training fold
    (validation subjects excluded): class-1 row - class-0 row = coef / input_scale, the two
    rows opposite (the margin split evenly)."""

    class NoTraining:
        def __init__(self, *a, **kw):
            pass

        def fit(self, *a, **kw):
            return TrainResult(history=[], best_epoch=0)

    monkeypatch.setattr(te, "Trainer", NoTraining)
    params = {**BNC, "linear_path": True, "linear_init": "logreg"}
    clf = build_classifier("brainnetcnn", model_params=params, train=FAST).fit(cohort)
    val = set(clf.val_ids_)
    fit_rows = [i for i, s in enumerate(cohort.ids) if s not in val]
    assert 0 < len(val) and len(fit_rows) < len(cohort)
    fc = torch.from_numpy(clf._static_fc(cohort.subset(fit_rows), fit=False))
    x = clf.model.vectorise(fc).double().numpy()
    y = np.searchsorted(clf.classes_, cohort.labels[fit_rows])
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(x, y)
    w = clf.model.linear.weight.detach().numpy()
    b = clf.model.linear.bias.detach().numpy()
    # the class-1 minus class-0 logit is the regression's margin, split evenly over the rows
    np.testing.assert_allclose((w[1] - w[0]) * float(clf.model.input_scale), ref.coef_[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(b[1] - b[0], ref.intercept_[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(w[0], -w[1])
    assert b[0] == -b[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a CPU-only machine")
def test_model_trained_on_a_gpu_predicts_on_a_cpu_only_machine(cohort, tmp_path: Path):
    clf = build_classifier("brainnetcnn", model_params=BNC, train=FAST).fit(cohort)
    clf.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "classifier.json"
    meta = json.loads(meta_path.read_text())
    meta["train"]["device"] = "cuda:0"  # as written by a run on a GPU machine
    meta_path.write_text(json.dumps(meta))
    back = load_classifier(tmp_path / "m")
    np.testing.assert_allclose(back.predict_proba(cohort), clf.predict_proba(cohort), atol=1e-6)


def test_input_batches_cover_the_cohort_in_order(cohort):
    clf = build_classifier("brainnetcnn", model_params=BNC, train=FAST).fit(cohort)
    rows, fcs = [], []
    for idx, batch in clf.input_batches(cohort, batch_size=5):
        assert len(idx) <= 5 and batch["fc"].shape[0] == len(idx)
        rows.append(idx)
        fcs.append(batch["fc"].numpy())
    np.testing.assert_array_equal(np.concatenate(rows), np.arange(len(cohort)))
    np.testing.assert_allclose(np.concatenate(fcs), clf._static_fc(cohort, fit=False), atol=1e-6)


def test_window_in_seconds_without_tr_names_the_subject(cohort):
    no_tr = Cohort([replace(s, tr=None) for s in cohort], name="no-tr", roi_names=cohort.roi_names)
    clf = te.TorchClassifier("stagin", model_params={"hidden": 8, "n_layers": 1},
                             connectome={"window_seconds": 30, "stride": 5}, train=FAST)
    with pytest.raises(ConfigError, match=rf"connectome.window_seconds needs each subject's repetition time \(tr\); "
                                          rf"subject '{cohort.ids[0]}' has none"):
        clf.fit(no_tr)


def test_constant_edges_get_unit_scale_and_a_one_class_cohort_is_refused(cohort):
    """An ROI constant in every scan gives edges with zero spread over the training fold:
    their scale is 1 (not 0 or NaN), so the standardised FC stays finite."""
    from graphbrain.errors import DataError

    flat = Cohort([replace(s, timeseries=np.concatenate([s.timeseries[:, :7], np.full((s.timeseries.shape[0], 1), 3.0)],
                                                        axis=1).astype(s.timeseries.dtype)) for s in cohort],
                  name="flat-roi", roi_names=cohort.roi_names)
    clf = build_classifier("brainnetcnn", model_params=BNC, connectome={"estimator": "empirical"}, train=FAST)
    clf.fit(flat)
    assert np.all(clf.fc_scale_[7, :7] == 1.0) and np.all(clf.fc_scale_[:7, 7] == 1.0)
    assert np.isfinite(clf._static_fc(flat, fit=False)).all()
    one = Cohort([s for s in cohort if s.label == cohort.labels[0]], name="one-class", roi_names=cohort.roi_names)
    with pytest.raises(DataError, match="single class") as err:
        build_classifier("brainnetcnn", model_params=BNC, train=FAST).fit(one)
    assert err.value.reason == "one_class"


def test_connectome_top_percent_reaches_a_graph_model_and_bad_params_list_the_valid_ones(cohort):
    """``connectome.top_percent`` sets the graph sparsity of the GNNs (unless the model's own
    parameters set it); a model without that parameter ignores it; an unknown model
    parameter is refused with the list of the settable ones (not the shape arguments)."""
    gcn = build_classifier("gcn", model_params={"hidden": 8}, connectome={"top_percent": 35}, train=FAST).fit(cohort)
    def deep(m):  # the GNN itself (inside the linear-path wrapper when that is on)
        return getattr(m, "deep", m)

    assert deep(gcn.model).top_percent == 35.0
    own = build_classifier("gcn", model_params={"hidden": 8, "top_percent": 10}, connectome={"top_percent": 35},
                           train=FAST).fit(cohort)
    assert deep(own.model).top_percent == 10
    build_classifier("brainnetcnn", model_params=BNC, connectome={"top_percent": 35}, train=FAST).fit(cohort)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['hidden'\] for model 'brainnetcnn'") as err:
        build_classifier("brainnetcnn", model_params={"hidden": 3}, train=FAST).fit(cohort)
    for shape_arg in ("n_rois", "n_windows", "n_classes"):
        assert f"'{shape_arg}'" not in str(err.value)
    assert "'e2e_channels'" in str(err.value)


# --- _explain_dynamic: crop-averaged attention of a dynamic-FC model, derived by hand -------
# A deterministic stand-in for STAGIN (same ``window_axes``) whose attention is a known
# function of each crop's window FC and of the window's position inside the crop, so the
# value of a window differs between the crops that contain it. The expected record is
# computed here from the subject's own scan with numpy (window w = TRs [w*stride,
# w*stride + window), Pearson correlation), crop by crop, as the docstring of
# ``TorchClassifier.explain`` defines it.
WIN, STRIDE, CROP = 8, 4, 16  # a training crop of 16 TRs holds (16 - 8) // 4 + 1 = 3 windows
PAD = 7.0  # what the stand-in writes on padded windows (must never reach the record)


class _StubDynamic(torch.nn.Module):
    window_axes = {"spatial": (0,), "temporal": (0,), "temporal_matrix": (0, 1)}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, batch):
        from graphbrain.models.base import ModelOutput

        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        dfc, mask = batch["dfc"].double(), batch["mask"]
        b, w, r, _ = dfc.shape
        pos = torch.arange(w, dtype=torch.float64)
        f = dfc[:, :, 0, 1]  # (B, W) correlation of ROIs 0 and 1 in each window
        spatial = dfc.mean(-1) + pos[None, :, None]  # (B, W, R)
        logit = torch.where(mask, f + pos, torch.full_like(f, -torch.inf))
        temporal = torch.where(mask, torch.softmax(logit, 1), torch.full_like(f, PAD))  # sums to 1 per crop
        tm = 10.0 * f[:, :, None] + pos[None, None, :]  # (B, W, W)
        both = mask[:, :, None] & mask[:, None, :]
        real = mask[..., None].double()
        node = (dfc.mean(-1) * real).sum(1) / real.sum(1)  # (B, R): mean over the crop's windows
        return ModelOutput(
            logits=torch.zeros(b, 2),
            attention={"node": node, "spatial": torch.where(mask[..., None], spatial, PAD), "temporal": temporal,
                       "temporal_matrix": torch.where(both, tm, PAD)},  # a record without window axis first
        )


class _Wrapped(torch.nn.Module):
    """The linear-path wrapper's layout: the dynamic model is ``.deep`` (no window_axes here)."""

    def __init__(self) -> None:
        super().__init__()
        self.deep = _StubDynamic()

    def forward(self, batch):
        return self.deep(batch)


def _explain_by_hand(cohort: Cohort, n_windows_max: int) -> dict[str, np.ndarray]:
    from graphbrain.connectome.ragged import cover_crops

    n_w = [(s.n_timepoints - WIN) // STRIDE + 1 for s in cohort]
    w_all, r = max(n_w), cohort.n_rois
    out = {"spatial": np.full((len(cohort), w_all, r), np.nan), "temporal": np.full((len(cohort), w_all), np.nan),
           "temporal_matrix": np.full((len(cohort), w_all, w_all), np.nan), "node": np.zeros((len(cohort), r))}
    for i, s in enumerate(cohort):
        x = s.timeseries.astype(np.float64)
        corr = [np.corrcoef(x[w * STRIDE : w * STRIDE + WIN].T) for w in range(n_w[i])]
        sp, tp, tm = np.zeros((n_w[i], r)), np.zeros(n_w[i]), np.zeros((n_w[i], n_w[i]))
        c1, c2 = np.zeros(n_w[i]), np.zeros((n_w[i], n_w[i]))
        crops = cover_crops(n_w[i], n_windows_max)
        for a, b in crops:
            ws = np.arange(a, b)
            e = np.exp([corr[w][0, 1] + (w - a) for w in ws])
            for w in ws:
                sp[w] += corr[w].mean(1) + (w - a)
                tp[w] += e[w - a] / e.sum()
                c1[w] += 1
                for v in ws:
                    tm[w, v] += 10.0 * corr[w][0, 1] + (v - a)
                    c2[w, v] += 1
            out["node"][i] += np.mean([corr[w].mean(1) for w in ws], axis=0) / len(crops)
        out["spatial"][i, : n_w[i]] = sp / c1[:, None]
        out["temporal"][i, : n_w[i]] = (tp / c1) / (tp / c1).sum()
        with np.errstate(invalid="ignore"):  # two windows in no common crop: NaN
            out["temporal_matrix"][i, : n_w[i], : n_w[i]] = tm / c2
    return out


@pytest.fixture(scope="module")
def fitted_dynamic():
    """A STAGIN classifier fitted without training steps (only its data set-up matters
    here), and an 8-subject cohort of scans of 1 to 11 windows (1 to 5 prediction crops)."""
    from graphbrain.data import Subject

    mp = pytest.MonkeyPatch()
    mp.setattr(te.Trainer, "fit", lambda self, *a, **kw: TrainResult(history=[], best_epoch=0))
    try:
        base = make_synthetic_cohort(n_subjects=12, n_rois=5, n_timepoints=48, n_planted=2, seed=4)
        clf = te.TorchClassifier("stagin", model_params={"hidden": 4, "n_layers": 1},
                                 connectome={"window": WIN, "stride": STRIDE},
                                 train={**FAST, "batch_size": 4, "crop_length": CROP}).fit(base)
    finally:
        mp.undo()
    # 3, 10, 2, 8 | 11, 1, 6, 2 windows: two batches of 4, each with crops shorter than 3
    # windows (padded) and scans longer than 3 (several overlapping crops)
    lengths = [16, 44, 12, 36, 48, 8, 28, 12]
    test = Cohort([replace(base[i], timeseries=base[i].timeseries[:t]) for i, t in enumerate(lengths)],
                  name="ragged", roi_names=base.roi_names)
    assert isinstance(test[0], Subject) and clf.n_windows_ == 3
    return clf, test


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "linear-path-wrapper"])
def test_dynamic_explanation_is_the_mean_over_the_crops_aligned_to_each_scan(fitted_dynamic, wrapped):
    """Windows on each subject's own grid (window w starts at TR w * stride), the mean over
    the prediction crops containing the window, temporal attention renormalised to sum to
    1 over the subject's windows, NaN past a shorter scan's end; a record without a window
    axis (``node``) is the mean over the subject's crops. Padded windows never count."""
    clf, test = fitted_dynamic
    model = _Wrapped() if wrapped else _StubDynamic()
    model.train()
    clf.model = model
    got = clf.explain(test)
    want = _explain_by_hand(test, clf.n_windows_)
    assert set(got) == set(want)
    for key, w in want.items():
        assert got[key].shape == w.shape, key
        assert got[key].dtype == np.float32, key
        np.testing.assert_array_equal(np.isnan(got[key]), np.isnan(w), err_msg=key)
        np.testing.assert_allclose(got[key], w, atol=2e-5, rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(np.nansum(got["temporal"], 1), 1.0, atol=1e-5)
    stub = model.deep if wrapped else model
    assert stub.calls and all(mode == (False, True) for mode in stub.calls)  # eval, inference mode
    assert model.training  # the caller's mode is restored


def _no_training(monkeypatch, seen=None):
    """Trainer.fit without steps (records its train/validation sets when ``seen`` is a list)."""

    def fit(self, model, train_set, val_set=None, **kw):
        if seen is not None:
            seen.append((train_set, val_set))
        return TrainResult(history=[], best_epoch=0)

    monkeypatch.setattr(te.Trainer, "fit", fit)


def test_dynamic_input_batches_give_whole_scans_in_order_without_refitting(fitted_dynamic):
    """``input_batches`` of a dynamic model: rows in cohort order, 32 per batch by default,
    each whole scan as one crop (window w = TRs [w*stride, w*stride + window), Pearson FC),
    the static FC of the fitted transformer; nothing is refitted on this cohort."""
    clf, test = fitted_dynamic
    clf.model = clf._build_model()  # a real STAGIN again (other tests put stand-ins there)
    many = Cohort([replace(test[i % len(test)], id=f"b{i}") for i in range(35)], name="many",
                  roi_names=test.roi_names)
    mean_before, scale_before = clf.fc_mean_.copy(), clf.fc_scale_.copy()
    static = clf._static_fc(many, fit=False)
    rows = []
    for idx, batch in clf.input_batches(many):
        rows.append(idx)
        for j, i in enumerate(idx):
            x = many[int(i)].timeseries.astype(np.float64)
            n_w = (x.shape[0] - WIN) // STRIDE + 1
            assert int(batch["mask"][j].sum()) == n_w and bool(batch["mask"][j, :n_w].all())
            for w in range(n_w):
                want = np.corrcoef(x[w * STRIDE : w * STRIDE + WIN].T)
                np.testing.assert_allclose(batch["dfc"][j, w].numpy(), want, atol=1e-5)
        np.testing.assert_allclose(batch["fc"].numpy(), static[idx], atol=1e-6)
    assert [len(r) for r in rows] == [32, 3]
    np.testing.assert_array_equal(np.concatenate(rows), np.arange(35))
    np.testing.assert_array_equal(clf.fc_mean_, mean_before)
    np.testing.assert_array_equal(clf.fc_scale_, scale_before)


def test_a_model_without_window_axes_averages_every_record_over_crops(fitted_dynamic):
    """A dynamic model that declares no window axes: its records are means over crops."""

    class NodeOnly(torch.nn.Module):
        def forward(self, batch):
            from graphbrain.models.base import ModelOutput

            real = batch["mask"][..., None].double()
            node = (batch["dfc"].double().mean(-1) * real).sum(1) / real.sum(1)
            return ModelOutput(logits=torch.zeros(len(node), 2), attention={"node": node})

    clf, test = fitted_dynamic
    clf.model = NodeOnly()
    got = clf.explain(test)
    np.testing.assert_allclose(got["node"], _explain_by_hand(test, clf.n_windows_)["node"], atol=2e-5)


def test_dynamic_fit_crop_settings_and_their_errors(monkeypatch):
    """``connectome.n_timepoints="min"`` crops to the shortest training scan; a crop shorter
    than one window and bad settings are refused with messages naming the key; window /
    stride are recorded when they are the same for every subject, else None."""
    from graphbrain.errors import DataError

    _no_training(monkeypatch)
    base = make_synthetic_cohort(n_subjects=10, n_rois=5, n_timepoints=48, n_planted=2, seed=4)
    lengths = [48, 30, 40, 36, 44, 48, 30, 40, 36, 44]
    cohort = Cohort([replace(s, timeseries=s.timeseries[:t], tr=1.0 + i % 2) for i, (s, t) in
                     enumerate(zip(base, lengths))], name="ragged-fit", roi_names=base.roi_names)
    small = {"hidden": 4, "n_layers": 1}

    def fit(conn, train=None):
        return te.TorchClassifier("stagin", model_params=small, connectome=conn,
                                  train={**FAST, **(train or {})}).fit(cohort)

    clf = fit({"window": WIN, "stride": STRIDE, "n_timepoints": "min"})
    assert clf.n_timepoints_ == 30 and clf.n_windows_ == (30 - WIN) // STRIDE + 1
    assert (clf.window_, clf.stride_) == (WIN, STRIDE)
    per_subject = fit({"window_seconds": 8, "stride_seconds": 4})  # TR 1 s and 2 s: 8/4 or 4/2 TRs
    assert per_subject.window_ is None and per_subject.stride_ is None
    with pytest.raises(ConfigError) as err:
        fit({"window": WIN, "stride": STRIDE, "n_timepoints": "all"})
    assert str(err.value) == "connectome.n_timepoints must be null, 'min' or an int, got 'all'"
    with pytest.raises(DataError) as err:
        fit({"window": WIN, "stride": STRIDE, "n_timepoints": 5})
    assert err.value.reason == "too_short" and err.value.source == "ragged-fit"
    assert str(err.value) == ("ragged-fit: crops of 5 time points are shorter than the window length 8; "
                              "lower connectome.window or raise the crop length")
    with pytest.raises(ConfigError) as err:
        fit({"window": WIN, "stride": STRIDE, "predict_crops": "all"})
    assert str(err.value).startswith("connectome.predict_crops (predict.crops) must be one of") and \
        str(err.value).endswith(", got 'all'")


def test_fit_splits_by_participant_with_its_seed_and_repeats_training_crops(monkeypatch):
    """The validation split is ``inner_split`` with the classifier's seed and the cohort's
    participants; ``train.crops_per_subject`` lists each fitting subject that many times;
    a one-class cohort is refused naming the cohort."""
    from graphbrain.data import Subject
    from graphbrain.errors import DataError
    from graphbrain.training.splits import inner_split

    seen: list = []
    _no_training(monkeypatch, seen)
    base = make_synthetic_cohort(n_subjects=24, n_rois=5, n_timepoints=40, n_planted=2, seed=8)
    # two runs per participant
    cohort = Cohort([Subject(id=f"r{i}", timeseries=s.timeseries, label=(i // 2) % 2,
                             site=s.site, tr=s.tr, participant=f"p{i // 2}") for i, s in enumerate(base)],
                    name="runs", roi_names=base.roi_names)
    clf = te.TorchClassifier("stagin", model_params={"hidden": 4, "n_layers": 1}, seed=3,
                             connectome={"window": WIN, "stride": STRIDE},
                             train={**FAST, "crops_per_subject": 3}).fit(cohort)
    y = np.searchsorted(clf.classes_, cohort.labels)
    fit_idx, val_idx = inner_split(np.arange(24), y, val_fraction=0.2, seed=3, groups=cohort.participants)
    assert clf.val_ids_ == [cohort.ids[i] for i in val_idx]
    train_set, val_set = seen[-1]
    assert len(train_set) == 3 * len(fit_idx) and len(val_set) == len(val_idx)
    assert sorted(set(train_set.ids)) == sorted(cohort.ids[i] for i in fit_idx)
    one = Cohort([s for s in cohort if s.label == cohort.labels[0]], name="one-class", roi_names=cohort.roi_names)
    with pytest.raises(DataError) as err:
        build_classifier("brainnetcnn", model_params=BNC, train=FAST).fit(one)
    assert str(err.value) == "one-class: the training cohort has a single class" and err.value.source == "one-class"


def test_linear_path_start_multiclass_dynamic_and_auto_ridge(monkeypatch):
    """Three classes: the linear path is the regression's coefficients / input_scale and its
    intercepts, with ``linear_l2="auto"`` the ridge 1 / (P C n) on the n fitting subjects;
    a dynamic model starts from the regression on the static FC of its fitting subjects."""
    _no_training(monkeypatch)
    c3 = make_synthetic_cohort(n_subjects=36, n_rois=6, n_timepoints=48, n_planted=2, seed=12)
    c3 = Cohort([replace(s, label=i % 3) for i, s in enumerate(c3)], name="three", roi_names=c3.roi_names)
    params = {**BNC, "linear_path": True, "linear_init": "logreg", "linear_l2": "auto"}
    clf = build_classifier("brainnetcnn", model_params=params, train=FAST).fit(c3)
    fit_rows = [i for i, s in enumerate(c3.ids) if s not in set(clf.val_ids_)]
    x = clf.model.vectorise(torch.from_numpy(clf._static_fc(c3.subset(fit_rows), fit=False))).double().numpy()
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(x, c3.labels[fit_rows])
    scale = float(clf.model.input_scale)
    np.testing.assert_allclose(clf.model.linear.weight.detach().numpy() * scale, ref.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(clf.model.linear.bias.detach().numpy(), ref.intercept_, rtol=1e-3, atol=1e-4)
    assert clf.model.l2 == pytest.approx(1.0 / (x.shape[1] * 1.0 * len(fit_rows)), rel=1e-12)

    base = make_synthetic_cohort(n_subjects=24, n_rois=5, n_timepoints=40, n_planted=2, effect_size=2.0, seed=2)
    dyn = te.TorchClassifier("stagin", model_params={"hidden": 4, "n_layers": 1, "linear_path": True,
                                                     "linear_init": "logreg"},
                             connectome={"window": WIN, "stride": STRIDE}, train=FAST).fit(base)
    rows = [i for i, s in enumerate(base.ids) if s not in set(dyn.val_ids_)]
    xd = dyn.model.vectorise(torch.from_numpy(dyn._static_fc(base.subset(rows), fit=False))).double().numpy()
    yd = np.searchsorted(dyn.classes_, base.labels[rows])
    refd = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(xd, yd)
    w = dyn.model.linear.weight.detach().numpy()
    np.testing.assert_allclose((w[1] - w[0]) * float(dyn.model.input_scale), refd.coef_[0], rtol=1e-3, atol=1e-4)


def test_transformer_settings_resave_and_unfitted_error(cohort, tmp_path: Path):
    """``connectome.fisher_z`` and ``cache_dir`` reach the connectome transformer; a model
    saved twice into the same folder is overwritten; an unfitted classifier says so."""
    clf = build_classifier("brainnetcnn", model_params=BNC, train={**FAST, "epochs": 1},
                           connectome={"fisher_z": True, "cache_dir": str(tmp_path / "cache")}).fit(cohort)
    assert clf.transformer.fisher_z is True and clf.transformer.cache_dir == str(tmp_path / "cache")
    clf.save(tmp_path / "m")
    clf.save(tmp_path / "m")
    np.testing.assert_allclose(load_classifier(tmp_path / "m").predict_proba(cohort), clf.predict_proba(cohort),
                               atol=1e-6)
    with pytest.raises(ConfigError) as err:
        build_classifier("brainnetcnn", model_params=BNC, train=FAST).predict_proba(cohort)
    assert str(err.value) == "classifier is not fitted; call fit() (or load a saved one) first"


def test_static_explain_returns_the_models_node_record(cohort):
    """Static models: ``explain`` is the model's own attention record on the standardised FC."""
    clf = build_classifier("brainnetcnn", model_params=BNC, train={**FAST, "epochs": 1}).fit(cohort)
    sub = cohort.subset(range(6))
    att = clf.explain(sub)
    with torch.no_grad():
        want = clf.model.eval()({"fc": torch.from_numpy(clf._static_fc(sub, fit=False))}).attention["node"]
    assert set(att) >= {"node"}
    np.testing.assert_allclose(att["node"], want.numpy(), atol=1e-5)


def test_set_predict_crops_walks_wrappers_to_every_dynamic_model(fitted_dynamic):
    """``set_predict_crops`` changes every dynamic-FC TorchClassifier inside wrappers
    (``base``, ``best_``, ``fitted_`` seeds of members), leaves static models and the rest
    of the connectome config alone, counts what it changed, and refuses unknown values."""
    from types import SimpleNamespace

    from graphbrain.training.trainer import PREDICT_CROPS

    def dyn():
        return te.TorchClassifier("stagin", connectome={"window": WIN, "stride": STRIDE})

    a, b, c = dyn(), dyn(), dyn()
    static = te.TorchClassifier("brainnetcnn", connectome={"kind": "tangent"})
    wrapper = SimpleNamespace(base=SimpleNamespace(best_=a), fitted_=[[b, static], c])
    assert te.set_predict_crops(wrapper, "whole") == 3
    for m in (a, b, c):
        assert m.connectome == {"window": WIN, "stride": STRIDE, "predict_crops": "whole"}
    assert static.connectome == {"kind": "tangent"}
    assert te.set_predict_crops(static, "first") == 0 and static.connectome == {"kind": "tangent"}
    assert te.set_predict_crops(SimpleNamespace(), "first") == 0
    with pytest.raises(ConfigError) as err:
        te.set_predict_crops(a, "all")
    assert str(err.value) == f"predict.crops must be one of {PREDICT_CROPS}, got 'all'"
    clf, test = fitted_dynamic
    assert te.set_predict_crops(clf, "first") == 1
    try:
        assert clf._dataset(test, np.zeros(len(test), dtype=np.int64), fit=False).predict_crops == "first"
    finally:
        te.set_predict_crops(clf, "cover")
