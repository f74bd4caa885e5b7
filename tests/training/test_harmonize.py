"""Label-free site adaptation: ComBat agrees with neuroHarmonize, planted site offsets are
removed for unseen sites, no label of a predicted site is read, save/load round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from graphbrain.data import Cohort, Subject
from graphbrain.errors import ConfigError
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.harmonize import (
    AdaptedClassifier,
    ComBat,
    SiteStandardizer,
    with_adaptation,
)

R = 10
LO = np.tril_indices(R, -1)


class SpySubject(Subject):
    """A subject that records every read of its label."""

    reads: list[str] = []

    @property  # type: ignore[override]
    def label(self):  # noqa: D401
        SpySubject.reads.append(self.id)
        return self._label

    @label.setter
    def label(self, v):
        self._label = v


def _fc_cohort(rng, n, site, offset, p_pos=0.5, gain=1.0, spy=False, start=0):
    """Precomputed FC: class 1 raises edges 0-5; the site shifts them (and others) by ``offset``."""
    subjects = []
    cls = SpySubject if spy else Subject
    site_pattern = np.random.default_rng(abs(hash(site)) % 2**32).standard_normal(LO[0].size)
    for i in range(n):
        y = int(rng.random() < p_pos)
        v = rng.standard_normal(LO[0].size)
        v[:6] += 1.2 * y
        shift = 0.3 * site_pattern
        shift[:6] += 1.0  # the offset points along the diagnostic edges
        v = gain * v + offset * shift
        m = np.eye(R)
        m[LO] = v
        m[LO[1], LO[0]] = v
        subjects.append(cls(id=f"{site}-{start + i}", timeseries=None, fc=m, label=y, site=site,
                            covariates={"age": float(rng.normal(30, 5)), "sex": int(rng.integers(1, 3))}))
    return subjects


def _cohorts(spy=False):
    rng = np.random.default_rng(0)
    train = Cohort(_fc_cohort(rng, 60, "A", 0.0) + _fc_cohort(rng, 60, "B", 0.5) + _fc_cohort(rng, 60, "C", -0.5))
    # two unseen sites: D mostly controls with a large positive offset, E mostly patients
    # with a negative one -- the site offsets point against the diagnosis.
    test = Cohort(_fc_cohort(rng, 40, "D", 3.0, p_pos=0.2, spy=spy)
                  + _fc_cohort(rng, 40, "E", -3.0, p_pos=0.8, gain=2.0, spy=spy))
    return train, test


def test_combat_agrees_with_neuroharmonize_on_training_sites():
    nh = pytest.importorskip("neuroHarmonize")
    rng = np.random.default_rng(1)
    n, f = 90, 30
    sites = np.array(["a", "b", "c"])[np.arange(n) % 3]
    age, sex = rng.normal(30, 8, n), rng.integers(1, 3, n).astype(float)
    X = rng.standard_normal((n, f)) + 1.5 * (sites == "b")[:, None] + 0.05 * age[:, None]
    X *= np.where(sites == "a", 2.0, 1.0)[:, None]
    covars = pd.DataFrame({"SITE": sites, "age": age, "sex": sex})
    for eb in (True, False):
        _, ref = nh.harmonizationLearn(X, covars, eb=eb)
        mine = ComBat(eb=eb).fit(X, sites, np.c_[age, sex]).transform(X, sites, np.c_[age, sex])
        assert np.abs(mine - ref).max() < 1e-4 * np.abs(ref).max()


def test_combat_unseen_site_removes_its_offset_and_keeps_the_covariate_effect():
    rng = np.random.default_rng(2)
    n, f = 120, 20
    sites = np.array(["a", "b"])[np.arange(n) % 2]
    age = rng.normal(30, 8, n)
    X = rng.standard_normal((n, f)) + 0.1 * age[:, None] + 2.0 * (sites == "b")[:, None]
    cb = ComBat().fit(X, sites, age[:, None])
    age_new = rng.normal(30, 8, 50)
    X_new = rng.standard_normal((50, f)) + 0.1 * age_new[:, None] + 5.0  # unseen site, offset +5
    out = cb.transform(X_new, np.array(["new"] * 50), age_new[:, None])
    ref = cb.transform(X, sites, age[:, None])
    # the new site's offset is gone: its mean matches the harmonised training mean
    assert np.abs(out.mean() - ref.mean()) < 0.3
    # the protected age effect is still there (slope ~0.1 per year on every feature)
    slope = np.polyfit(age_new, out.mean(axis=1), 1)[0]
    assert 0.05 < slope < 0.15


def test_site_standardizer_unseen_site_uses_only_its_own_subjects():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 5))
    h = SiteStandardizer().fit(X, np.array(["a", "b"] * 20))
    Xn = rng.standard_normal((20, 5)) * 3 + 7
    both = h.transform(np.r_[Xn, Xn[:10] + 100], np.array(["new"] * 20 + ["other"] * 10))
    alone = h.transform(Xn, np.array(["new"] * 20))
    np.testing.assert_allclose(both[:20], alone)  # another site's subjects change nothing
    z = (Xn - Xn.mean(0)) / Xn.std(0, ddof=1)
    np.testing.assert_allclose(alone, z * h.ref_scale_ + h.ref_mean_)


@pytest.mark.parametrize("mode", ["site", "combat"])
def test_adaptation_recovers_cross_site_auroc_ruined_by_a_site_offset(mode):
    train, test = _cohorts()
    y = test.labels
    plain = build_classifier("logreg", model_params={"C": 0.1}).fit(train)
    auc_plain = roc_auc_score(y, plain.predict_proba(test)[:, 1])
    adapted = with_adaptation(build_classifier("logreg", model_params={"C": 0.1}), mode).fit(train)
    auc_adapt = roc_auc_score(y, adapted.predict_proba(test)[:, 1])
    # offsets against the diagnosis push the plain model below chance (0.24 measured);
    # adaptation recovers most of it (0.78-0.81 measured; centring a site whose classes are
    # 80/20 also removes part of the class difference, so not the within-site ceiling)
    assert auc_plain < 0.4
    assert auc_adapt > 0.7


def test_adapt_at_prediction_on_a_model_trained_without_it():
    train, test = _cohorts()
    y = test.labels
    plain = build_classifier("logreg", model_params={"C": 0.1}).fit(train)
    adapted = AdaptedClassifier.from_fitted(plain)
    assert roc_auc_score(y, adapted.predict_proba(test)[:, 1]) > 0.7


def test_no_label_of_the_adapted_site_is_read():
    train, test = _cohorts(spy=True)
    SpySubject.reads.clear()
    clf = with_adaptation(build_classifier("logreg"), "combat").fit(train)
    p = clf.predict_proba(test)
    clf.explain(test)
    assert SpySubject.reads == []
    # and predictions do not depend on them: flip every test label, same probabilities
    for s in test:
        s._label = 1 - s._label
    np.testing.assert_allclose(clf.predict_proba(test), p)


def test_adapted_torch_static_model_and_save_load_round_trip(tmp_path):
    train, test = _cohorts()
    clf = with_adaptation(
        build_classifier("brainnetcnn", model_params={"e2e_channels": [2], "e2n_channels": 2,
                                                      "n2g_channels": 4, "fc_hidden": [4]},
                         train={"epochs": 2, "progress": False, "num_threads": 1, "batch_size": 32}),
        "site",
    ).fit(train)
    p = clf.predict_proba(test)
    clf.save(tmp_path / "m")
    back = load_classifier(tmp_path / "m")
    assert isinstance(back, AdaptedClassifier) and back.mode == "site"
    np.testing.assert_allclose(back.predict_proba(test), p, atol=1e-6)
    logreg = with_adaptation(build_classifier("logreg"), "combat").fit(train)
    logreg.save(tmp_path / "l")
    np.testing.assert_allclose(load_classifier(tmp_path / "l").predict_proba(test), logreg.predict_proba(test))


def test_dynamic_models_are_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="static FC"):
        with_adaptation(build_classifier("stagin"), "site")
    with pytest.raises(ConfigError, match="adapt="):
        with_adaptation(build_classifier("logreg"), "zscore")


def test_train_then_predict_with_adapt_site_override(tmp_path):
    from graphbrain.pipeline import predict, train_model

    train, test = _cohorts()
    d = train_model(cohort=train, output_dir=tmp_path / "model", model={"name": "logreg", "C": 0.1},
                    progress=False)
    plain = predict(d, cohort=test)
    adapted = predict(d, cohort=test, overrides=["adapt=site"], output_dir=tmp_path / "pred")
    y = test.labels
    assert roc_auc_score(y, plain.predictions["proba"]) < 0.4
    assert roc_auc_score(y, adapted.predictions["proba"]) > 0.7
    assert adapted.config["adapt"] == "site" and plain.config["adapt"] == "none"
    # a model trained with adapt=combat keeps adapting at prediction and refuses adapt=none
    d2 = train_model(cohort=train, output_dir=tmp_path / "m2", model="logreg", adapt="combat", progress=False)
    assert roc_auc_score(y, predict(d2, cohort=test).predictions["proba"]) > 0.7
    with pytest.raises(ConfigError, match="trained with adapt=combat"):
        predict(d2, cohort=test, overrides=["adapt=none"])


def test_run_pipeline_leave_site_out_with_adapt_site():
    from graphbrain.pipeline import run_pipeline

    train, test = _cohorts()
    cohort = Cohort(list(train) + list(test))
    kw = {"cohort": cohort, "model": {"name": "logreg", "C": 0.1}, "cv": "leave_site_out", "output_dir": None,
          "progress": False}
    plain, adapted = run_pipeline(**kw), run_pipeline(**kw, adapt="site")
    assert adapted.config["adapt"] == "site"
    # pooled over the held-out sites, per-site offsets wreck the plain model's ranking
    assert adapted.pooled["auroc"] > plain.pooled["auroc"] + 0.1
