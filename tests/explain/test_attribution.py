"""Attributions: exact linear contributions, gradients against autograd, runs aligned with predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.data import make_synthetic_cohort
from graphbrain.explain import explain, precision_at_k
from graphbrain.explain.attribution import (
    edges_to_matrix,
    fold_models,
    roi_from_edges,
    tril_to_triu,
)
from graphbrain.training import build_classifier

SMALL_BNC = {"e2e_channels": [4, 4], "e2n_channels": 8, "n2g_channels": 8, "fc_hidden": [8]}


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n_subjects=80, n_rois=12, n_timepoints=90, n_planted=6, effect_size=1.5, seed=3)


@pytest.fixture(scope="module")
def bnc(cohort):
    clf = build_classifier("brainnetcnn", model_params=SMALL_BNC, train={"epochs": 6, "progress": False})
    return clf.fit(cohort.subset(range(60)))


def test_edge_bookkeeping_matches_a_hand_built_matrix():
    r = 5
    mat = np.arange(r * r, dtype=float).reshape(r, r)
    mat = mat + mat.T
    lower = mat[np.tril_indices(r, -1)]  # nilearn's order
    upper = tril_to_triu(lower[None], r)[0]
    assert np.array_equal(upper, mat[np.triu_indices(r, 1)])
    back = edges_to_matrix(upper, r)
    off = ~np.eye(r, dtype=bool)
    assert np.array_equal(back[off], mat[off])
    # a ROI gets half of each incident edge
    assert np.allclose(roi_from_edges(upper, r), 0.5 * (back.sum(1)))


def test_linear_contributions_are_exact_and_find_the_planted_rois(cohort):
    train, test = cohort.subset(range(60)), cohort.subset(range(60, 80))
    clf = build_classifier("logreg").fit(train)
    e = explain(clf, test, method="linear")
    r = cohort.n_rois
    assert e.roi.shape == (20, r) and e.edge.shape == (20, r * (r - 1) // 2) and e.window is None
    score = clf.decision_function(test)
    intercept = float(clf.model.intercept_[0])
    # completeness: contributions sum to the decision value minus the intercept, per subject
    assert np.allclose(e.edge.sum(1) + intercept, score, atol=1e-5)
    assert np.allclose(e.roi.sum(1), e.edge.sum(1))
    # each edge is weight x standardised feature at the right (i, j)
    w = clf.edge_weights()
    from graphbrain.training.estimator import static_features

    x, _ = static_features(test, clf.transformer, fit=False)
    z = clf.scaler.transform(x)
    zmat = np.zeros((20, r, r))
    zmat[:, *np.tril_indices(r, -1)] = z
    zmat = zmat + zmat.transpose(0, 2, 1)
    i, j = 2, 7
    k = list(zip(*np.triu_indices(r, 1))).index((i, j))
    assert np.allclose(e.edge[:, k], w[i, j] * zmat[:, i, j])
    assert precision_at_k(e, cohort.meta["planted_rois"]) >= 0.8  # held-out subjects


def test_saliency_and_input_x_gradient_match_autograd(bnc, cohort):
    test = cohort.subset(range(60, 70))
    sal = explain(bnc, test, method="saliency")
    ixg = explain(bnc, test, method="input_x_gradient")
    data = bnc._dataset(test, np.zeros(10, dtype=np.int64), fit=False)
    x = data.batch(np.arange(10), train=False, rng=np.random.default_rng(0), device=torch.device("cpu"))["fc"]
    x = x.clone().requires_grad_(True)
    bnc.model.eval()
    logits = bnc.model({"fc": x}).logits
    (logits[:, 1] - logits[:, 0]).sum().backward()
    g = x.grad.double().numpy()
    iu = np.triu_indices(cohort.n_rois, 1)
    assert np.allclose(sal.edge, (np.abs(g) + np.abs(g).transpose(0, 2, 1))[:, *iu], atol=1e-6)
    gx = g * x.detach().double().numpy()
    assert np.allclose(ixg.edge, (gx + gx.transpose(0, 2, 1))[:, *iu], atol=1e-6)
    assert not sal.signed and ixg.signed


def test_integrated_gradients_complete(bnc, cohort):
    test = cohort.subset(range(60, 68))
    e = explain(bnc, test, method="integrated_gradients", n_steps=64)
    data = bnc._dataset(test, np.zeros(8, dtype=np.int64), fit=False)
    x = data.batch(np.arange(8), train=False, rng=np.random.default_rng(0), device=torch.device("cpu"))["fc"]
    with torch.no_grad():
        f = bnc.model({"fc": x}).logits
        f0 = bnc.model({"fc": torch.zeros_like(x)}).logits
    gap = ((f[:, 1] - f[:, 0]) - (f0[:, 1] - f0[:, 0])).double().numpy()
    # completeness of integrated gradients (Riemann/Gauss-Legendre error only)
    assert np.allclose(e.edge.sum(1), gap, atol=0.02 * np.abs(gap).max() + 1e-4)


def test_run_explanations_align_with_predictions_and_refit_reproduces_saved_models(cohort, tmp_path):
    import graphbrain

    res = graphbrain.run_pipeline(
        cohort=cohort, model="logreg", cv={"scheme": "stratified", "n_splits": 3}, output_dir=tmp_path / "run",
        progress=False, overrides=["explain=false"],
    )
    e = explain(res, cohort, method="linear")  # no saved models: refitted per fold
    assert e.subject_ids == res.predictions["subject_id"].astype(str).tolist()
    assert np.array_equal(e.labels, res.predictions["label"].to_numpy())
    # each row was explained by its own fold's model: reproduces that fold's decision value
    models = fold_models(res, cohort)
    proba = np.empty(len(e.subject_ids))
    for f in np.unique(e.folds):
        rows = np.flatnonzero(e.folds == f)
        sub = cohort.subset([cohort.ids.index(e.subject_ids[i]) for i in rows])
        s = models[f].decision_function(sub)
        assert np.allclose(e.edge[rows].sum(1) + models[f].model.intercept_[0], s, atol=1e-5)
        proba[rows] = models[f].predict_proba(sub)[:, 1]
    assert np.allclose(proba, res.predictions["proba"].to_numpy(), atol=1e-6)  # refit == the run's models
    att = explain(res, cohort, method="attention")  # read from result.attention, no model needed
    assert att.roi.shape == e.roi.shape and not att.signed
    assert np.allclose(att.roi, np.abs(edges_to_matrix(e.edge, cohort.n_rois)).sum(2), atol=1e-4)


def test_unknown_method_and_wrong_model_are_refused(bnc, cohort):
    from graphbrain.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain(bnc, cohort, method="shap")
    with pytest.raises(ConfigError, match="linear model"):
        explain(bnc, cohort, method="linear")
