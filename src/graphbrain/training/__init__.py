"""Training room: splits, metrics, cohort classifiers (scikit-learn and torch)."""

from graphbrain.training.ensemble import EnsembleClassifier
from graphbrain.training.estimator import (
    CohortClassifier,
    SklearnClassifier,
    build_classifier,
    load_classifier,
)
from graphbrain.training.harmonize import AdaptedClassifier, ComBat, with_adaptation
from graphbrain.training.metrics import METRICS, binary_metrics, summarize
from graphbrain.training.search import SearchClassifier, fold_classifier
from graphbrain.training.splits import (
    Fold,
    inner_split,
    leave_site_out,
    make_folds,
    stratified_kfold,
)

__all__ = [
    "METRICS",
    "AdaptedClassifier",
    "CohortClassifier",
    "ComBat",
    "EnsembleClassifier",
    "SearchClassifier",
    "Fold",
    "SklearnClassifier",
    "binary_metrics",
    "build_classifier",
    "fold_classifier",
    "inner_split",
    "leave_site_out",
    "load_classifier",
    "make_folds",
    "stratified_kfold",
    "summarize",
    "with_adaptation",
]
