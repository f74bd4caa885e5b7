"""Input validation: every problem becomes a clear error or a recorded exclusion.

Checks, in order: 2-D shape, finite values (no NaN/Inf), enough time points for the
chosen windows, the expected ROI count, and constant (zero-variance) ROIs, whose
correlation is undefined.

Policy ``on_invalid``: ``"raise"`` raises :class:`~graphbrain.errors.DataError` naming
the file and the problem; ``"exclude"`` records an :class:`Exclusion` and goes on.
Policy ``constant_roi``: ``"exclude"`` / ``"raise"`` as above, or ``"keep"`` to keep the
subject (its constant ROIs then get zero correlation with every other ROI; the
connectome code guarantees no NaN reaches a model) and record a flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.errors import ConfigError, DataError

OnInvalid = Literal["raise", "exclude"]
ConstantPolicy = Literal["raise", "exclude", "keep"]

_CONSTANT_TOL = 1e-8


def constant_rois(timeseries: np.ndarray) -> np.ndarray:
    """Indices of ROIs whose standard deviation over time is (numerically) zero."""
    ts = np.asarray(timeseries, dtype=np.float64)
    return np.flatnonzero(ts.std(axis=0) <= _CONSTANT_TOL * (1.0 + np.abs(ts).max(initial=0.0)))


def check_subject(
    subject: Subject,
    *,
    min_timepoints: int = 2,
    n_rois: int | None = None,
    constant_roi: ConstantPolicy = "exclude",
) -> list[str]:
    """Raise :class:`DataError` for the first problem found; return flags otherwise.

    Returns a list of non-fatal flags (``"constant_roi:<idx>"`` under ``constant_roi="keep"``).
    """
    src = subject.source or subject.id
    if subject.timeseries is None:
        return _check_fc(subject, n_rois=n_rois)
    ts = subject.timeseries
    if ts.ndim != 2 or ts.shape[0] == 0 or ts.shape[1] == 0:
        raise DataError(f"empty or malformed time series, shape {ts.shape}", source=src, reason="wrong_shape")
    bad = ~np.isfinite(ts)
    if bad.any():
        t_idx, r_idx = np.nonzero(bad)
        raise DataError(
            f"{int(bad.sum())} non-finite value(s) (NaN/Inf), first at time point {int(t_idx[0])}, "
            f"ROI {int(r_idx[0])}",
            source=src,
            reason="non_finite",
        )
    if ts.shape[0] < min_timepoints:
        raise DataError(
            f"scan too short: {ts.shape[0]} time points, at least {min_timepoints} needed "
            "(window length / minimum scan length)",
            source=src,
            reason="too_short",
        )
    if n_rois is not None and ts.shape[1] != n_rois:
        raise DataError(
            f"ROI count mismatch: {ts.shape[1]} ROIs, the cohort has {n_rois}",
            source=src,
            reason="roi_mismatch",
        )
    const = constant_rois(ts)
    if const.size:
        names = subject.roi_names
        shown = [names[i] if names and i < len(names) else str(int(i)) for i in const[:5]]
        msg = f"{const.size} constant (zero-variance) ROI(s): {shown}; their correlation is undefined"
        if constant_roi == "keep":
            return [f"constant_roi:{int(i)}" for i in const]
        raise DataError(msg, source=src, reason="constant_roi")
    return []


def _check_fc(subject: Subject, *, n_rois: int | None) -> list[str]:
    """Checks for a subject that carries a precomputed connectivity matrix."""
    src = subject.source or subject.id
    fc = subject.fc
    if fc is None:  # pragma: no cover - Subject forbids it
        raise DataError("no data", source=src, reason="empty")
    if not np.isfinite(fc).all():
        raise DataError(
            f"{int((~np.isfinite(fc)).sum())} non-finite value(s) (NaN/Inf) in the connectivity matrix",
            source=src,
            reason="non_finite",
        )
    if not np.allclose(fc, fc.T, atol=1e-5):
        raise DataError("connectivity matrix is not symmetric", source=src, reason="not_symmetric")
    if n_rois is not None and fc.shape[0] != n_rois:
        raise DataError(
            f"ROI count mismatch: {fc.shape[0]} ROIs, the cohort has {n_rois}",
            source=src,
            reason="roi_mismatch",
        )
    return []


def validate_cohort(
    subjects: Iterable[Subject],
    *,
    name: str = "cohort",
    on_invalid: OnInvalid = "exclude",
    constant_roi: ConstantPolicy = "exclude",
    min_timepoints: int = 2,
    n_rois: int | None = None,
    require_label: bool = False,
    excluded: list[Exclusion] | None = None,
    roi_names: list[str] | None = None,
    meta: dict | None = None,
) -> Cohort:
    """Check every subject and build a :class:`Cohort`.

    ``n_rois`` defaults to the ROI count of the majority of subjects, so one odd file
    is reported as the mismatch rather than the rest. Duplicated ids are an error.
    """
    if on_invalid not in ("raise", "exclude"):
        raise ConfigError(f"on_invalid must be 'raise' or 'exclude', got {on_invalid!r}")
    if constant_roi not in ("raise", "exclude", "keep"):
        raise ConfigError(f"constant_roi must be 'raise', 'exclude' or 'keep', got {constant_roi!r}")
    subjects = list(subjects)
    excluded = list(excluded or [])
    if n_rois is None and subjects:
        counts = np.bincount([s.n_rois for s in subjects])
        n_rois = int(np.argmax(counts))
    kept: list[Subject] = []
    flags: dict[str, list[str]] = {}
    seen: set[str] = set()
    for s in subjects:
        try:
            if s.id in seen:
                raise DataError(f"duplicate subject id {s.id!r}", source=s.source or s.id, reason="duplicate_id")
            if require_label and s.label is None:
                raise DataError("no label for this subject", source=s.source or s.id, reason="missing_label")
            f = check_subject(
                s,
                min_timepoints=min_timepoints,
                n_rois=n_rois,
                constant_roi=constant_roi,
            )
        except DataError as err:
            # Constant ROIs follow their own policy; every other problem follows on_invalid.
            policy = constant_roi if err.reason == "constant_roi" else on_invalid
            if policy == "raise":
                raise
            excluded.append(Exclusion(s.id, s.source, err.reason, str(err)))
            continue
        seen.add(s.id)
        if f:
            flags[s.id] = f
        kept.append(s)
    meta = dict(meta or {})
    if flags:
        meta["flags"] = flags
    if roi_names is None and kept and kept[0].roi_names is not None:
        roi_names = kept[0].roi_names
    return Cohort(subjects=kept, excluded=excluded, name=name, roi_names=roi_names, meta=meta)
