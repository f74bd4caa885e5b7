"""Subject tasks: what a batch run plans up front and what a worker loads, one at a time.

Planning reads only the index of a cohort (the phenotypic / labels / participants table
and the file listing), never a time series, so the driver's memory does not grow with
the cohort. Each :class:`SubjectTask` is a small picklable record that a worker (this
process, a process pool or a Dask worker) turns into a :class:`~graphbrain.data.Subject`
with :func:`load_subject`, through the data room's public per-subject readers (the same
code :func:`~graphbrain.data.load_cohort` runs for each subject):

==============  =============================  =====================================
source          driver (index)                 worker (one subject)
==============  =============================  =====================================
precomputed     ``index_precomputed``          ``read_precomputed_subject``
abide_pcp       ``index_abide_pcp``            ``read_abide_scan``
nifti           ``index_nifti``                ``read_nifti_subject``
bids            ``index_bids``                 ``read_bids_subject``
synthetic       ``synthetic_design``           ``synthetic_subject``
==============  =============================  =====================================

Every source streams. ``synthetic`` draws each subject from its own random stream (see
:func:`~graphbrain.data.synthetic_subject`): same design and planted truth as
``load_cohort("synthetic")``, other noise draws. An in-memory :class:`Cohort` passed to
``process_cohort(cohort=...)`` is already in memory: its subjects travel inside the tasks
("inline").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.errors import ConfigError, DataError

STREAMING_SOURCES = ("precomputed", "abide_pcp", "nifti", "bids", "synthetic")

#: Phenotypic / labels-table columns read as a subject's mean framewise displacement (mm).
MOTION_COLUMNS = ("func_mean_fd", "mean_fd", "meanFD", "fd_mean", "framewise_displacement_mean")

#: Reader options about validation: batch applies its own QC (see graphbrain.batch.qc).
_VALIDATION = ("on_invalid", "constant_roi", "min_timepoints", "n_rois")
#: Options of the NIfTI / BIDS extraction (nilearn maskers) passed to the per-subject readers.
_CLEAN = ("standardize", "detrend", "low_pass", "high_pass", "mask_img", "radius", "smoothing_fwhm",
          "allow_overlap")


@dataclass
class SubjectTask:
    """One subject to process: its id, the source kind and what the worker needs to load it."""

    subject_id: str
    source: str
    payload: dict[str, Any] = field(default_factory=dict)
    index: int = 0


@dataclass
class Plan:
    """The tasks of a cohort plus the entries that cannot become tasks (no file, no label)."""

    tasks: list[SubjectTask]
    unmatched: list[Exclusion]
    name: str
    meta: dict[str, Any] = field(default_factory=dict)


def plan_tasks(data: Mapping[str, Any] | None = None, *, cohort: Cohort | None = None) -> Plan:
    """Plan the tasks of the cohort described by a ``data`` config (or given in memory).

    Raises:
        ConfigError: missing ``source``, unknown source or unknown parameter.
        DataError: the cohort's index cannot be read (missing folder, bad labels table).
    """
    if cohort is not None:
        tasks = [SubjectTask(s.id, "inline", {"subject": s}, i) for i, s in enumerate(cohort.subjects)]
        return Plan(tasks, list(cohort.excluded), cohort.name, dict(cohort.meta))
    if data is None:
        raise ConfigError("batch processing needs a data configuration or a cohort")
    params = dict(data)
    source = params.pop("source", None)
    if source is None:
        raise ConfigError("the data configuration needs a 'source' (synthetic, abide_pcp, nifti, bids, precomputed)")
    from graphbrain.data.loaders import valid_params

    unknown = sorted(set(params) - set(valid_params(source)))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for data source {source!r}; valid: {valid_params(source)}")
    for key in _VALIDATION:
        if source != "synthetic" or key != "n_rois":
            params.pop(key, None)
    planner = {"precomputed": _plan_precomputed, "abide_pcp": _plan_abide, "nifti": _plan_nifti,
               "bids": _plan_bids, "synthetic": _plan_synthetic}[source]
    return planner(params)


def _excluded(errors: list[tuple[DataError, str]]) -> list[Exclusion]:
    return [Exclusion(sid, err.source, err.reason, str(err)) for err, sid in errors]


def _required(params: dict[str, Any], key: str, source: str) -> Any:
    if params.get(key) is None:
        raise ConfigError(f"data source {source!r} needs parameter(s) ['{key}'] (data.{key}=...)")
    return params.pop(key)


# -- precomputed --------------------------------------------------------------------------
def _plan_precomputed(params: dict[str, Any]) -> Plan:
    from graphbrain.data.precomputed import index_precomputed

    path_or_files = _required(params, "path_or_files", "precomputed")
    columns = {k: params[k] for k in ("id_column", "label_column", "site_column", "participant_column",
                                      "covariate_columns") if k in params}
    index = index_precomputed(path_or_files, params.pop("labels_table", None), **columns)
    kind = params.get("kind") or "timeseries"
    read = {k: params[k] for k in ("label_column", "site_column", "participant_column", "label_map",
                                   "roi_names", "tr") if k in params}
    read.update(kind=kind, table_src=index.table_src, covariate_columns=index.covariate_columns)
    tasks = [SubjectTask(sid, "precomputed", {"path": str(path), "row": index.row(sid), "read": read}, i)
             for i, (sid, path) in enumerate(index.files.items())]
    return Plan(tasks, _excluded(index.unmatched()), "precomputed", {"kind": kind})


# -- ABIDE-PCP ----------------------------------------------------------------------------
def _plan_abide(params: dict[str, Any]) -> Plan:
    from graphbrain.data.abide import index_abide_pcp

    root = _required(params, "root", "abide_pcp")
    drop = [str(r).lstrip("#") for r in params.pop("drop_rois", None) or []]
    scans, pcp = index_abide_pcp(root, **params)
    tasks = sorted((SubjectTask(s.subject_id, "abide_pcp", {"path": str(s.path), "scan": s, "drop": drop})
                    for s in scans if s.error is None), key=lambda t: t.subject_id)
    for i, t in enumerate(tasks):
        t.index = i
    unmatched = _excluded([(s.error, s.subject_id) for s in scans if s.error is not None])
    meta = {"atlas": params.get("atlas", "ho"), "pipeline": params.get("pipeline", "cpac"),
            "strategy": params.get("strategy", "filt_noglobal"), "root": str(pcp)}
    return Plan(tasks, unmatched, "abide_pcp", meta)


# -- NIfTI + atlas ------------------------------------------------------------------------
def _atlas_spec(params: dict[str, Any], source: str) -> dict[str, Any]:
    return {"atlas": _required(params, "atlas", source), "atlas_kind": params.pop("atlas_kind", "auto"),
            "roi_names": params.pop("roi_names", None)}


def _plan_nifti(params: dict[str, Any]) -> Plan:
    from graphbrain.data.nifti import index_nifti

    bold_files = _required(params, "bold_files", "nifti")
    atlas = _atlas_spec(params, "nifti")
    per_file = {k: params.pop(k) for k in ("labels", "subject_ids", "participants", "sites", "confounds")
                if k in params}
    params.pop("name", None)
    scans = index_nifti(bold_files, **per_file)
    tasks = [SubjectTask(s.subject_id, "nifti", {"path": str(s.path), "scan": s, "atlas": atlas, "read": params,
                                                 "confounds": s.confounds}, i)
             for i, s in enumerate(scans)]
    return Plan(tasks, [], "nifti", {"atlas": str(atlas["atlas"])})


# -- BIDS / fMRIPrep ----------------------------------------------------------------------
def _plan_bids(params: dict[str, Any]) -> Plan:
    from graphbrain.data.bids import index_bids

    root = _required(params, "root", "bids")
    atlas = _atlas_spec(params, "bids")
    multiple_runs = params.pop("multiple_runs", "first")
    if multiple_runs not in ("first", "separate", "concatenate"):
        raise ConfigError(f"multiple_runs must be 'first', 'separate' or 'concatenate', got {multiple_runs!r}")
    label_column = params.get("label_column", "diagnosis")
    index = index_bids(root, task=params.pop("task", None), space=params.pop("space", None),
                       participants=params.pop("participants", None), label_column=label_column,
                       multiple_runs=multiple_runs)
    tasks = []
    for i, (sid, runs) in enumerate(index.groups.items()):
        payload = {
            "path": str(runs[0].bold), "runs": runs, "atlas": atlas, "read": params,
            "row": index.row(runs[0].subject), "has_table": index.table is not None,
            # motion QC from the confounds when the subject is one run
            "confounds": str(runs[0].confounds) if len(runs) == 1 and runs[0].confounds else None,
        }
        tasks.append(SubjectTask(sid, "bids", payload, i))
    return Plan(tasks, _excluded(index.unmatched()), "bids", {"root": str(index.deriv), "atlas": str(atlas["atlas"])})


# -- synthetic ----------------------------------------------------------------------------
def _plan_synthetic(params: dict[str, Any]) -> Plan:
    from graphbrain.data.synthetic import synthetic_design

    design = synthetic_design(**params)  # validates the parameters; generates no subject
    n = int(params.get("n_subjects", 120))
    tasks = [SubjectTask(f"sub-{i:04d}", "synthetic", {"index": i, "params": params}, i) for i in range(n)]
    meta = {k: design[k] for k in ("planted_rois", "planted_window", "effect_size", "seed")}
    meta["streams"] = "per_subject"
    return Plan(tasks, [], "synthetic", meta)


# -- workers ------------------------------------------------------------------------------
_ATLASES: dict[Any, Any] = {}


def _atlas(spec: dict[str, Any]) -> Any:
    """The atlas of a task, loaded once per worker process when it is given by path."""
    from graphbrain.data.nifti import load_atlas

    a = spec["atlas"]
    if not isinstance(a, (str, Path)):
        return load_atlas(a, spec["atlas_kind"], spec["roi_names"])
    names = spec["roi_names"]
    key = (str(a), spec["atlas_kind"], None if names is None else tuple(names))
    if key not in _ATLASES:
        if len(_ATLASES) > 4:
            _ATLASES.clear()
        _ATLASES[key] = load_atlas(a, spec["atlas_kind"], names)
    return _ATLASES[key]


def load_subject(task: SubjectTask) -> Subject:
    """Read one task's subject (raises :class:`DataError` for unreadable input)."""
    p = task.payload
    if task.source == "inline":
        return p["subject"]
    if task.source == "precomputed":
        from graphbrain.data.precomputed import read_precomputed_subject

        return read_precomputed_subject(task.subject_id, p["path"], row=p["row"], **p["read"])
    if task.source == "abide_pcp":
        from graphbrain.data.abide import read_abide_scan

        return read_abide_scan(p["scan"], p["drop"])
    if task.source == "nifti":
        from graphbrain.data.nifti import read_nifti_subject

        return read_nifti_subject(p["scan"], _atlas(p["atlas"]), **p["read"])
    if task.source == "bids":
        from graphbrain.data.bids import read_bids_subject

        return read_bids_subject(task.subject_id, p["runs"], _atlas(p["atlas"]), participant_row=p["row"],
                                 has_table=p["has_table"], **p["read"])
    if task.source == "synthetic":
        from graphbrain.data.synthetic import synthetic_subject

        return synthetic_subject(p["index"], **p["params"])
    raise ConfigError(f"unknown task source {task.source!r}")


def confounds_of(task: SubjectTask) -> Any:
    """The confounds table / path of a task, when its source has one (for motion QC)."""
    return task.payload.get("confounds") if task.source in ("nifti", "bids") else None
