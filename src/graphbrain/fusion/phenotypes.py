"""Phenotypes as a modality: covariates encoded inside the training fold.

:class:`PhenotypeEncoder` reads ``Subject.covariates`` (age, sex, handedness, IQ, motion
...): numeric columns are z-scored with the training fold's mean / sd, categorical ones
one-hot encoded with the training fold's categories (unseen categories encode as all
zeros). A value that is missing sets the subject's mask for that column; the encoder
returns the values, a per-subject ``present`` flag (any column present) and a per-column
mask, so the model knows what it was not told instead of seeing a silent imputation.

Diagnosis-derived scores (ADOS, ADI-R, SRS, SCQ, DSM diagnosis, ``DX_GROUP`` ...) would
leak the label; they are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError

DEFAULT_COLUMNS = ("age", "sex")
# Names that are (or are computed from) the diagnosis: never a model input.
_LEAKY = re.compile(r"(^|_)(dx|diagnos|ados|adi_?r|srs|scq|dsm|vineland|label|group|autism|asd|adhd)",
                    re.IGNORECASE)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(np.isnan(float(v))) or float(v) == -9999.0
    except (TypeError, ValueError):
        return str(v).strip() in ("", "nan", "NaN", "NA", "n/a")


class PhenotypeEncoder:
    """Fit on a training cohort; transform any cohort into ``(values, present, mask)``."""

    def __init__(self, columns: Sequence[str] = DEFAULT_COLUMNS, categorical: Sequence[str] = ("sex", "handedness")) -> None:
        cols = [str(c) for c in columns]
        leaky = [c for c in cols if _LEAKY.search(c)]
        if leaky:
            raise ConfigError(
                f"phenotype column(s) {leaky} are diagnosis-derived and would leak the label; "
                "use site-independent covariates such as age and sex"
            )
        if not cols:
            raise ConfigError("PhenotypeEncoder needs at least one column")
        self.columns = cols
        self.categorical = {c for c in categorical if c in cols}
        self.mean_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        self.categories_: dict[str, list[str]] = {}

    @property
    def dim(self) -> int:
        return sum(len(self.categories_.get(c, [])) if c in self.categorical else 1 for c in self.columns)

    def fit(self, cohort: Cohort) -> PhenotypeEncoder:
        for c in self.columns:
            vals = [s.covariates.get(c) for s in cohort]
            seen = [v for v in vals if not _missing(v)]
            if c in self.categorical:
                self.categories_[c] = sorted({str(v) for v in seen})
            else:
                x = np.asarray([float(v) for v in seen], dtype=np.float64)
                self.mean_[c] = float(x.mean()) if x.size else 0.0
                sd = float(x.std()) if x.size > 1 else 0.0
                self.scale_[c] = sd if sd > 1e-8 else 1.0
        return self

    def transform(self, cohort: Cohort) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``values (N, D)`` float32, ``present (N,)`` bool, ``column_mask (N, n_columns)`` bool."""
        if not self.mean_ and not self.categories_:
            raise ConfigError("PhenotypeEncoder is not fitted")
        n = len(cohort)
        blocks, mask = [], np.zeros((n, len(self.columns)), dtype=bool)
        for j, c in enumerate(self.columns):
            vals = [s.covariates.get(c) for s in cohort]
            ok = np.asarray([not _missing(v) for v in vals])
            mask[:, j] = ok
            if c in self.categorical:
                cats = self.categories_[c]
                b = np.zeros((n, len(cats)), dtype=np.float32)
                for i, v in enumerate(vals):
                    if ok[i] and str(v) in cats:
                        b[i, cats.index(str(v))] = 1.0
            else:
                b = np.zeros((n, 1), dtype=np.float32)
                for i, v in enumerate(vals):
                    if ok[i]:
                        b[i, 0] = (float(v) - self.mean_[c]) / self.scale_[c]
            blocks.append(b)
        values = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32)
        return values.astype(np.float32), mask.any(axis=1), mask

    def get_state(self) -> dict[str, Any]:
        return {"columns": self.columns, "categorical": sorted(self.categorical), "mean": self.mean_,
                "scale": self.scale_, "categories": self.categories_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PhenotypeEncoder:
        enc = cls(state["columns"], state["categorical"])
        enc.mean_ = {k: float(v) for k, v in state["mean"].items()}
        enc.scale_ = {k: float(v) for k, v in state["scale"].items()}
        enc.categories_ = {k: list(v) for k, v in state["categories"].items()}
        return enc
