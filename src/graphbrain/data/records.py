"""Subject and Cohort records: the unit every reader produces and every model consumes.

A :class:`Subject` holds one scan's ROI time series ``(T, R)`` as float32 plus its
label, site and covariates. A :class:`Cohort` is an ordered list of subjects with the
exclusions recorded while reading (subject id, file, reason), so that nothing is lost
silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Subject:
    """One scan of one participant.

    Attributes:
        id: subject identifier (unique inside a cohort).
        timeseries: ROI time series, shape ``(T, R)``, float32; ``None`` only when the
            subject comes with a precomputed connectome (``fc``) instead.
        label: class label (0/1 for binary tasks) or ``None`` when unknown.
        site: acquisition site (used for leave-site-out evaluation), or ``None``.
        covariates: non-imaging data such as ``age`` and ``sex``.
        roi_names: names of the ``R`` regions, or ``None``.
        tr: repetition time in seconds, or ``None`` when unknown.
        source: the file the time series came from (for error messages).
        fc: a precomputed ``(R, R)`` connectivity matrix (from ``.npy``/``.csv`` FC
            inputs); models that need time series refuse such subjects clearly.
        participant: the person this scan belongs to (default: ``id``). Several runs or
            sessions of one participant share it, and cross-validation never puts one
            participant on both sides of a split.
    """

    id: str
    timeseries: np.ndarray | None
    label: int | None = None
    site: str | None = None
    covariates: dict[str, Any] = field(default_factory=dict)
    roi_names: list[str] | None = None
    tr: float | None = None
    source: str | None = None
    fc: np.ndarray | None = None
    participant: str | None = None

    def __post_init__(self) -> None:
        from graphbrain.errors import DataError

        src = self.source or self.id
        self.participant = str(self.id) if self.participant is None else str(self.participant)
        if self.timeseries is None and self.fc is None:
            raise DataError("subject has neither a time series nor a connectome", source=src, reason="empty")
        if self.timeseries is not None:
            ts = np.asarray(self.timeseries)
            if ts.ndim != 2:
                raise DataError(
                    f"time series must be 2-D (time points x ROIs), got shape {ts.shape}",
                    source=src,
                    reason="wrong_shape",
                )
            self.timeseries = np.ascontiguousarray(ts, dtype=np.float32)
        if self.fc is not None:
            fc = np.asarray(self.fc)
            if fc.ndim != 2 or fc.shape[0] != fc.shape[1]:
                raise DataError(
                    f"connectivity matrix must be square (R x R), got shape {fc.shape}",
                    source=src,
                    reason="wrong_shape",
                )
            self.fc = np.ascontiguousarray(fc, dtype=np.float32)

    @property
    def n_timepoints(self) -> int:
        return 0 if self.timeseries is None else int(self.timeseries.shape[0])

    @property
    def n_rois(self) -> int:
        if self.timeseries is not None:
            return int(self.timeseries.shape[1])
        return int(self.fc.shape[0])  # type: ignore[union-attr]


@dataclass
class Exclusion:
    """A subject left out while reading or validating, and why."""

    subject_id: str
    source: str | None
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "source": self.source,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass
class Cohort:
    """An ordered set of subjects plus the exclusions met while building it.

    Attributes:
        subjects: the usable subjects.
        excluded: subjects dropped by validation, each with its reason.
        name: a short name for reports (``"synthetic"``, ``"abide_pcp"`` ...).
        roi_names: region names shared by all subjects, when known.
        meta: free-form metadata (for synthetic cohorts: the planted ground truth).
    """

    subjects: list[Subject]
    excluded: list[Exclusion] = field(default_factory=list)
    name: str = "cohort"
    roi_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.subjects)

    def __iter__(self) -> Iterator[Subject]:
        return iter(self.subjects)

    def __getitem__(self, i: int) -> Subject:
        return self.subjects[i]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.subjects]

    @property
    def labels(self) -> np.ndarray:
        """Labels as an int array; raises if any subject has no label."""
        missing = [s.id for s in self.subjects if s.label is None]
        if missing:
            from graphbrain.errors import DataError

            raise DataError(
                f"{len(missing)} subject(s) have no label (first: {missing[:5]}); "
                "supervised training needs a label for every subject",
                source=self.name,
                reason="missing_label",
            )
        return np.asarray([s.label for s in self.subjects], dtype=np.int64)

    @property
    def has_labels(self) -> bool:
        return len(self.subjects) > 0 and all(s.label is not None for s in self.subjects)

    @property
    def participants(self) -> np.ndarray:
        """Participant id per subject (runs / sessions of one person share one id)."""
        return np.asarray([s.participant if s.participant is not None else s.id for s in self.subjects])

    @property
    def sites(self) -> np.ndarray:
        return np.asarray([s.site if s.site is not None else "unknown" for s in self.subjects])

    @property
    def n_rois(self) -> int:
        if not self.subjects:
            return 0
        return self.subjects[0].n_rois

    def timeseries(self) -> list[np.ndarray]:
        """The subjects' time series; raises if a subject only has a precomputed FC."""
        out = []
        for s in self.subjects:
            if s.timeseries is None:
                from graphbrain.errors import DataError

                raise DataError(
                    "this step needs ROI time series, but the subject only has a precomputed "
                    "connectivity matrix",
                    source=s.source or s.id,
                    reason="no_timeseries",
                )
            out.append(s.timeseries)
        return out

    def subset(self, index: Sequence[int] | np.ndarray) -> Cohort:
        """A cohort with the subjects at ``index`` (exclusions are kept, meta is shared)."""
        idx = [int(i) for i in np.asarray(index).ravel()]
        return Cohort(
            subjects=[self.subjects[i] for i in idx],
            excluded=list(self.excluded),
            name=self.name,
            roi_names=self.roi_names,
            meta=self.meta,
        )

    def select_sites(self, sites: Sequence[str]) -> Cohort:
        """A cohort with only the subjects acquired at ``sites``."""
        keep = set(sites)
        return self.subset([i for i, s in enumerate(self.subjects) if s.site in keep])

    def phenotypes(self) -> pd.DataFrame:
        """One row per subject: id, site, label, n_timepoints, n_rois, tr and covariates."""
        rows = []
        for s in self.subjects:
            row = {
                "subject_id": s.id,
                "participant": s.participant,
                "site": s.site,
                "label": s.label,
                "n_timepoints": s.n_timepoints,
                "n_rois": s.n_rois,
                "tr": s.tr,
            }
            row.update(s.covariates)
            rows.append(row)
        return pd.DataFrame(rows)

    def exclusions_frame(self) -> pd.DataFrame:
        cols = ["subject_id", "source", "reason", "message"]
        return pd.DataFrame([e.as_dict() for e in self.excluded], columns=cols)
