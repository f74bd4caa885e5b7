"""`graphbrain predict ... predict.crops=X` changes which crops a loaded dynamic model scores."""

from __future__ import annotations

import numpy as np
import pytest

from graphbrain.data import Cohort, Subject, make_synthetic_cohort
from graphbrain.pipeline import predict, train_model

TRAIN = ["model=stagin", "model.linear_path=false", "model.hidden=8", "model.n_layers=1", "train.epochs=1", "train.batch_size=8",
         "train.num_threads=1", "connectome.window=10", "connectome.stride=5", "connectome.n_timepoints=30",
         "cache_dir=null", "progress=false"]


@pytest.fixture(scope="module")
def cohorts() -> tuple[Cohort, Cohort, Cohort]:
    c = make_synthetic_cohort(n_subjects=30, n_rois=6, n_timepoints=60, n_planted=2, effect_size=1.5, seed=3)
    train, test = c.subset(range(20)), c.subset(range(20, 30))
    rng = np.random.default_rng(0)
    # the same test subjects with everything after the first 30-TR crop replaced by noise
    noisy = Cohort([Subject(id=s.id, timeseries=np.concatenate([s.timeseries[:30],
                                                                rng.standard_normal((30, 6))]),
                            label=s.label, site=s.site) for s in test], name="noisy")
    return train, test, noisy


def test_predict_crops_override_reaches_the_loaded_model(cohorts, tmp_path):
    train, test, noisy = cohorts
    md = train_model(cohort=train, output_dir=tmp_path / "m", overrides=TRAIN)

    def proba(cohort, *ov):
        return predict(md, cohort=cohort, output_dir=None, overrides=list(ov)).predictions["proba"].to_numpy()

    first, first_noisy = proba(test, "predict.crops=first"), proba(noisy, "predict.crops=first")
    cover, cover_noisy = proba(test), proba(noisy)
    # `first` reads TRs 0-29 only (no linear path on the whole-scan static FC here), so noise
    # after them cannot move its probabilities ...
    np.testing.assert_allclose(first, first_noisy, atol=1e-6)
    # ... while the default (`cover`, the model's training setting) averages over crops that
    # reach the noise: if the override were ignored, both pairs would behave alike
    assert np.abs(cover - cover_noisy).max() > 1e-4
    assert np.abs(first - cover).max() > 1e-4


def test_predict_crops_override_on_a_static_model_is_ignored_with_a_warning(cohorts, tmp_path, caplog):
    train, test, _ = cohorts
    md = train_model(cohort=train, output_dir=tmp_path / "m", overrides=["cache_dir=null", "progress=false"])
    base = predict(md, cohort=test, output_dir=None).predictions["proba"].to_numpy()
    with caplog.at_level("WARNING"):
        got = predict(md, cohort=test, output_dir=None, overrides=["predict.crops=first"])
    np.testing.assert_array_equal(got.predictions["proba"].to_numpy(), base)
    assert "reads static FC" in caplog.text


def test_predict_crops_override_rejects_unknown_values(cohorts, tmp_path):
    from graphbrain.errors import ConfigError

    train, test, _ = cohorts
    md = train_model(cohort=train, output_dir=tmp_path / "m", overrides=TRAIN)
    with pytest.raises(ConfigError, match="predict.crops must be one of"):
        predict(md, cohort=test, output_dir=None, overrides=["predict.crops=middle"])
