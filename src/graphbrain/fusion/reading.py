"""From explanation to knowledge: a subject's top attributed ROIs become KG findings.

:func:`kg_reading` takes per-subject ROI attributions ``(N, R)`` (a linear model's
``"node"`` record, STAGIN's ``"spatial"`` record averaged over windows, or any
:mod:`graphbrain.explain` attribution), keeps each subject's ``top_k`` ROIs, maps them to
anatomy concepts through a ROI mapping table (:func:`~graphbrain.fusion.kg_features.map_rois_to_kg`),
and asks the knowledge graph which diseases are located in / characterised by those
structures (``KnowledgeGraph.diagnose``). The answer sits next to the prediction: one row
per subject and candidate disease, with the evidence paths as text.

This is a reading aid, not a second classifier: the KG knows where diseases are located,
not what a connectome pattern means. The table keeps the ROIs and concepts used, so a
reader can see exactly which anatomy drove each answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.errors import DataError


def roi_attribution(attention: dict[str, np.ndarray]) -> np.ndarray | None:
    """``(N, R)`` ROI attribution from a run's attention record, or ``None`` if it has none."""
    if "node" in attention:
        return np.abs(np.asarray(attention["node"], dtype=np.float64))
    if "spatial" in attention:
        sp = np.asarray(attention["spatial"], dtype=np.float64)
        return np.nanmean(sp, axis=1) if sp.ndim == 3 else sp
    return None


def kg_reading(
    attribution: np.ndarray,
    mapping: pd.DataFrame,
    kg: Any,
    subject_ids: Sequence[str],
    *,
    top_rois: int = 5,
    top_k: int = 3,
) -> pd.DataFrame:
    """One row per (subject, candidate): the KG's diseases for the subject's top ROIs.

    Columns: ``subject_id``, ``rank``, ``disease_id``, ``disease``, ``score``,
    ``rois`` (label texts of the top ROIs, ``" | "``-joined), ``findings`` (concept names),
    ``evidence`` (evidence paths, ``" | "``-joined), ``message`` (why a subject has no
    candidate, e.g. none of its top ROIs maps to a concept).
    """
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != len(subject_ids):
        raise DataError(f"attribution must be (subjects, ROIs) with {len(subject_ids)} rows, got {a.shape}",
                        reason="wrong_shape")
    if a.shape[1] != len(mapping):
        raise DataError(f"attribution has {a.shape[1]} ROIs, the mapping table {len(mapping)}", reason="roi_mismatch")
    concept = mapping["concept_id"].tolist()
    labels = mapping["label"].tolist()
    rows: list[dict[str, Any]] = []
    cache: dict[tuple[str, ...], Any] = {}
    for n, sid in enumerate(subject_ids):
        order = np.argsort(-np.nan_to_num(a[n], nan=-np.inf))[:top_rois]
        rois = [labels[i] for i in order]
        findings = tuple(dict.fromkeys(c for c in (concept[i] for i in order) if isinstance(c, str)))
        base = {"subject_id": sid, "rois": " | ".join(rois)}
        if not findings:
            rows.append({**base, "rank": None, "message": "none of the top ROIs maps to a KG concept"})
            continue
        if findings not in cache:
            try:
                cache[findings] = kg.diagnose(list(findings), top_k=top_k)
            except Exception as err:  # the KG explains why it cannot answer; keep the reason
                cache[findings] = str(err)
        res = cache[findings]
        names = " | ".join(kg.name(f) for f in findings)
        if isinstance(res, str) or not getattr(res, "candidates", None):
            msg = res if isinstance(res, str) else "the KG links these structures to no disease"
            rows.append({**base, "findings": names, "rank": None, "message": msg})
            continue
        for cand in res.candidates:
            rows.append({**base, "findings": names, "rank": cand.rank, "disease_id": cand.concept_id,
                         "disease": cand.name, "score": cand.score,
                         "evidence": " | ".join(cand.evidence_text), "message": ""})
    cols = ["subject_id", "rank", "disease_id", "disease", "score", "rois", "findings", "evidence", "message"]
    return pd.DataFrame(rows).reindex(columns=cols)
