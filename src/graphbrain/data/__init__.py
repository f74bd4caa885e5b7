"""Data room: Subject/Cohort records, readers, validation and synthetic cohorts."""

from graphbrain.data.abide import ABIDE_SITE_TR, read_1d, read_abide_pcp
from graphbrain.data.bids import discover_fmriprep, parse_bids_name, read_bids
from graphbrain.data.loaders import load_cohort
from graphbrain.data.nifti import (
    Atlas,
    extract_timeseries,
    load_atlas,
    read_nifti,
    read_tr,
    select_confounds,
)
from graphbrain.data.precomputed import read_matrix, read_precomputed
from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.synthetic import make_synthetic_cohort
from graphbrain.data.validation import check_subject, constant_rois, validate_cohort

__all__ = [
    "ABIDE_SITE_TR",
    "Atlas",
    "Cohort",
    "Exclusion",
    "Subject",
    "check_subject",
    "constant_rois",
    "discover_fmriprep",
    "extract_timeseries",
    "load_atlas",
    "load_cohort",
    "make_synthetic_cohort",
    "parse_bids_name",
    "read_1d",
    "read_abide_pcp",
    "read_bids",
    "read_matrix",
    "read_nifti",
    "read_precomputed",
    "read_tr",
    "select_confounds",
    "validate_cohort",
]
