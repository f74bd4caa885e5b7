"""Linear baselines on vectorised static FC (scikit-learn).

``logreg``: L2 logistic regression,  p(y=1 | x) = sigmoid(w . x + b),
``svm``: linear SVM,                 score(x) = w . x + b  (hinge loss),
where ``x`` is the upper triangle of the ``(R, R)`` connectome (``R(R-1)/2`` values),
standardised with statistics of the training fold only.
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from graphbrain.models.registry import register_model


@register_model("logreg", kind="sklearn", input="static_fc", description="L2 logistic regression on vectorised FC")
def build_logreg(C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 2000) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter)


@register_model("svm", kind="sklearn", input="static_fc", description="Linear SVM on vectorised FC")
def build_svm(C: float = 0.01, class_weight: str | None = "balanced", max_iter: int = 10000) -> LinearSVC:
    return LinearSVC(C=C, class_weight=class_weight, max_iter=max_iter)
