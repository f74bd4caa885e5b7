"""Explanations: attributions per subject and per cohort, faithfulness, figures, reports.

Sits between ``training`` and ``pipeline``: reads fitted classifiers and results, never
the other way round.
"""
