"""Label-free site adaptation of static FC, as a wrapper over any static classifier.

A lab with a new scanner has all its scans and none of its labels. ``adapt`` removes a
site's location / scale from every FC edge using that site's own subjects only:

* ``adapt="site"``: each edge is z-scored with the mean / sd of the subject's site
  (training sites: their training-fold statistics; a site never seen in training: the
  statistics of its own subjects being predicted, no labels), then mapped back to FC
  units with the training cohort's overall mean / sd, so the wrapped classifier's own
  scaler sees features on the usual scale;
* ``adapt="combat"``: ComBat (Johnson et al. 2007; Fortin et al. 2018) with covariates
  protected (``covariates``, default ``age`` and ``sex`` from ``Subject.covariates``):
  the covariate effects, grand mean and pooled variance are fitted on the training fold;
  training sites get empirical-Bayes location / scale estimates there; an unseen site
  gets its own empirical-Bayes estimates from its own subjects' residuals (no labels).

Why not neuroHarmonize for everything: ``harmonizationApply`` only adjusts sites that
were in ``harmonizationLearn``'s data and refuses a new site, which is exactly the case
this module exists for; and re-learning with the new site would refit the covariate
model on test subjects. :class:`ComBat` is a small implementation of the same model
whose training-site output agrees with ``neuroHarmonize.harmonizationLearn`` (tested),
plus the unseen-site step.

:class:`AdaptedClassifier` owns the connectome transform (fitted on the training fold
only), adapts the off-diagonal FC edges, and hands the wrapped classifier a cohort of
precomputed FC matrices, so scikit-learn models get it before their StandardScaler and
torch static models before their per-edge z-scoring. Dynamic-FC models are refused (a
per-ROI rescaling of time series does not change correlations; there is no static
feature to adapt). ``predict_proba`` never reads a label of the cohort it predicts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from nilearn.connectome import vec_to_sym_matrix
from safetensors.numpy import load_file, save_file

from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.data import Cohort, Subject
from graphbrain.errors import ConfigError, DataError
from graphbrain.training.estimator import CLASSIFIER_FILE, CohortClassifier, _write_json

log = logging.getLogger(__name__)

ADAPT_MODES = ("none", "site", "combat")
DEFAULT_COVARIATES = ("age", "sex")
_EPS = 1e-8


def check_adapt(mode: str | None) -> str:
    """``mode`` validated (``None`` is ``"none"``)."""
    m = "none" if mode in (None, False) else str(mode)
    if m not in ADAPT_MODES:
        raise ConfigError(f"adapt={mode!r} is not a valid mode; use one of {list(ADAPT_MODES)}")
    return m


# ---------------------------------------------------------------------------------------
# Location / scale models on a feature matrix (N, F)
# ---------------------------------------------------------------------------------------
class SiteStandardizer:
    """Per-site, per-feature z-scoring, mapped back to the training reference scale."""

    def fit(self, X: np.ndarray, sites: np.ndarray) -> SiteStandardizer:
        X = np.asarray(X, dtype=np.float64)
        self.ref_mean_ = X.mean(axis=0)
        self.ref_scale_ = _safe_sd(X)
        self.site_mean_: dict[str, np.ndarray] = {}
        self.site_scale_: dict[str, np.ndarray] = {}
        for s in np.unique(sites):
            xs = X[sites == s]
            self.site_mean_[str(s)], self.site_scale_[str(s)] = _site_stats(xs, str(s))
        return self

    def transform(self, X: np.ndarray, sites: np.ndarray) -> np.ndarray:
        """Seen sites use their training statistics; unseen sites their own subjects'."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty_like(X)
        for s in np.unique(sites):
            m = sites == s
            key = str(s)
            if key in self.site_mean_:
                mu, sd = self.site_mean_[key], self.site_scale_[key]
            else:
                mu, sd = _site_stats(X[m], key)
            out[m] = (X[m] - mu) / sd * self.ref_scale_ + self.ref_mean_
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        sites = sorted(self.site_mean_)
        arrays = {"ref_mean": self.ref_mean_, "ref_scale": self.ref_scale_}
        for i, s in enumerate(sites):
            arrays[f"site{i}.mean"] = self.site_mean_[s]
            arrays[f"site{i}.scale"] = self.site_scale_[s]
        return {"kind": "site", "sites": sites}, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> SiteStandardizer:
        h = cls()
        h.ref_mean_, h.ref_scale_ = arrays["ref_mean"], arrays["ref_scale"]
        h.site_mean_ = {s: arrays[f"site{i}.mean"] for i, s in enumerate(meta["sites"])}
        h.site_scale_ = {s: arrays[f"site{i}.scale"] for i, s in enumerate(meta["sites"])}
        return h


def _safe_sd(X: np.ndarray) -> np.ndarray:
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(X.shape[1])
    return np.where(sd > _EPS, sd, 1.0)


def _site_stats(X: np.ndarray, site: str) -> tuple[np.ndarray, np.ndarray]:
    if X.shape[0] < 2:
        raise DataError(
            f"site {site!r} has {X.shape[0]} subject; site adaptation needs at least 2 subjects "
            "per site (predict the site's scans together, or use adapt=none)",
            source=site,
            reason="site_too_small",
        )
    return X.mean(axis=0), _safe_sd(X)


class ComBat:
    """ComBat location / scale harmonisation with protected covariates and an unseen-site step.

    Follows neuroCombat / neuroHarmonize (design = site indicators + covariates, OLS fit,
    pooled variance, parametric empirical-Bayes priors per site across features).
    """

    def __init__(self, eb: bool = True, max_iter: int = 1000, tol: float = 1e-4) -> None:
        self.eb = eb
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: np.ndarray, sites: np.ndarray, covars: np.ndarray) -> ComBat:
        X = np.asarray(X, dtype=np.float64)
        covars = np.asarray(covars, dtype=np.float64).reshape(len(X), -1)
        self.sites_ = [str(s) for s in np.unique(sites)]
        onehot = np.stack([(sites == s).astype(np.float64) for s in self.sites_], axis=1)
        design = np.concatenate([onehot, covars], axis=1)
        beta = np.linalg.lstsq(design, X, rcond=None)[0]
        n_s = onehot.sum(axis=0)
        self.grand_mean_ = (n_s / len(X)) @ beta[: len(self.sites_)]
        self.beta_cov_ = beta[len(self.sites_):]
        self.var_pooled_ = ((X - design @ beta) ** 2).mean(axis=0)
        self.var_pooled_ = np.where(self.var_pooled_ > _EPS, self.var_pooled_, 1.0)
        z = self._standardize(X, covars)
        self.gamma_: dict[str, np.ndarray] = {}
        self.delta_: dict[str, np.ndarray] = {}
        for s in self.sites_:
            self.gamma_[s], self.delta_[s] = self._site_params(z[sites == s], s)
        return self

    def _standardize(self, X: np.ndarray, covars: np.ndarray) -> np.ndarray:
        stand_mean = self.grand_mean_ + covars @ self.beta_cov_
        return (X - stand_mean) / np.sqrt(self.var_pooled_)

    def _site_params(self, z: np.ndarray, site: str) -> tuple[np.ndarray, np.ndarray]:
        if z.shape[0] < 2:
            raise DataError(
                f"site {site!r} has {z.shape[0]} subject; ComBat needs at least 2 subjects per site",
                source=site,
                reason="site_too_small",
            )
        g_hat = z.mean(axis=0)
        d_hat = z.var(axis=0, ddof=1)
        d_hat = np.where(d_hat > _EPS, d_hat, _EPS)
        if not self.eb:
            return g_hat, d_hat
        g_bar, t2 = g_hat.mean(), g_hat.var(ddof=1)
        m, s2 = d_hat.mean(), d_hat.var(ddof=1)
        a = (2 * s2 + m**2) / s2
        b = (m * s2 + m**3) / s2
        n = z.shape[0]
        g_old, d_old = g_hat.copy(), d_hat.copy()
        for _ in range(self.max_iter):
            g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
            ssq = ((z - g_new) ** 2).sum(axis=0)
            d_new = (0.5 * ssq + b) / (n / 2.0 + a - 1.0)
            change = max(np.max(np.abs(g_new - g_old) / np.abs(g_old).clip(_EPS)),
                         np.max(np.abs(d_new - d_old) / d_old))
            g_old, d_old = g_new, d_new
            if change < self.tol:
                break
        return g_old, d_old

    def transform(self, X: np.ndarray, sites: np.ndarray, covars: np.ndarray) -> np.ndarray:
        """Training sites: their fitted parameters; unseen sites: estimated from their own data."""
        X = np.asarray(X, dtype=np.float64)
        covars = np.asarray(covars, dtype=np.float64).reshape(len(X), -1)
        z = self._standardize(X, covars)
        out = np.empty_like(X)
        stand_mean = self.grand_mean_ + covars @ self.beta_cov_
        for s in np.unique(sites):
            m = sites == s
            key = str(s)
            if key in self.gamma_:
                g, d = self.gamma_[key], self.delta_[key]
            else:
                g, d = self._site_params(z[m], key)
            out[m] = (z[m] - g) / np.sqrt(d) * np.sqrt(self.var_pooled_) + stand_mean[m]
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"grand_mean": self.grand_mean_, "beta_cov": self.beta_cov_, "var_pooled": self.var_pooled_}
        for i, s in enumerate(self.sites_):
            arrays[f"site{i}.gamma"] = self.gamma_[s]
            arrays[f"site{i}.delta"] = self.delta_[s]
        return {"kind": "combat", "sites": self.sites_, "eb": self.eb}, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ComBat:
        h = cls(eb=bool(meta.get("eb", True)))
        h.sites_ = list(meta["sites"])
        h.grand_mean_, h.beta_cov_, h.var_pooled_ = arrays["grand_mean"], arrays["beta_cov"], arrays["var_pooled"]
        h.gamma_ = {s: arrays[f"site{i}.gamma"] for i, s in enumerate(h.sites_)}
        h.delta_ = {s: arrays[f"site{i}.delta"] for i, s in enumerate(h.sites_)}
        return h


# ---------------------------------------------------------------------------------------
# The classifier wrapper
# ---------------------------------------------------------------------------------------
def _lower(r: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(r, -1)


class AdaptedClassifier(CohortClassifier):
    """``base`` (a static-FC classifier) fed site-adapted FC matrices.

    Args:
        base: an unfitted static-FC classifier (``SklearnClassifier`` or a torch model with
            ``input="static_fc"``); its ``connectome`` settings define the FC.
        mode: ``"site"`` or ``"combat"``.
        covariates: ``Subject.covariates`` keys protected by ComBat (ignored by ``site``).
            Missing values are filled with the training-fold mean (recorded per key).
    """

    def __init__(self, base: CohortClassifier, mode: str = "site",
                 covariates: list[str] | tuple[str, ...] | None = None) -> None:
        mode = check_adapt(mode)
        if mode == "none":
            raise ConfigError("AdaptedClassifier needs adapt='site' or 'combat'")
        spec = getattr(base, "_spec", None)
        if spec is not None and spec.input != "static_fc":
            raise ConfigError(
                f"adapt={mode!r} works on static FC; model {base.model_name!r} uses {spec.input} "
                "(correlations do not change under per-site rescaling of time series). Use adapt=none."
            )
        self.base = base
        self.model_name = base.model_name
        self.mode = mode
        self.covariates = list(DEFAULT_COVARIATES if covariates is None else covariates)
        self.transformer: ConnectivityTransformer | None = None
        self.harmonizer: SiteStandardizer | ComBat | None = None
        self.cov_fill_: dict[str, float] = {}

    @classmethod
    def from_fitted(cls, base: CohortClassifier) -> AdaptedClassifier:
        """``adapt="site"`` at prediction for a classifier trained without adaptation.

        Every site (none was seen as a site by the model) is z-scored per edge with its own
        subjects' statistics and mapped onto the training cohort's per-edge mean / sd, read
        from the fitted model's scaler (scikit-learn) or FC standardiser (torch): the
        model's own scaler then sees each site centred and scaled like its training data.
        """
        clf = cls(base, "site")
        if hasattr(base, "scaler") and getattr(base, "scaler", None) is not None:
            mean, scale = np.asarray(base.scaler.mean_), np.asarray(base.scaler.scale_)
        elif getattr(base, "fc_mean_", None) is not None:
            lo = _lower(base.fc_mean_.shape[-1])
            mean, scale = np.asarray(base.fc_mean_)[lo], np.asarray(base.fc_scale_)[lo]
        else:
            raise ConfigError(
                f"adapt=site at prediction needs the training feature statistics, which model "
                f"{base.model_name!r} did not keep (train it with adapt=site instead)"
            )
        h = SiteStandardizer()
        h.ref_mean_, h.ref_scale_ = mean.astype(np.float64), scale.astype(np.float64)
        h.site_mean_, h.site_scale_ = {}, {}
        clf.harmonizer = h
        clf.transformer = getattr(base, "transformer", None)
        return clf

    @property
    def connectome(self) -> dict[str, Any]:
        return dict(getattr(self.base, "connectome", {}) or {})

    def _new_transformer(self) -> ConnectivityTransformer:
        c = self.connectome
        return ConnectivityTransformer(
            kind=c.get("kind") or "correlation",
            estimator=c.get("estimator") or "ledoit_wolf",
            engine=c.get("engine") or "graphbrain",
            fisher_z=bool(c.get("fisher_z") or False),
            vectorize=False,
            cache_dir=c.get("cache_dir"),
        )

    # -- features ------------------------------------------------------------------------
    def _matrices(self, cohort: Cohort, *, fit: bool) -> np.ndarray:
        has_ts = [s.timeseries is not None for s in cohort]
        if all(has_ts):
            if fit:
                self.transformer = self._new_transformer().fit(cohort.timeseries())
            if self.transformer is None:
                raise ConfigError("this adapted classifier was trained on precomputed FC; it cannot take time series")
            mats = np.asarray(self.transformer.transform(cohort.timeseries()), dtype=np.float64)
            if mats.ndim == 2:  # a vectorising transformer (a model adapted after training)
                mats = vec_to_sym_matrix(mats, diagonal=np.ones((len(mats), cohort.n_rois)))
            return mats
        if not any(has_ts):
            if fit:
                self.transformer = None
            return np.stack([s.fc for s in cohort]).astype(np.float64)
        raise DataError("the cohort mixes subjects with time series and precomputed FC matrices",
                        source=cohort.name, reason="mixed_inputs")

    def _covars(self, cohort: Cohort, *, fit: bool) -> np.ndarray:
        if self.mode != "combat" or not self.covariates:
            return np.zeros((len(cohort), 0))
        cols = []
        for key in self.covariates:
            vals = np.array([_as_float(s.covariates.get(key)) for s in cohort], dtype=np.float64)
            if fit:
                if np.all(np.isnan(vals)):
                    raise DataError(f"covariate {key!r} is missing for every training subject; "
                                    "set adapt_covariates to keys present in Subject.covariates",
                                    source=cohort.name, reason="missing_covariate")
                self.cov_fill_[key] = float(np.nanmean(vals))
            vals = np.where(np.isnan(vals), self.cov_fill_[key], vals)
            cols.append(vals)
        return np.stack(cols, axis=1)

    def _adapted_cohort(self, cohort: Cohort, *, fit: bool) -> Cohort:
        mats = self._matrices(cohort, fit=fit)
        r = mats.shape[-1]
        lo = _lower(r)
        X = mats[:, lo[0], lo[1]]
        sites = cohort.sites
        covars = self._covars(cohort, fit=fit)
        if fit:
            if self.mode == "site":
                self.harmonizer = SiteStandardizer().fit(X, sites)
            else:
                self.harmonizer = ComBat().fit(X, sites, covars)
        if self.harmonizer is None:
            raise ConfigError("classifier is not fitted; call fit() (or load a saved one) first")
        if isinstance(self.harmonizer, ComBat):
            Xa = self.harmonizer.transform(X, sites, covars)
        else:
            Xa = self.harmonizer.transform(X, sites)
        out = mats.copy()
        out[:, lo[0], lo[1]] = Xa
        out[:, lo[1], lo[0]] = Xa
        subjects = [
            Subject(id=s.id, timeseries=None, fc=out[i].astype(np.float32),
                    label=s.label if fit else None, site=s.site, tr=s.tr, source=s.source,
                    roi_names=s.roi_names)
            for i, s in enumerate(cohort)
        ]
        return Cohort(subjects=subjects, name=cohort.name, roi_names=cohort.roi_names)

    # -- CohortClassifier API --------------------------------------------------------------
    def fit(self, cohort: Cohort) -> AdaptedClassifier:
        self.base.fit(self._adapted_cohort(cohort, fit=True))
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        return self.base.predict_proba(self._adapted_cohort(cohort, fit=False))

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        return self.base.explain(self._adapted_cohort(cohort, fit=False))

    def history(self) -> list[dict[str, Any]]:
        return self.base.history()

    def __getattr__(self, name: str) -> Any:  # best_epoch_, chosen_ ... of the wrapped model
        if name.startswith("__") or name == "base":
            raise AttributeError(name)
        return getattr(self.__dict__["base"], name)

    def save(self, directory: str | Path) -> None:
        if self.harmonizer is None:
            raise ConfigError("classifier is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.base.save(d / "base")
        hmeta, arrays = self.harmonizer.state()
        tparams = None
        if self.transformer is not None:
            tparams, tarrays = self.transformer.get_state()
            arrays = {**arrays, **{f"transformer.{k}": v for k, v in tarrays.items()}}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(d / "harmonizer.safetensors"))
        _write_json(d / CLASSIFIER_FILE, {
            "type": "adapted", "model": self.model_name, "mode": self.mode,
            "covariates": self.covariates, "covariate_fill": self.cov_fill_,
            "harmonizer": hmeta, "transformer": tparams, "connectome": self.connectome,
        })

    @classmethod
    def load(cls, directory: str | Path) -> AdaptedClassifier:
        from graphbrain.training.estimator import load_classifier

        d = Path(directory)
        meta = json.loads((d / CLASSIFIER_FILE).read_text())
        if meta.get("type") != "adapted":
            raise ConfigError(f"{d / CLASSIFIER_FILE}: not an adapted classifier")
        base = load_classifier(d / "base")
        clf = cls.__new__(cls)
        clf.__dict__.update(base=base, model_name=meta["model"], mode=meta["mode"],
                            covariates=list(meta["covariates"]), cov_fill_=dict(meta["covariate_fill"]))
        arrays = load_file(str(d / "harmonizer.safetensors"))
        h_arrays = {k: v for k, v in arrays.items() if not k.startswith("transformer.")}
        hmeta = meta["harmonizer"]
        clf.harmonizer = (ComBat if hmeta["kind"] == "combat" else SiteStandardizer).from_state(hmeta, h_arrays)
        clf.transformer = None
        if meta.get("transformer") is not None:
            t_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("transformer.")}
            clf.transformer = ConnectivityTransformer.from_state(meta["transformer"], t_arrays)
        return clf


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def with_adaptation(clf: CohortClassifier, adapt: str | None,
                    covariates: list[str] | tuple[str, ...] | None = None) -> CohortClassifier:
    """``clf`` wrapped for ``adapt`` (``none``: unchanged).

    Ensembles adapt their static members and leave dynamic ones as they are
    (:meth:`graphbrain.training.ensemble.EnsembleClassifier.set_adapt`).
    """
    mode = check_adapt(adapt)
    if mode == "none":
        return clf
    if hasattr(clf, "set_adapt"):
        clf.set_adapt(mode, covariates)  # type: ignore[attr-defined]
        return clf
    return AdaptedClassifier(clf, mode, covariates)


def adapt_loaded(clf: CohortClassifier, mode: str | None) -> CohortClassifier:
    """A loaded (fitted) classifier set up for ``adapt=mode`` at prediction.

    A model trained with adaptation keeps its own (``mode`` must match or be ``None``);
    a model trained without it gets ``adapt="site"`` from its own scaler statistics
    (:meth:`AdaptedClassifier.from_fitted`); ``combat`` needs the covariate model fitted at
    training time (train with ``adapt=combat``). Ensembles and searches adapt their
    fitted static members.
    """
    if mode is None:
        return clf
    mode = check_adapt(mode)
    if isinstance(clf, AdaptedClassifier):
        if clf.mode != mode:
            raise ConfigError(
                f"this model was trained with adapt={clf.mode}; it cannot predict with adapt={mode} "
                f"(leave adapt unset to use the training setting)"
            )
        return clf
    if hasattr(clf, "fitted_") and hasattr(clf, "set_adapt"):  # an ensemble
        clf.fitted_ = [[_adapt_member(c, mode) for c in seeds] for seeds in clf.fitted_]  # type: ignore[attr-defined]
        return clf
    if hasattr(clf, "best_") and getattr(clf, "best_", None) is not None:  # a search
        clf.best_ = adapt_loaded(clf.best_, mode)  # type: ignore[attr-defined]
        return clf
    if mode == "none":
        return clf
    if mode == "combat":
        raise ConfigError("adapt=combat at prediction needs a model trained with adapt=combat "
                          "(its covariate model is fitted on the training cohort); use adapt=site")
    return AdaptedClassifier.from_fitted(clf)


def _adapt_member(c: CohortClassifier, mode: str) -> CohortClassifier:
    spec = getattr(c, "_spec", None)
    if not isinstance(c, AdaptedClassifier) and spec is not None and spec.input != "static_fc":
        return c  # dynamic members are never adapted
    return adapt_loaded(c, mode)
