"""Reader for fMRIPrep derivatives in a BIDS tree.

Discovery is a small glob + filename parser rather than pybids: pybids is a heavy
dependency (SQLAlchemy, a database index built on every call) and the fMRIPrep output
layout we need is fixed and simple::

    <deriv>/sub-<label>/[ses-<label>/]func/
        sub-<label>[_ses-<label>]_task-<label>[_acq-..][_run-<n>][_space-<label>][_res-..]
            _desc-preproc_bold.nii.gz
        sub-<label>[_ses-<label>]_task-<label>[_acq-..][_run-<n>]_desc-confounds_timeseries.tsv
            (fMRIPrep < 20.2: ..._desc-confounds_regressors.tsv)
        ..._desc-preproc_bold.json   (sidecar with RepetitionTime)
    participants.tsv   at the dataset root or the derivatives root

``<deriv>`` is ``root`` itself when it holds ``sub-*`` folders with preprocessed BOLD,
else ``root/derivatives/fmriprep`` or another ``root/derivatives/*`` folder.

A file name is split at ``_`` into ``key-value`` entities and a final suffix; the
confounds file of a BOLD run is the one with the same entities except ``space``,
``res``, ``den``, ``cohort`` and ``desc``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pandas as pd

from graphbrain.data.nifti import (
    Atlas,
    AtlasKind,
    ConfoundStrategy,
    _extract,
    load_atlas,
)
from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.validation import ConstantPolicy, OnInvalid, validate_cohort
from graphbrain.errors import ConfigError, DataError

_SPATIAL_ENTITIES = {"space", "res", "den", "cohort", "desc"}
_CONFOUND_SUFFIXES = ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv")


@dataclass
class BidsRun:
    """One preprocessed BOLD run found in an fMRIPrep derivatives folder.

    Attributes:
        subject: participant label without ``sub-``.
        entities: every ``key-value`` entity of the file name, in order.
        bold: path of the ``*_desc-preproc_bold.nii[.gz]`` image.
        confounds: the matching confounds TSV, or ``None`` if there is none.
        sidecar: the BOLD JSON sidecar, or ``None``.
    """

    subject: str
    entities: dict[str, str]
    bold: Path
    confounds: Path | None
    sidecar: Path | None = None

    @property
    def scan_id(self) -> str:
        """``sub-X[_ses-Y]_task-Z[_run-N]``: the entities that name the acquisition."""
        keep = [f"{k}-{v}" for k, v in self.entities.items() if k not in _SPATIAL_ENTITIES]
        return "_".join(keep)


def parse_bids_name(name: str) -> tuple[dict[str, str], str, str]:
    """Split a BIDS file name into ``(entities, suffix, extension)``.

    ``"sub-01_task-rest_desc-preproc_bold.nii.gz"`` ->
    ``({"sub": "01", "task": "rest", "desc": "preproc"}, "bold", ".nii.gz")``.
    Raises ``ValueError`` for names that are not ``key-value_..._suffix.ext``.
    """
    stem, dot, ext = name.partition(".")
    parts = stem.split("_")
    if len(parts) < 2:
        raise ValueError(f"not a BIDS file name: {name!r}")
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        key, dash, value = part.partition("-")
        if not dash or not key or not value:
            raise ValueError(f"not a BIDS entity {part!r} in {name!r}")
        entities[key] = value
    return entities, parts[-1], dot + ext


def _bold_files(folder: Path) -> list[Path]:
    pats = ("sub-*/func/*_bold.nii*", "sub-*/ses-*/func/*_bold.nii*")
    return sorted({p for pat in pats for p in folder.glob(pat)})


def find_derivatives(root: str | Path) -> Path:
    """The folder holding ``sub-*/[ses-*/]func/*_bold.nii*`` under ``root``.

    Tries ``root``, then ``root/derivatives/fmriprep``, then every other
    ``root/derivatives/*`` folder; raises :class:`DataError` if none has BOLD images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("BIDS root folder does not exist", source=str(root), reason="missing_file")
    candidates = [root, root / "derivatives" / "fmriprep"]
    if (root / "derivatives").is_dir():
        candidates += sorted(p for p in (root / "derivatives").iterdir() if p.is_dir())
    for cand in candidates:
        if cand.is_dir() and _bold_files(cand):
            return cand
    raise DataError(
        "no sub-*/[ses-*/]func/*_bold.nii[.gz] under the root or root/derivatives/*",
        source=str(root),
        reason="missing_file",
    )


def discover_fmriprep(
    root: str | Path,
    task: str | None = None,
    space: str | None = None,
    desc: str = "preproc",
) -> list[BidsRun]:
    """List the preprocessed BOLD runs (and their confounds) of an fMRIPrep output.

    Args:
        root: dataset root or derivatives folder (see :func:`find_derivatives`).
        task: keep only this ``task-`` label (default: all).
        space: keep only this ``space-`` label (default: all; a run present in several
            spaces then appears once per space, so pass ``space`` for real fMRIPrep output).
        desc: the ``desc-`` label of the BOLD images (``"preproc"``).

    Returns:
        Runs sorted by file path.
    """
    deriv = find_derivatives(root)
    runs: list[BidsRun] = []
    for bold in _bold_files(deriv):
        try:
            ents, suffix, ext = parse_bids_name(bold.name)
        except ValueError:
            continue
        if suffix != "bold" or ext not in (".nii", ".nii.gz") or ents.get("desc") != desc:
            continue
        if "sub" not in ents or (task is not None and ents.get("task") != task):
            continue
        if space is not None and ents.get("space") != space:
            continue
        run = BidsRun(subject=ents["sub"], entities=ents, bold=bold, confounds=None)
        for suff in _CONFOUND_SUFFIXES:
            cand = bold.parent / (run.scan_id + suff)
            if cand.is_file():
                run.confounds = cand
                break
        sidecar = bold.parent / (bold.name[: -len(ext)] + ".json")
        run.sidecar = sidecar if sidecar.is_file() else None
        runs.append(run)
    return runs


def _find_participants(root: Path, deriv: Path) -> Path | None:
    for cand in (
        root / "participants.tsv",
        deriv / "participants.tsv",
        deriv.parent.parent / "participants.tsv",
    ):
        if cand.is_file():
            return cand
    return None


def _cell(value: Any) -> Any:
    """participants.tsv cell -> int / float / str, ``None`` for ``n/a`` or empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text in ("", "n/a", "NA", "nan"):
        return None
    try:
        num = float(text)
    except ValueError:
        return text
    return int(num) if num.is_integer() else num


def read_participants(path: str | Path) -> pd.DataFrame:
    """Read ``participants.tsv`` as strings, indexed by label without the ``sub-`` prefix."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        raise DataError(
            f"cannot parse participants table ({err})", source=str(path), reason="unreadable"
        ) from err
    if "participant_id" not in table.columns:
        raise DataError(
            f"participants table has no 'participant_id' column (columns: {list(table.columns)})",
            source=str(path),
            reason="missing_column",
        )
    table.index = [str(p).strip().removeprefix("sub-") for p in table["participant_id"]]
    return table


def _read_tr(sidecar: Path | None) -> float | None:
    if sidecar is None:
        return None
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as err:
        raise DataError(
            f"cannot parse JSON sidecar ({err})", source=str(sidecar), reason="unreadable"
        ) from err
    tr = meta.get("RepetitionTime")
    return float(tr) if isinstance(tr, (int, float)) and tr > 0 else None


def _label_of(value: Any, label_map: Mapping[Any, int] | None, column: str, src: str) -> int:
    raw = _cell(value)
    if raw is None:
        raise DataError(
            f"'{column}' is empty (n/a) in participants.tsv", source=src, reason="missing_label"
        )
    if label_map is not None:
        keyed = {str(k): int(v) for k, v in label_map.items()}
        if str(raw) not in keyed:
            raise DataError(
                f"'{column}' value {raw!r} is not in label_map {sorted(keyed)}",
                source=src,
                reason="missing_label",
            )
        return keyed[str(raw)]
    if isinstance(raw, int):
        return raw
    raise DataError(
        f"'{column}' value {raw!r} is not an integer label; pass label_map (e.g. {{'ASD': 1, 'TD': 0}})",
        source=src,
        reason="missing_label",
    )


@dataclass
class BidsIndex:
    """The runs of an fMRIPrep derivatives folder grouped per subject, and the participants
    table, without reading any image (see :func:`index_bids`)."""

    deriv: Path
    groups: dict[str, list[BidsRun]]
    table: pd.DataFrame | None
    participants_path: Path | None
    runs: list[BidsRun]
    task: str | None = None
    space: str | None = None
    label_column: str | None = "diagnosis"

    def row(self, participant: str) -> dict[str, Any] | None:
        """The participants.tsv row of a participant label (without ``sub-``) as a dict."""
        if self.table is None or participant not in self.table.index:
            return None
        row = self.table.loc[participant]
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        return dict(row.items())

    def unmatched(self) -> list[tuple[DataError, str]]:
        """``(error, subject_id)`` for participants listed without any matching BOLD run."""
        if self.table is None or self.label_column is None:
            return []
        found = {r.subject for r in self.runs}
        return [
            (
                DataError(
                    f"participant sub-{pid} is listed in participants.tsv but has no "
                    f"preprocessed BOLD run (task={self.task!r}, space={self.space!r})",
                    source=str(self.participants_path),
                    reason="missing_file",
                ),
                f"sub-{pid}",
            )
            for pid in self.table.index
            if pid not in found
        ]


def index_bids(
    root: str | Path,
    *,
    task: str | None = None,
    space: str | None = None,
    participants: str | Path | None = None,
    label_column: str | None = "diagnosis",
    multiple_runs: Literal["first", "separate", "concatenate"] = "first",
) -> BidsIndex:
    """Discover the runs and read ``participants.tsv`` (arguments as :func:`read_bids`),
    reading no image: what a batch driver plans with. ``groups`` maps each subject id
    (``sub-X``, or the scan id with ``multiple_runs="separate"``) to its runs.

    Raises:
        DataError: no BOLD run, missing participants table or label column.
    """
    root = Path(root)
    deriv = find_derivatives(root)
    runs = discover_fmriprep(deriv, task=task, space=space)
    if not runs:
        raise DataError(
            f"no *_desc-preproc_bold.nii[.gz] matching task={task!r}, space={space!r}",
            source=str(deriv),
            reason="missing_file",
        )
    ppath = Path(participants) if participants is not None else _find_participants(root, deriv)
    table: pd.DataFrame | None = None
    if ppath is not None:
        if not ppath.is_file():
            raise DataError(
                "participants table not found", source=str(ppath), reason="missing_file"
            )
        table = read_participants(ppath)
    if label_column is not None:
        if table is None:
            raise DataError(
                f"labels come from participants.tsv column {label_column!r}, but no participants.tsv "
                "was found; pass participants=... or label_column=None",
                source=str(root),
                reason="missing_file",
            )
        if label_column not in table.columns:
            raise DataError(
                f"participants table has no column {label_column!r} (columns: {list(table.columns)})",
                source=str(ppath),
                reason="missing_column",
            )
    groups: dict[str, list[BidsRun]] = {}
    for run in runs:
        key = run.subject if multiple_runs != "separate" else run.scan_id
        groups.setdefault(key, []).append(run)
    named = {}
    for key, group in groups.items():
        if multiple_runs == "first":
            group = group[:1]
        named[f"sub-{key}" if multiple_runs != "separate" else key] = group
    return BidsIndex(deriv, named, table, ppath, runs, task, space, label_column)


def read_bids_subject(
    subject_id: str,
    runs: Sequence[BidsRun],
    atlas: Atlas,
    *,
    participant_row: Mapping[str, Any] | None = None,
    has_table: bool = False,
    label_column: str | None = "diagnosis",
    label_map: Mapping[Any, int] | None = None,
    site_column: str | None = "site",
    confound_strategy: ConfoundStrategy = "motion+wm_csf",
    t_r: float | None = None,
    **clean: Any,
) -> Subject:
    """Extract one subject's ROI time series from its runs (several are cleaned one by one
    and stacked in time): the per-subject step of :func:`read_bids`, not yet validated.

    ``participant_row`` is the subject's participants.tsv row (``None`` when it has none;
    ``has_table`` says whether the cohort has a participants table at all); ``clean``
    takes ``standardize``, ``detrend``, ``low_pass``, ``high_pass``, ``mask_img``,
    ``radius``, ``smoothing_fwhm``, ``allow_overlap`` as :func:`read_bids`.

    Raises:
        DataError: no row / no usable label (``missing_label``), no confounds file
            (``missing_confounds``), unreadable image ...
    """
    first = runs[0]
    src = str(first.bold)
    label = None
    site = None
    covariates: dict[str, Any] = {}
    if has_table:
        if participant_row is None:
            if label_column is not None:
                raise DataError(
                    f"participant sub-{first.subject} has no row in participants.tsv",
                    source=src,
                    reason="missing_label",
                )
        else:
            row = participant_row
            if label_column is not None:
                label = _label_of(row[label_column], label_map, label_column, src)
            if site_column is not None and site_column in row:
                site_val = _cell(row[site_column])
                site = None if site_val is None else str(site_val)
            skip = {"participant_id", label_column, site_column}
            covariates = {c: _cell(row[c]) for c in row if c not in skip}
    parts = []
    tr_used = None
    for run in runs:
        if confound_strategy is not None and not isinstance(confound_strategy, Mapping):
            if run.confounds is None:
                raise DataError(
                    f"no confounds file ({run.scan_id}{_CONFOUND_SUFFIXES[0]}) next to the "
                    f"BOLD image, but confound_strategy={confound_strategy!r}",
                    source=str(run.bold),
                    reason="missing_confounds",
                )
        tr = t_r if t_r is not None else _read_tr(run.sidecar)
        ts, tr_used = _extract(
            run.bold,
            atlas,
            confounds=run.confounds if confound_strategy is not None else None,
            confound_strategy=confound_strategy,
            t_r=tr,
            **clean,
        )
        parts.append(ts)
    covariates["participant_id"] = f"sub-{first.subject}"
    covariates["n_runs"] = len(parts)
    return Subject(
        id=subject_id,
        timeseries=np.concatenate(parts, axis=0),
        label=label,
        site=site,
        covariates=covariates,
        roi_names=list(atlas.roi_names),
        tr=tr_used,
        source=src,
        participant=f"sub-{first.subject}",
    )


def read_bids(
    root: str | Path,
    atlas: Atlas | str | Path | nib.Nifti1Image | np.ndarray,
    *,
    task: str | None = None,
    space: str | None = None,
    atlas_kind: AtlasKind = "auto",
    roi_names: Sequence[str] | None = None,
    participants: str | Path | None = None,
    label_column: str | None = "diagnosis",
    label_map: Mapping[Any, int] | None = None,
    site_column: str | None = "site",
    confound_strategy: ConfoundStrategy = "motion+wm_csf",
    multiple_runs: Literal["first", "separate", "concatenate"] = "first",
    standardize: bool | str | None = "zscore_sample",
    detrend: bool = True,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    mask_img: Any = None,
    radius: float | None = None,
    smoothing_fwhm: float | None = None,
    allow_overlap: bool = False,
    on_invalid: OnInvalid = "exclude",
    constant_roi: ConstantPolicy = "exclude",
    min_timepoints: int = 2,
    n_rois: int | None = None,
) -> Cohort:
    """Read fMRIPrep derivatives + ``participants.tsv`` into a validated :class:`Cohort`.

    Args:
        root: dataset root (with ``derivatives/fmriprep``) or the derivatives folder.
        atlas, atlas_kind, roi_names: the parcellation; see :func:`~graphbrain.data.nifti.load_atlas`.
        task, space: keep only runs with these ``task-`` / ``space-`` labels.
        participants: path of ``participants.tsv`` (default: found at the root, the
            derivatives folder, or two levels above it).
        label_column: participants column with the class; ``None`` for an unlabelled cohort.
        label_map: maps column values to labels (e.g. ``{"ASD": 1, "TD": 0}``); without
            it the column must hold integers.
        site_column: participants column with the site (used when present).
        confound_strategy: see :func:`~graphbrain.data.nifti.select_confounds`; ``None``
            regresses nothing. A run without a confounds file is excluded
            (``"missing_confounds"``) unless the strategy is ``None``.
        multiple_runs: when a participant has several matching runs: ``"first"`` keeps the
            first (sorted by path), ``"separate"`` makes one subject per run (id
            ``sub-X_ses-Y_task-Z_run-N``; beware of the same person in train and test),
            ``"concatenate"`` cleans each run then stacks them in time.
        standardize, detrend, low_pass, high_pass, t_r, mask_img, radius, smoothing_fwhm,
            allow_overlap: see :func:`~graphbrain.data.nifti.read_nifti`; ``t_r`` defaults
            to the sidecar's ``RepetitionTime``, then the NIfTI header.
        on_invalid, constant_roi, min_timepoints, n_rois: validation policies.

    Returns:
        Subjects with ``(T, R)`` float32 time series, ``label``/``site`` from
        participants.tsv, the other participants columns as covariates. Participants
        without any BOLD run are excluded with reason ``"missing_file"``.
    """
    if on_invalid not in ("raise", "exclude"):
        raise ConfigError(f"on_invalid must be 'raise' or 'exclude', got {on_invalid!r}")
    if multiple_runs not in ("first", "separate", "concatenate"):
        raise ConfigError(
            f"multiple_runs must be 'first', 'separate' or 'concatenate', got {multiple_runs!r}"
        )
    root = Path(root)
    at = load_atlas(atlas, atlas_kind, roi_names)
    index = index_bids(
        root, task=task, space=space, participants=participants, label_column=label_column,
        multiple_runs=multiple_runs,
    )
    subjects: list[Subject] = []
    excluded: list[Exclusion] = []
    clean = {
        "standardize": standardize,
        "detrend": detrend,
        "low_pass": low_pass,
        "high_pass": high_pass,
        "mask_img": mask_img,
        "radius": radius,
        "smoothing_fwhm": smoothing_fwhm,
        "allow_overlap": allow_overlap,
    }
    for sid, group in index.groups.items():
        try:
            subjects.append(
                read_bids_subject(
                    sid,
                    group,
                    at,
                    participant_row=index.row(group[0].subject),
                    has_table=index.table is not None,
                    label_column=label_column,
                    label_map=label_map,
                    site_column=site_column,
                    confound_strategy=confound_strategy,
                    t_r=t_r,
                    **clean,
                )
            )
        except DataError as err:
            if on_invalid == "raise":
                raise
            excluded.append(Exclusion(sid, err.source or str(group[0].bold), err.reason, str(err)))

    for err, sid in index.unmatched():
        if on_invalid == "raise":
            raise err
        excluded.append(Exclusion(sid, err.source, err.reason, str(err)))

    deriv = index.deriv
    return validate_cohort(
        subjects,
        name="bids",
        on_invalid=on_invalid,
        constant_roi=constant_roi,
        min_timepoints=min_timepoints,
        n_rois=n_rois if n_rois is not None else at.n_rois,
        excluded=excluded,
        roi_names=list(at.roi_names),
        meta={"root": str(deriv), "atlas": at.source, "task": task, "space": space},
    )
