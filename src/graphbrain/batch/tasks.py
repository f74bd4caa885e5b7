"""Subject tasks: what a batch run plans up front and what a worker loads, one at a time.

Planning reads only the index of a cohort (the phenotypic / labels table and the file
listing), never the time series, so the driver's memory does not grow with the cohort.
Each :class:`SubjectTask` is a small picklable record that a worker (this process, a
process pool or a Dask worker) turns into a :class:`~graphbrain.data.Subject` with
:func:`load_subject`.

Streaming sources (one file read per task): ``precomputed``, ``abide_pcp``, ``nifti``.
Other sources (``synthetic``, ``bids``) and in-memory cohorts are read by their reader
in the driver and their subjects are carried by the tasks ("inline" tasks): fine for
tests and small cohorts, not for consortium scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.errors import ConfigError, DataError

STREAMING_SOURCES = ("precomputed", "abide_pcp", "nifti")

#: Phenotypic / labels-table columns read as a subject's mean framewise displacement (mm).
MOTION_COLUMNS = ("func_mean_fd", "mean_fd", "meanFD", "fd_mean", "framewise_displacement_mean")


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
        return _inline(cohort)
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
    if source == "precomputed":
        return _plan_precomputed(params)
    if source == "abide_pcp":
        return _plan_abide(params)
    if source == "nifti":
        return _plan_nifti(params)
    from graphbrain.data.loaders import load_cohort

    # Not streamable yet: read the cohort with its reader, keep only the time series.
    params.update(on_invalid="exclude", constant_roi="keep")
    return _inline(load_cohort(source, **params))


def _inline(cohort: Cohort) -> Plan:
    tasks = [SubjectTask(s.id, "inline", {"subject": s}, i) for i, s in enumerate(cohort.subjects)]
    return Plan(tasks, list(cohort.excluded), cohort.name, dict(cohort.meta))


def _validation_policy(params: dict[str, Any]) -> None:
    for key in ("on_invalid", "constant_roi", "min_timepoints", "n_rois"):
        params.pop(key, None)  # batch applies its own QC thresholds (see graphbrain.batch.qc)


# -- precomputed --------------------------------------------------------------------------
def _plan_precomputed(params: dict[str, Any]) -> Plan:
    from graphbrain.data.precomputed import _read_table, _subject_files

    _validation_policy(params)
    path_or_files = params.pop("path_or_files")
    labels_table = params.pop("labels_table", None)
    id_column = params.get("id_column", "subject_id")
    skip = Path(labels_table) if isinstance(labels_table, (str, Path)) else None
    files = _subject_files(path_or_files, skip)
    table = None
    table_src = None
    if labels_table is not None:
        table, table_src = _read_table(labels_table, id_column)
    tasks: list[SubjectTask] = []
    for i, (sid, path) in enumerate(files.items()):
        row = None
        if table is not None and sid in table.index:
            row = {k: _plain(v) for k, v in table.loc[sid].items()}
        columns = None if table is None else list(table.columns)
        payload = {
            "path": str(path),
            "meta": _precomputed_meta(sid, row, table is not None, params, columns),
            "params": {"kind": params.get("kind") or "timeseries", "roi_names": params.get("roi_names"),
                       "tr": params.get("tr")},
        }
        tasks.append(SubjectTask(sid, "precomputed", payload, i))
    unmatched = []
    if table is not None:
        for sid in table.index:
            if sid not in files:
                unmatched.append(
                    Exclusion(sid, table_src, "missing_file", f"subject {sid!r} is in the labels table but has no matrix file")
                )
    return Plan(tasks, unmatched, "precomputed", {"kind": params.get("kind", "timeseries")})


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _precomputed_meta(sid: str, row: dict[str, Any] | None, has_table: bool, params: dict[str, Any],
                      columns: list[str] | None) -> dict[str, Any]:
    """Label, site, participant and covariates of one labels-table row, as read_precomputed
    derives them (resolved in the driver: workers then only read the matrix file)."""
    from graphbrain.data.precomputed import _value

    meta: dict[str, Any] = {"label": None, "site": None, "participant": None, "covariates": {}, "error": None}
    if not has_table:
        return meta
    if row is None:
        meta["error"] = (f"subject {sid!r} has no row in the labels table", "missing_label")
        return meta
    label_column = params.get("label_column", "label")
    site_column = params.get("site_column", "site")
    participant_column = params.get("participant_column", "participant")
    label_map = params.get("label_map")
    if label_column is not None:
        raw = _value(row.get(label_column))
        if label_map is not None:
            keyed = {str(k): int(v) for k, v in label_map.items()}
            raw = keyed.get(str(raw)) if raw is not None else None
        if raw is None or not isinstance(raw, int):
            meta["error"] = (f"label {row.get(label_column)!r} in column {label_column!r} is missing or not an "
                             "integer (pass label_map for text labels)", "missing_label")
            return meta
        meta["label"] = raw
    if site_column is not None and site_column in row:
        v = _value(row[site_column])
        meta["site"] = None if v is None else str(v)
    if participant_column is not None and participant_column in row:
        v = _value(row[participant_column])
        meta["participant"] = None if v is None else str(v)
    skip = {params.get("id_column", "subject_id"), label_column, site_column}
    cov = params.get("covariate_columns")
    cov_cols = [c for c in (columns or []) if c not in skip] if cov is None else list(cov)
    unknown = [c for c in cov_cols if c not in (columns or [])]
    if unknown:
        raise ConfigError(f"covariate_columns {unknown} are not in the labels table")
    meta["covariates"] = {c: _value(row.get(c)) for c in cov_cols}
    return meta


def _load_precomputed(task: SubjectTask) -> Subject:
    from graphbrain.data.precomputed import read_matrix

    p = task.payload
    src = p["path"]
    m = p["meta"]
    if m["error"] is not None:
        raise DataError(m["error"][0], source=src, reason=m["error"][1])
    if not Path(src).is_file():
        raise DataError("file not found", source=src, reason="missing_file")
    kind = p["params"].get("kind", "timeseries")
    arr, names = read_matrix(src)
    if arr.ndim != 2:
        expected = "(T, R) time series" if kind == "timeseries" else "(R, R) matrix"
        raise DataError(f"expected a 2-D {expected}, got shape {arr.shape}", source=src, reason="wrong_shape")
    roi_names = p["params"].get("roi_names")
    names = list(roi_names) if roi_names is not None else names
    if names is not None and len(names) != arr.shape[1]:
        raise DataError(f"{len(names)} ROI names for {arr.shape[1]} columns", source=src, reason="roi_mismatch")
    return Subject(
        id=task.subject_id,
        timeseries=arr if kind == "timeseries" else None,
        fc=arr if kind == "fc" else None,
        label=m["label"],
        site=m["site"],
        covariates=m["covariates"],
        roi_names=names,
        tr=p["params"].get("tr") if kind == "timeseries" else None,
        source=src,
        participant=m["participant"],
    )


# -- ABIDE-PCP ----------------------------------------------------------------------------
def _plan_abide(params: dict[str, Any]) -> Plan:
    from graphbrain.data.abide import (
        PHENOTYPIC_FILE,
        _clean_value,
        _dx_to_label,
        _find_pcp_dir,
        read_abide_phenotypic,
    )

    _validation_policy(params)
    root = params.pop("root")
    atlas = params.get("atlas", "ho")
    pipeline = params.get("pipeline", "cpac")
    strategy = params.get("strategy", "filt_noglobal")
    subject_id = params.get("subject_id", "FILE_ID")
    sites = params.get("sites")
    pcp = _find_pcp_dir(Path(root))
    ts_dir = pcp / pipeline / strategy
    if not ts_dir.is_dir():
        raise DataError(
            f"no time-series folder for pipeline={pipeline!r}, strategy={strategy!r}",
            source=str(ts_dir),
            reason="missing_file",
        )
    phen = params.get("phenotypic")
    table = read_abide_phenotypic(Path(phen) if phen is not None else pcp / PHENOTYPIC_FILE)
    suffix = f"_rois_{atlas}"
    files: dict[str, Path] = {}
    for f in sorted(ts_dir.iterdir()):
        for ext in (".1D", ".1D.gz"):
            if f.name.endswith(suffix + ext):
                file_id = f.name[: -len(suffix + ext)]
                if file_id not in files or ext == ".1D":
                    files[file_id] = f
    if not files:
        raise DataError(
            f"no '*{suffix}.1D' or '*{suffix}.1D.gz' files (is atlas={atlas!r} right?)",
            source=str(ts_dir),
            reason="missing_file",
        )
    site_filter = None if sites is None else {str(s) for s in sites}
    drop = [str(r).lstrip("#") for r in params.get("drop_rois") or []]
    tasks: list[SubjectTask] = []
    unmatched: list[Exclusion] = []
    used: set[str] = set()
    for row in table.to_dict(orient="records"):
        site = _clean_value(row["SITE_ID"])
        site = None if site is None else str(site)
        if site_filter is not None and site not in site_filter:
            continue
        file_id = _clean_value(row["FILE_ID"])
        file_id = None if file_id is None or file_id == "no_filename" else str(file_id)
        sub_id = _clean_value(row["SUB_ID"])
        sid = str(file_id if subject_id == "FILE_ID" and file_id else sub_id)
        if file_id is None or file_id not in files:
            unmatched.append(
                Exclusion(sid, str(ts_dir / f"{file_id}{suffix}.1D[.gz]"), "missing_file",
                          f"phenotypic row (SUB_ID {sub_id}) has no '{suffix}' time-series file")
            )
            continue
        used.add(file_id)
        label = _dx_to_label(row["DX_GROUP"])
        if label is None:
            unmatched.append(
                Exclusion(sid, str(files[file_id]), "missing_label",
                          f"DX_GROUP is {row['DX_GROUP']!r}, expected 1 (autism) or 2 (control)")
            )
            continue
        payload = {"path": str(files[file_id]), "row": {k: _plain(v) for k, v in row.items()},
                   "label": label, "site": site, "sub_id": str(sub_id), "file_id": file_id, "drop": drop}
        tasks.append(SubjectTask(sid, "abide_pcp", payload))
    prefixes = None if site_filter is None else tuple(s.lower() for s in site_filter)
    for file_id, path in files.items():
        if file_id in used or (prefixes is not None and not file_id.lower().startswith(prefixes)):
            continue
        unmatched.append(Exclusion(file_id, str(path), "missing_label", "time-series file has no row in the phenotypic CSV (no label)"))
    tasks.sort(key=lambda t: t.subject_id)
    for i, t in enumerate(tasks):
        t.index = i
    return Plan(tasks, unmatched, "abide_pcp", {"atlas": atlas, "pipeline": pipeline, "strategy": strategy, "root": str(pcp)})


def _load_abide(task: SubjectTask) -> Subject:
    from graphbrain.data.abide import (
        ABIDE_COVARIATES,
        ABIDE_SITE_TR,
        _clean_value,
        _drop_columns,
        read_1d,
    )

    p = task.payload
    path = Path(p["path"])
    ts, names = read_1d(path)
    if p["drop"]:
        ts, names = _drop_columns(ts, names, p["drop"], path)
    row = p["row"]
    site = p["site"]
    return Subject(
        id=task.subject_id,
        timeseries=ts,
        label=p["label"],
        site=site,
        covariates={name: _clean_value(row[col]) for col, name in ABIDE_COVARIATES.items() if col in row}
        | {"sub_id": p["sub_id"], "file_id": p["file_id"]},
        roi_names=names,
        tr=ABIDE_SITE_TR.get(site.upper()) if site else None,
        source=str(path),
    )


# -- NIfTI + atlas ------------------------------------------------------------------------
def _plan_nifti(params: dict[str, Any]) -> Plan:
    from graphbrain.data.nifti import _MISSING, _expand_files, _file_ids, _per_file

    _validation_policy(params)
    files = _expand_files(params.pop("bold_files"))
    sids = params.pop("subject_ids", None)
    ids = [str(s) for s in sids] if sids is not None else _file_ids(files)
    if len(ids) != len(files):
        raise ConfigError(f"subject_ids has {len(ids)} entries for {len(files)} BOLD files")
    labels = _per_file(params.pop("labels", None), ids, "labels")
    sites = _per_file(params.pop("sites", None), ids, "sites")
    confounds = _per_file(params.pop("confounds", None), ids, "confounds")
    params.pop("name", None)
    tasks = []
    for i, (sid, path, y, s, c) in enumerate(zip(ids, files, labels, sites, confounds, strict=True)):
        payload = {
            "path": str(path),
            "label": None if y is _MISSING else y,
            "label_missing": y is _MISSING,
            "site": None if s is _MISSING else s,
            "confounds": None if c is _MISSING else (str(c) if isinstance(c, (str, Path)) else c),
            "params": params,
        }
        tasks.append(SubjectTask(sid, "nifti", payload, i))
    return Plan(tasks, [], "nifti", {"atlas": str(params.get("atlas"))})


def _load_nifti(task: SubjectTask) -> Subject:
    from graphbrain.data.nifti import read_nifti

    p = task.payload
    if p["label_missing"]:
        raise DataError("no label for this subject in the labels mapping", source=p["path"], reason="missing_label")
    cohort = read_nifti(
        [p["path"]],
        subject_ids=[task.subject_id],
        labels=[p["label"]],
        sites=[p["site"]],
        confounds=[p["confounds"]],
        on_invalid="raise",
        constant_roi="keep",
        **p["params"],
    )
    return cohort.subjects[0]


def load_subject(task: SubjectTask) -> Subject:
    """Read one task's subject (raises :class:`DataError` for unreadable input)."""
    if task.source == "inline":
        return task.payload["subject"]
    if task.source == "precomputed":
        return _load_precomputed(task)
    if task.source == "abide_pcp":
        return _load_abide(task)
    if task.source == "nifti":
        return _load_nifti(task)
    raise ConfigError(f"unknown task source {task.source!r}")


def confounds_of(task: SubjectTask) -> Any:
    """The confounds table / path of a task, when its source has one (for motion QC)."""
    return task.payload.get("confounds") if task.source == "nifti" else None
