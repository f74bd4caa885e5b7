"""The one place that knows how a fitted classifier turns a cohort into model inputs.

Everything in :mod:`graphbrain.explain` that needs a torch model's input tensors goes
through :func:`input_batches` and :func:`input_key`, so the switch to the classifier's
own ``TorchClassifier.input_batches(cohort, batch_size)`` (which yields
``(row_indices, batch_dict)``, rows possibly repeated for several crops of one scan,
with an optional ``"mask"``) is made here only. Until a classifier offers it, the
fallback builds the same batches from the classifier's evaluation dataset
(``clf._dataset(cohort, labels, fit=False)`` + ``dataset.batch``: one batch per
consecutive block of subjects, first crop).

For scikit-learn classifiers, :func:`linear_inputs` returns the standardised FC
features the linear model scores (``z``, one row per subject) and the model's
coefficients.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError


def is_torch(clf: Any) -> bool:
    return getattr(getattr(clf, "_spec", None), "kind", None) == "torch"


def is_linear(clf: Any) -> bool:
    return getattr(getattr(clf, "_spec", None), "kind", None) == "sklearn"


def input_key(clf: Any) -> str:
    """Name of the tensor to attribute: ``"dfc"`` (dynamic FC) or ``"fc"`` (static FC)."""
    key = getattr(clf, "input_key", None)
    if isinstance(key, str):
        return key
    spec = getattr(clf, "_spec", None)
    if spec is None:
        raise ConfigError(f"{type(clf).__name__} is not a graphbrain torch classifier")
    return "dfc" if spec.input == "dynamic_fc" else "fc"


def model_device(clf: Any) -> Any:
    import torch

    model = clf.model
    if model is None:
        raise ConfigError("classifier is not fitted; fit it or load a saved one before explaining")
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def input_batches(clf: Any, cohort: Cohort, batch_size: int = 32) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """``(row_indices, batch_dict)`` over ``cohort`` in evaluation mode (no random crops)."""
    native = getattr(clf, "input_batches", None)
    if callable(native):
        for rows, batch in native(cohort, batch_size=batch_size):
            yield np.asarray(rows, dtype=np.int64), batch
        return
    # Fallback: the classifier's evaluation dataset, consecutive blocks of subjects.
    labels = np.zeros(len(cohort), dtype=np.int64)
    data = clf._dataset(cohort, labels, fit=False)
    device = model_device(clf)
    rng = np.random.default_rng(0)
    for start in range(0, len(cohort), batch_size):
        rows = np.arange(start, min(len(cohort), start + batch_size))
        yield rows, data.batch(rows, train=False, rng=rng, device=device)


def linear_inputs(clf: Any, cohort: Cohort) -> tuple[np.ndarray, np.ndarray, float]:
    """Standardised features ``z`` ``(N, E)`` (nilearn's lower-triangle order), weights ``(E,)``, intercept."""
    from graphbrain.training.estimator import static_features

    if clf.model is None or clf.scaler is None:
        raise ConfigError("classifier is not fitted; fit it or load a saved one before explaining")
    x, _ = static_features(cohort, clf.transformer, fit=False)
    z = clf.scaler.transform(x)
    coef = np.asarray(clf.model.coef_, dtype=np.float64)
    if coef.shape[0] != 1:
        raise ConfigError("linear contributions are implemented for two-class models only")
    return np.asarray(z, dtype=np.float64), coef.ravel(), float(np.ravel(clf.model.intercept_)[0])
