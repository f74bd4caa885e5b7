"""Data room: Subject/Cohort records, readers, validation and synthetic cohorts."""

from graphbrain.data.abide import (
    ABIDE_SITE_TR,
    AbideScan,
    index_abide_pcp,
    read_1d,
    read_abide_pcp,
    read_abide_scan,
)
from graphbrain.data.bids import (
    BidsIndex,
    discover_fmriprep,
    index_bids,
    parse_bids_name,
    read_bids,
    read_bids_subject,
)
from graphbrain.data.loaders import load_cohort
from graphbrain.data.nifti import (
    Atlas,
    NiftiScan,
    extract_timeseries,
    index_nifti,
    load_atlas,
    read_nifti,
    read_nifti_subject,
    read_tr,
    select_confounds,
)
from graphbrain.data.precomputed import (
    PrecomputedIndex,
    index_precomputed,
    read_matrix,
    read_precomputed,
    read_precomputed_subject,
)
from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.synthetic import make_synthetic_cohort, synthetic_design, synthetic_subject
from graphbrain.data.validation import check_subject, constant_rois, validate_cohort

__all__ = [
    "ABIDE_SITE_TR",
    "AbideScan",
    "Atlas",
    "BidsIndex",
    "Cohort",
    "PrecomputedIndex",
    "Exclusion",
    "NiftiScan",
    "Subject",
    "check_subject",
    "constant_rois",
    "discover_fmriprep",
    "extract_timeseries",
    "index_abide_pcp",
    "index_bids",
    "index_nifti",
    "index_precomputed",
    "load_atlas",
    "load_cohort",
    "make_synthetic_cohort",
    "parse_bids_name",
    "read_1d",
    "read_abide_pcp",
    "read_abide_scan",
    "read_bids",
    "read_bids_subject",
    "read_matrix",
    "read_nifti",
    "read_nifti_subject",
    "read_precomputed",
    "read_precomputed_subject",
    "read_tr",
    "select_confounds",
    "synthetic_design",
    "synthetic_subject",
    "validate_cohort",
]
