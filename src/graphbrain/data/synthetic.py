"""Synthetic cohorts with planted ground truth.

Every subject's ROI signals come from a few shared latent "networks" (AR(1) in time)
plus ROI noise; each site adds its own scanner component and ROI gains. The two
classes differ only in *coupling* among a known set of ROIs during a known window:

* label 1: during ``planted_window`` the ``planted_rois`` share one common AR(1) drive
  of amplitude ``effect_size`` (they become correlated);
* label 0: the same ROIs get drives of the same amplitude, independent per ROI.

So per-ROI variance is identical across classes: only connectivity (and only inside
the window) carries the label. Later work scores explanations against
``cohort.meta["planted_rois"]`` and ``cohort.meta["planted_window"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphbrain.data.records import Cohort, Subject
from graphbrain.errors import ConfigError


def _ar1(rng: np.random.Generator, n: int, k: int, phi: float) -> np.ndarray:
    """``k`` unit-variance AR(1) series of length ``n``, shape (n, k)."""
    e = rng.standard_normal((n, k))
    out = np.empty_like(e)
    out[0] = e[0]
    scale = np.sqrt(1.0 - phi**2)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + scale * e[t]
    return out


def _check(
    n_subjects: int, n_rois: int, n_timepoints: int, n_sites: int, n_planted: int,
    planted_window: tuple[int, int] | None,
) -> tuple[int, int]:
    if n_subjects < 2 or n_rois < 2 or n_timepoints < 4:
        raise ConfigError("synthetic cohort needs n_subjects >= 2, n_rois >= 2, n_timepoints >= 4")
    if not 2 <= n_planted <= n_rois:
        raise ConfigError(f"n_planted must be in [2, n_rois={n_rois}], got {n_planted}")
    if n_sites < 1:
        raise ConfigError(f"n_sites must be >= 1, got {n_sites}")
    if planted_window is None:
        planted_window = (n_timepoints // 3, 2 * n_timepoints // 3)
    t0, t1 = int(planted_window[0]), int(planted_window[1])
    if not 0 <= t0 < t1 <= n_timepoints:
        raise ConfigError(f"planted_window {planted_window} must lie inside [0, {n_timepoints}]")
    return t0, t1


def _design(
    rng: np.random.Generator, n_rois: int, n_sites: int, n_planted: int, n_networks: int, site_effect: float
) -> dict[str, Any]:
    """What every subject shares: planted ROIs, network mixing, site effects (first draws)."""
    planted = np.sort(rng.choice(n_rois, size=n_planted, replace=False))
    mixing = rng.standard_normal((n_rois, n_networks)) * 0.6
    site_names = [f"site{i + 1}" for i in range(n_sites)]
    site_mix = rng.standard_normal((n_sites, n_rois)) * site_effect
    site_gain = np.exp(rng.standard_normal((n_sites, n_rois)) * 0.3 * site_effect)
    site_noise = 1.0 + site_effect * rng.random(n_sites)
    roi_names = [f"ROI{i:03d}" for i in range(n_rois)]
    return {"planted": planted, "mixing": mixing, "site_names": site_names, "site_mix": site_mix,
            "site_gain": site_gain, "site_noise": site_noise, "roi_names": roi_names}


def _subject(
    rng: np.random.Generator, i: int, d: dict[str, Any], n_timepoints: int, n_networks: int,
    window: tuple[int, int], effect_size: float, noise: float, tr: float,
) -> Subject:
    """Subject ``i``, drawn from ``rng``."""
    planted, mixing, site_mix = d["planted"], d["mixing"], d["site_mix"]
    n_rois, n_planted = mixing.shape[0], planted.size
    t0, t1 = window
    label = i % 2
    site = (i // 2) % len(d["site_names"])
    latent = _ar1(rng, n_timepoints, n_networks, 0.5)
    subj_mix = mixing + 0.15 * rng.standard_normal(mixing.shape)
    x = latent @ subj_mix.T
    x += _ar1(rng, n_timepoints, 1, 0.6) @ site_mix[site][None, :]
    x += noise * d["site_noise"][site] * rng.standard_normal((n_timepoints, n_rois))
    length = t1 - t0
    if label == 1:
        drive = np.repeat(_ar1(rng, length, 1, 0.3), n_planted, axis=1)
    else:
        drive = _ar1(rng, length, n_planted, 0.3)
    x[t0:t1, planted] += effect_size * drive
    x *= d["site_gain"][site]
    return Subject(
        id=f"sub-{i:04d}",
        timeseries=x.astype(np.float32),
        label=label,
        site=d["site_names"][site],
        covariates={"age": float(np.round(rng.normal(30, 8), 1)), "sex": int(rng.integers(1, 3))},
        roi_names=d["roi_names"],
        tr=tr,
        source=f"synthetic:sub-{i:04d}",
    )


def _arguments(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed with :func:`make_synthetic_cohort`'s defaults."""
    import inspect

    try:
        bound = inspect.signature(make_synthetic_cohort).bind(**params)
    except TypeError as err:
        raise ConfigError(f"synthetic cohort: {err}") from err
    bound.apply_defaults()
    return dict(bound.arguments)


def synthetic_design(**params: Any) -> dict[str, Any]:
    """The planted ground truth of a synthetic cohort without generating any subject
    (``params`` as :func:`make_synthetic_cohort`): ``planted_rois``, ``planted_window``,
    ``effect_size``, ``seed``, as in the cohort's ``meta``, and ``roi_names``."""
    a = _arguments(params)
    t0, t1 = _check(a["n_subjects"], a["n_rois"], a["n_timepoints"], a["n_sites"], a["n_planted"],
                    a["planted_window"])
    d = _design(np.random.default_rng(a["seed"]), a["n_rois"], a["n_sites"], a["n_planted"], a["n_networks"],
                a["site_effect"])
    return {"planted_rois": d["planted"].tolist(), "planted_window": (t0, t1), "effect_size": a["effect_size"],
            "seed": a["seed"], "roi_names": d["roi_names"]}


def synthetic_subject(index: int, **params: Any) -> Subject:
    """Subject ``index`` of a synthetic cohort, made on its own (for streaming: a worker
    makes subject 40,000 without subjects 0..39,999); ``params`` as
    :func:`make_synthetic_cohort`.

    Same design as :func:`make_synthetic_cohort` with the same arguments (planted ROIs
    and window, networks, site effects, label ``index % 2``, site), but the subject's
    own draws come from the random stream ``default_rng([seed, index])`` instead of one
    stream shared in order by all subjects, so its time series differ from the
    in-memory cohort's subject of the same index.
    """
    a = _arguments(params)
    t0, t1 = _check(a["n_subjects"], a["n_rois"], a["n_timepoints"], a["n_sites"], a["n_planted"],
                    a["planted_window"])
    if not 0 <= index < a["n_subjects"]:
        raise ConfigError(f"subject index {index} is outside [0, n_subjects={a['n_subjects']})")
    d = _design(np.random.default_rng(a["seed"]), a["n_rois"], a["n_sites"], a["n_planted"], a["n_networks"],
                a["site_effect"])
    rng = np.random.default_rng([a["seed"], index])
    return _subject(rng, index, d, a["n_timepoints"], a["n_networks"], (t0, t1), a["effect_size"], a["noise"],
                    a["tr"])

def make_synthetic_cohort(
    n_subjects: int = 120,
    n_rois: int = 32,
    n_timepoints: int = 150,
    n_sites: int = 3,
    n_planted: int = 6,
    planted_window: tuple[int, int] | None = None,
    effect_size: float = 1.0,
    noise: float = 1.0,
    site_effect: float = 0.5,
    n_networks: int = 4,
    tr: float = 2.0,
    seed: int = 0,
) -> Cohort:
    """Generate a balanced two-class cohort with a planted connectivity difference.

    Args:
        n_subjects: number of subjects (classes alternate, so they stay balanced per site).
        n_rois: number of ROIs ``R``.
        n_timepoints: scan length ``T``.
        n_sites: number of acquisition sites (subjects are spread evenly).
        n_planted: how many ROIs carry the planted coupling.
        planted_window: ``(start, stop)`` time points of the coupling; default the middle third.
        effect_size: amplitude of the planted drive, relative to unit-variance background.
        noise: standard deviation of the ROI-specific white noise.
        site_effect: amplitude of each site's scanner component and ROI gain spread.
        n_networks: number of shared latent networks in the background.
        tr: repetition time in seconds.
        seed: random seed; the same seed gives the same cohort.
    """
    t0, t1 = _check(n_subjects, n_rois, n_timepoints, n_sites, n_planted, planted_window)
    rng = np.random.default_rng(seed)
    design = _design(rng, n_rois, n_sites, n_planted, n_networks, site_effect)
    planted, roi_names = design["planted"], design["roi_names"]

    subjects: list[Subject] = []
    for i in range(n_subjects):
        subjects.append(_subject(rng, i, design, n_timepoints, n_networks, (t0, t1), effect_size, noise, tr))
    meta = {
        "planted_rois": planted.tolist(),
        "planted_window": (t0, t1),
        "effect_size": effect_size,
        "seed": seed,
    }
    return Cohort(subjects=subjects, name="synthetic", roi_names=roi_names, meta=meta)
