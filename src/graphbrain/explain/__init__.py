"""Explanations: per-subject attributions, cohort statistics, faithfulness, figures, report.

    from graphbrain.explain import explain, explain_run
    e = explain(result, cohort, method="integrated_gradients")   # rows = result.predictions
    e.roi, e.edge, e.window                                      # (N, R), (N, R(R-1)/2), (N, W)
    report = explain_run(result, cohort, atlas={"image": "atlas.nii.gz", "labels": "labels.csv"})
"""

from graphbrain.explain.aggregate import (
    class_difference,
    class_means,
    fdr_bh,
    fold_stability,
    precision_at_k,
    top_units,
)
from graphbrain.explain.atlas import Atlas, load_atlas
from graphbrain.explain.attribution import (
    METHODS,
    Explanation,
    available_methods,
    explain,
    fold_models,
)
from graphbrain.explain.faithfulness import Faithfulness, faithfulness
from graphbrain.explain.report import ExplainReport, explain_run

__all__ = [
    "METHODS",
    "Atlas",
    "ExplainReport",
    "Explanation",
    "Faithfulness",
    "available_methods",
    "class_difference",
    "class_means",
    "explain",
    "explain_run",
    "faithfulness",
    "fdr_bh",
    "fold_models",
    "fold_stability",
    "load_atlas",
    "precision_at_k",
    "top_units",
]
