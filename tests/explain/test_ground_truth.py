"""Ground truth: on the planted-signal synthetic cohort the explanations find the planted ROIs and window.

The dynamic model is a small STAGIN with window-FC node features (so that gradients
reach the window connectomes), trained on 70 subjects and explained on 30 held-out
ones. The planted effect is 2.0 (the default 1.0 leaves this small CPU-trained STAGIN
too weak to test explanations against); every method's numbers are printed.
"""

from __future__ import annotations

import numpy as np
import pytest

from graphbrain.data import make_synthetic_cohort
from graphbrain.explain import explain, precision_at_k
from graphbrain.explain.report import ground_truth
from graphbrain.training import build_classifier


@pytest.fixture(scope="module")
def stagin_case():
    c = make_synthetic_cohort(n_subjects=100, n_rois=12, n_timepoints=100, n_planted=6, effect_size=2.0, seed=1)
    clf = build_classifier(
        "stagin",
        model_params={"hidden": 16, "n_layers": 1, "node_features": "window_fc"},
        connectome={"window": 20, "stride": 4},
        train={"epochs": 20, "lr": 3e-3, "batch_size": 16, "patience": 12, "progress": False},
        seed=0,
    )
    clf.fit(c.subset(range(70)))
    return c, clf, c.subset(range(70, 100))


def test_planted_rois_and_window_are_recovered(stagin_case):
    from sklearn.metrics import roc_auc_score

    cohort, clf, test = stagin_case
    auc = roc_auc_score(test.labels, clf.predict_proba(test)[:, 1])
    assert auc > 0.8, f"the model did not learn the planted signal (held-out AUROC {auc:.2f})"
    ex = {m: explain(clf, test, method=m, n_steps=16) for m in ("attention", "integrated_gradients", "saliency", "input_x_gradient")}
    table = ground_truth(ex, cohort)
    print(f"\nSTAGIN held-out AUROC {auc:.3f}\n{table.to_string(index=False)}")
    planted = cohort.meta["planted_rois"]
    assert max(precision_at_k(e, planted) for e in ex.values()) >= 0.8
    t = table.set_index("method")
    # integrated gradients: the attribution over the scan peaks inside the planted window
    assert bool(t.loc["integrated_gradients", "peak_in_planted_window"])
    assert t.loc["integrated_gradients", "window_effect"] > 0.5
    # window times describe real time points of the scan
    e = ex["integrated_gradients"]
    assert e.window.shape[1] == e.window_times.shape[0]
    assert (np.diff(e.window_times[:, 0]) == 4).all() and (e.window_times[:, 1] - e.window_times[:, 0] == 20).all()
