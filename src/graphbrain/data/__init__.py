"""Data room: Subject/Cohort records, readers, validation and synthetic cohorts."""

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.synthetic import make_synthetic_cohort
from graphbrain.data.validation import check_subject, constant_rois, validate_cohort

__all__ = [
    "Cohort",
    "Exclusion",
    "Subject",
    "check_subject",
    "constant_rois",
    "make_synthetic_cohort",
    "validate_cohort",
]
