"""Torch models through the pipeline: cross-validation keeps attention; train -> predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.data import make_synthetic_cohort
from graphbrain.pipeline.run import predict, run_pipeline, train_model

MODEL = {"name": "stagin", "hidden": 16, "n_layers": 2}
CONN = {"window": 20, "stride": 10}
TRAIN = {"epochs": 3, "batch_size": 16, "progress": False, "num_threads": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n_subjects=40, n_rois=10, n_timepoints=80, n_planted=3, effect_size=2.0, seed=2)


def test_cross_validation_keeps_attention_and_history(cohort):
    res = run_pipeline(model=MODEL, connectome=CONN, train=TRAIN, cv={"scheme": "stratified", "n_splits": 2},
                       cohort=cohort, output_dir=None, progress=False)
    assert res.attention["spatial"].shape == (40, 7, 10)
    assert res.attention["temporal"].shape == (40, 7)
    assert set(res.history["fold"]) == {"fold0", "fold1"}


def test_trained_model_predicts_from_its_folder(cohort, tmp_path):
    """The saved folder reproduces the in-memory model's probabilities to 1e-6."""
    import yaml

    from graphbrain.training import build_classifier, load_classifier

    params = {k: v for k, v in MODEL.items() if k != "name"}
    clf = build_classifier("stagin", model_params=params, connectome=CONN, train=TRAIN, seed=0)
    clf.fit(cohort.subset(range(30)))
    held_out = cohort.subset(range(30, 40))
    expected = clf.predict_proba(held_out)[:, 1]
    clf.save(tmp_path / "m" / "model")
    (tmp_path / "m" / "config.yaml").write_text(yaml.safe_dump({"model": MODEL}))
    out = predict(tmp_path / "m", cohort=held_out, output_dir=None)
    np.testing.assert_allclose(out.predictions["proba"].to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(load_classifier(tmp_path / "m" / "model").predict_proba(held_out)[:, 1], expected,
                               atol=1e-6)
    assert not np.allclose(expected, expected[0])  # a real model, not a constant
    # train_model writes a folder that predict() reads
    train_model(model=MODEL, connectome=CONN, train=TRAIN, cohort=cohort.subset(range(30)), output_dir=tmp_path / "t",
                overrides=["cache_dir=null"])
    again = predict(tmp_path / "t", cohort=held_out, output_dir=None).predictions["proba"].to_numpy()
    assert again.shape == (10,) and np.all((again >= 0) & (again <= 1))
