"""TorchClassifier with scans of any length: crop-averaged probabilities, attention aligned
to each subject's windows, per-subject windows from window_seconds, several crops per
epoch, and the input_batches / input_key interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.connectome.ragged import cover_crops, pad_timeseries, ragged_window_fc
from graphbrain.data import Cohort, Subject, make_synthetic_cohort
from graphbrain.training import build_classifier
from graphbrain.training.trainer import Trainer

FAST = {"epochs": 2, "batch_size": 8, "progress": False}
SMALL = {"hidden": 16, "n_layers": 2}
LENGTHS = [40, 48, 56, 64, 72, 80]


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def ragged() -> Cohort:
    """24 subjects whose scans are 40..80 TRs long; two sites with TR 2 s and 1 s."""
    c = make_synthetic_cohort(n_subjects=24, n_rois=8, n_timepoints=80, n_planted=3, effect_size=2.0, seed=7)
    subs = []
    for i, s in enumerate(c):
        t = LENGTHS[i % len(LENGTHS)]
        subs.append(Subject(id=s.id, timeseries=s.timeseries[:t], label=s.label, site=s.site,
                            tr=2.0 if i % 2 else 1.0))
    return Cohort(subs, name="ragged")


def _by_hand(clf, cohort):
    """Probabilities and attention, crop by crop, from the model itself (the reference)."""
    model = clf.model.eval()
    static = torch.as_tensor(clf._static_fc(cohort, fit=False))
    win, st = clf._subject_windows(cohort)
    probs, atts = [], []
    for i, s in enumerate(cohort):
        w_i = (s.n_timepoints - win[i]) // st[i] + 1
        ps, att, cnt = [], np.zeros(w_i), np.zeros(w_i)
        for a, b in cover_crops(int(w_i), clf.n_windows_):
            seg = s.timeseries[a * st[i] : (b - 1) * st[i] + win[i]]
            dfc, mask = ragged_window_fc(*pad_timeseries([seg]), int(win[i]), int(st[i]))
            with torch.no_grad():
                out = model({"dfc": dfc, "mask": mask, "fc": static[i : i + 1]})
            ps.append(torch.softmax(out.logits, 1)[0].numpy())
            att[a:b] += out.attention["temporal"][0].numpy()
            cnt[a:b] += 1
        probs.append(np.mean(ps, 0))
        atts.append(att / cnt / (att / cnt).sum())
    return np.array(probs), atts


def test_crop_averaged_probability_and_aligned_attention_equal_the_crop_by_crop_reference(ragged):
    # trained on random 44-TR crops: 7 windows of 8 TRs (stride 6) at most
    clf = build_classifier("stagin", model_params=SMALL, connectome={"window": 8, "stride": 6},
                           train={**FAST, "crop_length": 44}).fit(ragged.subset(range(18)))
    assert clf.n_windows_ == (44 - 8) // 6 + 1 == 7
    test = ragged.subset(range(18, 24))
    p = clf.predict_proba(test)
    ref_p, ref_att = _by_hand(clf, test)
    np.testing.assert_allclose(p, ref_p, atol=1e-5)
    att = clf.explain(test)
    w_all = max((s.n_timepoints - 8) // 6 + 1 for s in test)
    assert att["temporal"].shape == (6, w_all) and att["spatial"].shape == (6, w_all, 8)
    for i, s in enumerate(test):
        w_i = (s.n_timepoints - 8) // 6 + 1
        np.testing.assert_allclose(att["temporal"][i, :w_i], ref_att[i], atol=1e-5)
        assert np.isnan(att["temporal"][i, w_i:]).all()  # past the end of this subject's scan
    # "first" (the old behaviour) scores only the first crop: a different number for long scans
    clf.connectome["predict_crops"] = "first"
    p_first = clf.predict_proba(test)
    long = [i for i, s in enumerate(test) if (s.n_timepoints - 8) // 6 + 1 > 7]
    assert long and not np.allclose(p_first[long], p[long], atol=1e-6)


def test_window_seconds_use_each_subjects_tr_and_input_batches_give_the_whole_scan(ragged):
    clf = build_classifier("stagin", model_params=SMALL,
                           connectome={"window_seconds": 16, "stride_seconds": 8, "predict_crops": "whole"},
                           train=FAST).fit(ragged.subset(range(18)))
    win, st = clf._subject_windows(ragged)
    trs = np.array([s.tr for s in ragged])
    np.testing.assert_array_equal(win, np.where(trs == 2.0, 8, 16))  # 16 s at TR 2 s / 1 s
    np.testing.assert_array_equal(st, np.where(trs == 2.0, 4, 8))
    test = ragged.subset(range(18, 24))
    assert clf.input_key == "dfc"
    rows, probs = [], []
    for idx, batch in clf.input_batches(test, batch_size=4):
        assert set(batch) >= {"dfc", "mask", "fc"}
        np.testing.assert_array_equal(batch["mask"].sum(1).numpy(),
                                      [(test[i].n_timepoints - win[18 + i]) // st[18 + i] + 1 for i in idx])
        with torch.no_grad():
            probs.append(torch.softmax(clf.model(batch).logits, 1).numpy())
        rows.extend(idx.tolist())
    assert rows == list(range(6))
    np.testing.assert_allclose(np.concatenate(probs), clf.predict_proba(test), atol=1e-5)


def test_crops_per_subject_draws_several_random_crops_per_epoch(ragged, monkeypatch):
    sizes = []
    original = Trainer.fit

    def spy(self, model, train_set, val_set=None, **kw):
        sizes.append((len(train_set), len(val_set), len(set(train_set.ids))))
        return original(self, model, train_set, val_set, **kw)

    monkeypatch.setattr(Trainer, "fit", spy)
    build_classifier("stagin", model_params=SMALL, connectome={"window": 8, "stride": 6},
                     train={**FAST, "epochs": 1, "crop_length": 30, "crops_per_subject": 3}).fit(ragged.subset(range(18)))
    n_fit, n_val, distinct = sizes[0]
    assert n_fit == 3 * distinct and n_val + distinct == 18  # validation subjects scored once


def test_static_models_keep_their_interface():
    c = make_synthetic_cohort(n_subjects=20, n_rois=8, n_timepoints=60, seed=1)
    clf = build_classifier("brainnetcnn", train=FAST).fit(c.subset(range(14)))
    assert clf.input_key == "fc"
    (idx, batch), = list(clf.input_batches(c.subset(range(14, 20)), batch_size=32))
    np.testing.assert_array_equal(idx, np.arange(6))
    with torch.no_grad():
        p = torch.softmax(clf.model(batch).logits, 1).numpy()
    np.testing.assert_allclose(p, clf.predict_proba(c.subset(range(14, 20))), atol=1e-6)


def test_pipeline_keeps_attention_of_scans_with_different_lengths_nan_padded(ragged):
    from graphbrain.pipeline.run import run_pipeline

    res = run_pipeline(model={"name": "stagin", **SMALL}, connectome={"window": 8, "stride": 6},
                       train={**FAST, "epochs": 1}, cv={"scheme": "stratified", "n_splits": 2},
                       cohort=ragged, output_dir=None, progress=False)
    att = res.attention["temporal"]
    w_max = (max(LENGTHS) - 8) // 6 + 1
    assert att.shape == (24, w_max)  # whole scans: no crop to the shortest scan any more
    by_id = dict(zip(res.predictions["subject_id"], range(24)))
    for s in ragged:
        w = (s.n_timepoints - 8) // 6 + 1
        row = att[by_id[s.id]]
        assert np.isfinite(row[:w]).all() and np.isnan(row[w:]).all()
        np.testing.assert_allclose(row[:w].sum(), 1.0, rtol=1e-5)


def test_dynamic_models_get_in_fold_tangent_fc_for_the_linear_path_and_node_features(ragged):
    from graphbrain.connectome.static import ConnectivityTransformer

    train, test = ragged.subset(range(18)), ragged.subset(range(18, 24))
    clf = build_classifier("stagin", model_params={**SMALL, "node_features": "static_fc"},
                           connectome={"window": 8, "stride": 6, "kind": "tangent"}, train=FAST).fit(train)
    ref = ConnectivityTransformer(kind="tangent").fit(train.timeseries())  # the training fold only
    np.testing.assert_allclose(clf.transformer.mean_, ref.mean_, atol=1e-4)
    tan_train = ref.transform(train.timeseries()).astype(np.float64)
    np.testing.assert_allclose(clf.fc_mean_, tan_train.mean(0), atol=1e-4)
    (idx, batch), = list(clf.input_batches(test, batch_size=8))
    expected = (ref.transform(test.timeseries()) - clf.fc_mean_) / clf.fc_scale_
    expected[:, np.arange(8), np.arange(8)] = 0.0
    np.testing.assert_allclose(batch["fc"].numpy(), expected, atol=1e-3)
    # the static FC reaches the output through both the linear path and the node features
    fc = batch["fc"].clone().requires_grad_(True)
    clf.model.eval()
    clf.model({**batch, "fc": fc}).logits[:, 1].sum().backward()
    assert fc.grad.abs().sum() > 0
    clf.model.linear.weight.data.zero_()
    fc.grad = None
    clf.model({**batch, "fc": fc}).logits[:, 1].sum().backward()
    assert fc.grad.abs().sum() > 0  # through the STAGIN node features alone


def test_linear_path_can_start_from_an_in_fold_logistic_regression(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    seen = {}
    original = Trainer.fit

    def spy(self, model, train_set, val_set=None, **kw):
        fc = train_set.tensors["fc"]
        with torch.no_grad():
            lin = model.linear_logits({"fc": fc})
        seen.update(margin=(lin[:, 1] - lin[:, 0]).numpy(), x=model.vectorise(fc).numpy(), y=train_set.labels,
                    val_ids=set(val_set.ids), fit_ids=set(train_set.ids))
        return original(self, model, train_set, val_set, **kw)

    monkeypatch.setattr(Trainer, "fit", spy)
    c = make_synthetic_cohort(n_subjects=40, n_rois=8, n_timepoints=60, seed=2)
    build_classifier("brainnetcnn", model_params={"linear_init": "logreg"}, train={**FAST, "epochs": 1}).fit(c)
    assert not seen["val_ids"] & seen["fit_ids"]
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(seen["x"], seen["y"])
    np.testing.assert_allclose(seen["margin"], ref.decision_function(seen["x"]), atol=1e-4)


def test_frozen_logreg_path_is_not_trained_and_is_refitted_on_the_whole_training_fold(monkeypatch):
    """``linear_init="logreg_frozen"``: the optimiser moves the deep branch and the gate but
    not the linear path; after training the path equals sklearn's logistic regression (C 1,
    balanced) on the whole training fold's vectorised standardised FC, as the baseline."""
    from sklearn.linear_model import LogisticRegression

    seen = {}
    original = Trainer.fit

    def spy(self, model, train_set, val_set=None, **kw):
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        out = original(self, model, train_set, val_set, **kw)
        seen.update(before=before, after={k: v.detach().clone() for k, v in model.state_dict().items()},
                    n_fit=len(train_set))
        return out

    monkeypatch.setattr(Trainer, "fit", spy)
    c = make_synthetic_cohort(n_subjects=40, n_rois=8, n_timepoints=60, seed=2)
    clf = build_classifier("brainnetcnn", model_params={"linear_init": "logreg_frozen"},
                           train={**FAST, "epochs": 3, "warmup_epochs": 0})
    clf.fit(c)
    before, after = seen["before"], seen["after"]
    assert seen["n_fit"] < len(c)  # the trainer saw the fitting part only
    for k in ("linear.weight", "linear.bias"):
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0)  # frozen during training
    assert before["linear.weight"].abs().sum() > 0  # ... at the in-fold logistic regression
    moved = [k for k in before if k.startswith("deep.") and before[k].is_floating_point()
             and not torch.equal(before[k], after[k])]
    assert moved  # the deep branch did train
    # after fit: the path is the logistic regression of the whole training fold
    (idx, batch), = list(clf.input_batches(c, batch_size=len(c)))
    x = clf.model.vectorise(batch["fc"]).double().numpy()
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, c.labels[idx])
    with torch.no_grad():
        lin = clf.model.linear_logits(batch)
    np.testing.assert_allclose((lin[:, 1] - lin[:, 0]).numpy(), ref.decision_function(x), atol=1e-4)
    assert not torch.equal(clf.model.linear.weight, before["linear.weight"])  # refitted on more subjects


def test_unknown_linear_init_is_refused():
    from graphbrain.errors import ConfigError

    with pytest.raises(ConfigError, match="linear_init must be one of"):
        build_classifier("brainnetcnn", model_params={"linear_init": "ridge"},
                         train={**FAST, "epochs": 1}).fit(make_synthetic_cohort(n_subjects=20, n_rois=6, seed=1))


def test_auto_ridge_makes_the_logistic_regression_a_stationary_point_of_the_path(monkeypatch):
    """``linear_l2="auto"`` with ``linear_init="logreg"``: with the deep branch gated off, the
    path's training loss (class-weighted mean cross-entropy + ridge) has zero gradient at the
    logistic regression's solution, so training does not drift from it; without the ridge
    the data term alone pulls the weights away (separable fitting set)."""
    from torch.nn import functional as F

    from graphbrain.training.trainer import class_weights

    seen = {}
    original = Trainer.fit

    def spy(self, model, train_set, val_set=None, **kw):
        model.train()
        batch = train_set.batch(np.arange(len(train_set)), train=True, rng=np.random.default_rng(0),
                                device=torch.device("cpu"))
        y = torch.as_tensor(train_set.labels)
        w = class_weights(train_set.labels, 2, "balanced")
        norms, auto = [], model.l2
        for l2 in (auto, 0.0):
            model.l2 = l2
            model.zero_grad()
            out = model(batch)
            loss = F.cross_entropy(out.logits, y, weight=w) + (out.aux_loss if out.aux_loss is not None else 0)
            loss.backward()
            norms.append(float(model.linear.weight.grad.norm()))
        model.l2 = auto
        seen.update(with_ridge=norms[0], without=norms[1], l2=auto, n=len(train_set), p=model.linear.in_features)
        return original(self, model, train_set, val_set, **kw)

    monkeypatch.setattr(Trainer, "fit", spy)
    c = make_synthetic_cohort(n_subjects=40, n_rois=8, n_timepoints=60, seed=2)
    clf = build_classifier("brainnetcnn", model_params={"linear_init": "logreg", "linear_l2": "auto",
                                                        "linear_gate": 0.0}, train={**FAST, "epochs": 1})
    clf.fit(c)
    assert seen["without"] > 1e-3  # the data term alone is not stationary there
    assert seen["with_ridge"] < 0.02 * seen["without"]
    assert seen["l2"] == pytest.approx(1.0 / (seen["p"] * seen["n"]))


def test_linear_l2_must_be_a_non_negative_number_or_auto():
    from graphbrain.errors import ConfigError
    from graphbrain.models.registry import get_model_spec

    for bad in ("ridge", -1.0):
        with pytest.raises(ConfigError, match="linear_l2 must be"):
            get_model_spec("brainnetcnn").builder(n_rois=6, linear_l2=bad)
