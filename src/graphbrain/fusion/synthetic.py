"""Multimodal synthetic cohorts with the label planted in a chosen modality.

:func:`make_multimodal_cohort` returns a connectome cohort (from
:func:`graphbrain.data.make_synthetic_cohort`) and an :class:`EmbeddingTable` of
"imaging-encoder" embeddings, with the label's information placed where you say:

* ``signal="image"``: the connectome carries nothing (``effect_size=0``); the embedding
  is Gaussian noise plus ``image_effect`` times the label along a few random directions;
* ``signal="connectome"``: the planted connectivity carries the label; the embedding is
  pure noise;
* ``signal="both"``: each modality carries an independent part: for every subject a
  fair coin decides which modality shows its label (the other shows nothing), so only a
  model that reads both can classify everyone.

``missing`` removes that fraction of subjects from the embedding table and blanks the
same fraction of each covariate (``age``, ``sex``), at random, to test missing modalities.
"""

from __future__ import annotations

import numpy as np

from graphbrain.data import Cohort, make_synthetic_cohort
from graphbrain.errors import ConfigError
from graphbrain.fusion.embeddings import EmbeddingTable


def make_multimodal_cohort(
    n_subjects: int = 160,
    *,
    signal: str = "both",
    n_rois: int = 16,
    n_timepoints: int = 120,
    image_dim: int = 16,
    image_effect: float = 1.5,
    effect_size: float = 2.0,
    missing: float = 0.0,
    seed: int = 0,
) -> tuple[Cohort, EmbeddingTable]:
    if signal not in ("image", "connectome", "both"):
        raise ConfigError(f"signal must be 'image', 'connectome' or 'both', got {signal!r}")
    if not 0.0 <= missing < 1.0:
        raise ConfigError(f"missing must be in [0, 1), got {missing}")
    rng = np.random.default_rng(seed + 1000)
    # "both": subjects whose connectome shows the label come from a cohort with the effect,
    # the others from one without it; which is which is random and unrelated to the label.
    strong = make_synthetic_cohort(n_subjects, n_rois=n_rois, n_timepoints=n_timepoints, seed=seed,
                                   effect_size=effect_size if signal != "image" else 0.0)
    if signal == "both":
        weak = make_synthetic_cohort(n_subjects, n_rois=n_rois, n_timepoints=n_timepoints, seed=seed,
                                     effect_size=0.0)
        shows_conn = rng.random(n_subjects) < 0.5
        subjects = [strong[i] if shows_conn[i] else weak[i] for i in range(n_subjects)]
    else:
        subjects = list(strong.subjects)
        shows_conn = np.full(n_subjects, signal == "connectome")
    labels = np.asarray([s.label for s in subjects])
    direction = rng.standard_normal((4, image_dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    emb = rng.standard_normal((n_subjects, image_dim))
    if signal != "connectome":
        shows_img = ~shows_conn if signal == "both" else np.ones(n_subjects, bool)
        amp = image_effect * (2 * labels - 1) * shows_img
        emb += amp[:, None] * direction.mean(axis=0, keepdims=True) * np.sqrt(image_dim) / 2
    ids = [s.id for s in subjects]
    keep = rng.random(n_subjects) >= missing
    table = EmbeddingTable([i for i, k in zip(ids, keep) if k], emb[keep], source=f"synthetic:{signal}")
    if missing > 0:
        for s in subjects:
            s.covariates = dict(s.covariates)
            for c in ("age", "sex"):
                if rng.random() < missing:
                    s.covariates[c] = None
    meta = {**strong.meta, "signal": signal, "shows_connectome": shows_conn.tolist(), "missing": missing}
    return Cohort(subjects=subjects, name=f"multimodal-{signal}", roi_names=strong.roi_names, meta=meta), table
