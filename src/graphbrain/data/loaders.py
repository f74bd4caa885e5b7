"""One entry point from configuration to a :class:`Cohort`: ``load_cohort(source, **params)``.

The Hydra ``data`` config group calls this with its keys, so every parameter name is
checked against the reader's signature and a typo is a :class:`ConfigError` listing the
valid names, not a silently ignored key.

Sources:

* ``"synthetic"`` -> :func:`~graphbrain.data.synthetic.make_synthetic_cohort`, then
  :func:`~graphbrain.data.validation.validate_cohort` with the validation parameters
  (``on_invalid``, ``constant_roi``, ``min_timepoints``);
* ``"abide_pcp"`` -> :func:`~graphbrain.data.abide.read_abide_pcp`;
* ``"nifti"`` -> :func:`~graphbrain.data.nifti.read_nifti`;
* ``"bids"`` -> :func:`~graphbrain.data.bids.read_bids`;
* ``"precomputed"`` -> :func:`~graphbrain.data.precomputed.read_precomputed`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from graphbrain.data.abide import read_abide_pcp
from graphbrain.data.bids import read_bids
from graphbrain.data.nifti import read_nifti
from graphbrain.data.precomputed import read_precomputed
from graphbrain.data.records import Cohort
from graphbrain.data.synthetic import make_synthetic_cohort
from graphbrain.data.validation import validate_cohort
from graphbrain.errors import ConfigError

#: Validation parameters accepted by every source (for ``"synthetic"`` they are applied
#: by :func:`validate_cohort` after generation; there ``n_rois`` is the generator's ROI
#: count, which validation then checks too).
VALIDATION_PARAMS = ("on_invalid", "constant_roi", "min_timepoints")

READERS: dict[str, Callable[..., Cohort]] = {
    "synthetic": make_synthetic_cohort,
    "abide_pcp": read_abide_pcp,
    "nifti": read_nifti,
    "bids": read_bids,
    "precomputed": read_precomputed,
}


def valid_params(source: str) -> list[str]:
    """The parameter names ``load_cohort(source, ...)`` accepts, sorted."""
    if source not in READERS:
        raise ConfigError(f"unknown data source {source!r}; valid sources: {sorted(READERS)}")
    names = set(inspect.signature(READERS[source]).parameters)
    if source == "synthetic":
        names |= set(VALIDATION_PARAMS)
    return sorted(names)


def _synthetic(params: dict[str, Any]) -> Cohort:
    checks = {k: params.pop(k) for k in VALIDATION_PARAMS if k in params}
    cohort = make_synthetic_cohort(**params)
    return validate_cohort(
        cohort.subjects,
        name=cohort.name,
        roi_names=cohort.roi_names,
        meta=cohort.meta,
        excluded=cohort.excluded,
        **checks,
    )


def load_cohort(source: str, **params: Any) -> Cohort:
    """Build a validated cohort from a named source and its parameters.

    Args:
        source: ``"synthetic"``, ``"abide_pcp"``, ``"nifti"``, ``"bids"`` or ``"precomputed"``.
        **params: keyword arguments of that source's reader (see the module docstring).

    Raises:
        ConfigError: unknown source, unknown parameter (the message lists valid ones), or a
            missing required parameter.
    """
    valid = valid_params(source)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for data source {source!r}; valid: {valid}"
        )
    reader = READERS[source]
    required = [
        n
        for n, p in inspect.signature(reader).parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in params
    ]
    if required:
        raise ConfigError(f"data source {source!r} needs parameter(s) {required}")
    if source == "synthetic":
        return _synthetic(dict(params))
    return reader(**params)
