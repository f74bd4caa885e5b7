"""Reader for precomputed per-subject matrices: ``.npy`` or ``.csv``/``.tsv`` files.

Each file holds one subject, named by its id (``sub-01.npy``, ``50003.csv`` ...):

* ``kind="timeseries"``: a ``(T, R)`` ROI time series;
* ``kind="fc"``: an ``(R, R)`` connectivity matrix (the subject then has ``fc`` set and
  ``timeseries=None``).

Text files may carry a header row of ROI names and, for FC matrices, an index column of
ROI names too. A labels table (CSV or TSV, one row per subject) gives the label, the site
and covariates.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.validation import ConstantPolicy, OnInvalid, validate_cohort
from graphbrain.errors import ConfigError, DataError

MATRIX_SUFFIXES = (".npy", ".csv", ".tsv", ".txt")
_UNREADABLE = (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, pd.errors.ParserError)


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def read_matrix(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Read one ``.npy`` / ``.csv`` / ``.tsv`` / ``.txt`` matrix.

    Returns:
        ``(array, column_names)``: a float64 array (2-D for valid files; the caller checks
        the shape) and the header names of a text file, or ``None``.

    Raises:
        DataError: ``reason="unreadable"`` for a corrupt/truncated ``.npy``, a pickled
            object array, or text cells that are not numbers.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            return np.asarray(arr, dtype=np.float64), None
        sep = "\t" if path.suffix.lower() == ".tsv" else None
        raw = pd.read_csv(path, sep=sep, header=None, engine="python", dtype=str)
        names: list[str] | None = None
        if raw.shape[0] and not all(_is_number(v) for v in raw.iloc[0].dropna()):
            names = [str(v) for v in raw.iloc[0]]
            raw = raw.iloc[1:]
        if raw.shape[1] > 1 and not all(_is_number(v) for v in raw.iloc[:, 0].dropna()):
            raw = raw.iloc[:, 1:]  # an index column of ROI names
            names = names[1:] if names is not None else None
        arr = raw.to_numpy(dtype=np.float64)
    except _UNREADABLE as err:
        raise DataError(
            f"cannot read matrix file ({type(err).__name__}: {err})",
            source=str(path),
            reason="unreadable",
        ) from err
    return arr, names


def _subject_files(
    path_or_files: str | Path | Sequence[str | Path] | Mapping[str, str | Path],
    skip: Path | None,
) -> dict[str, Path]:
    if isinstance(path_or_files, Mapping):
        return {str(k): Path(v) for k, v in path_or_files.items()}
    if isinstance(path_or_files, (str, Path)):
        p = Path(path_or_files)
        if p.is_dir():
            files = [
                f
                for f in sorted(p.iterdir())
                if f.suffix.lower() in MATRIX_SUFFIXES
                and f.is_file()
                and (skip is None or f.resolve() != skip.resolve())
            ]
            if not files:
                raise DataError(
                    f"no {'/'.join(MATRIX_SUFFIXES)} files in folder",
                    source=str(p),
                    reason="missing_file",
                )
        else:
            files = [p]
    else:
        files = [Path(f) for f in path_or_files]
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise ConfigError(f"two files give subject id {f.stem!r}: {out[f.stem]} and {f}")
        out[f.stem] = f
    return out


def _read_table(
    labels_table: str | Path | pd.DataFrame, id_column: str
) -> tuple[pd.DataFrame, str]:
    if isinstance(labels_table, pd.DataFrame):
        table, src = labels_table.copy(), "<labels table>"
    else:
        path = Path(labels_table)
        if not path.is_file():
            raise DataError("labels table not found", source=str(path), reason="missing_file")
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        try:
            table = pd.read_csv(path, sep=sep, dtype={id_column: str}, na_values=["n/a"])
        except _UNREADABLE as err:
            raise DataError(
                f"cannot parse labels table ({err})", source=str(path), reason="unreadable"
            ) from err
        src = str(path)
    if id_column not in table.columns:
        raise DataError(
            f"labels table has no id column {id_column!r} (columns: {list(table.columns)})",
            source=src,
            reason="missing_column",
        )
    table[id_column] = table[id_column].astype(str).str.strip()
    dup = table[id_column][table[id_column].duplicated()].tolist()
    if dup:
        raise DataError(
            f"labels table repeats subject id(s) {dup[:5]}", source=src, reason="duplicate_id"
        )
    return table.set_index(id_column, drop=False), src


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclass
class PrecomputedIndex:
    """The subject files and labels table of a precomputed cohort, no matrix read (see
    :func:`index_precomputed`)."""

    files: dict[str, Path]
    table: pd.DataFrame | None
    table_src: str | None
    covariate_columns: list[str]

    def row(self, subject_id: str) -> dict[str, Any] | None:
        """The labels-table row of a subject as a plain dict (``None``: no row or no table)."""
        if self.table is None or subject_id not in self.table.index:
            return None
        return dict(self.table.loc[subject_id].items())

    def unmatched(self) -> list[tuple[DataError, str]]:
        """``(error, subject_id)`` for every labels-table id without a matrix file."""
        if self.table is None:
            return []
        return [
            (
                DataError(
                    f"subject {sid!r} is in the labels table but has no matrix file",
                    source=self.table_src,
                    reason="missing_file",
                ),
                sid,
            )
            for sid in self.table.index
            if sid not in self.files
        ]


def index_precomputed(
    path_or_files: str | Path | Sequence[str | Path] | Mapping[str, str | Path],
    labels_table: str | Path | pd.DataFrame | None = None,
    *,
    id_column: str = "subject_id",
    label_column: str | None = "label",
    site_column: str | None = "site",
    participant_column: str | None = "participant",
    covariate_columns: Sequence[str] | None = None,
) -> PrecomputedIndex:
    """List the subject files and read the labels table (arguments as
    :func:`read_precomputed`), without reading any matrix: what a batch driver plans with.

    Raises:
        DataError: empty folder, unreadable labels table, missing id or label column.
        ConfigError: two files with one subject id, unknown ``covariate_columns``.
    """
    skip = Path(labels_table) if isinstance(labels_table, (str, Path)) else None
    files = _subject_files(path_or_files, skip)
    table, table_src = (
        (None, None) if labels_table is None else _read_table(labels_table, id_column)
    )
    if table is not None and label_column is not None and label_column not in table.columns:
        raise DataError(
            f"labels table has no label column {label_column!r} (columns: {list(table.columns)})",
            source=table_src,
            reason="missing_column",
        )
    cov_cols: list[str] = []
    if table is not None:
        skip_cols = {id_column, label_column, site_column, participant_column}
        cov_cols = (
            [c for c in table.columns if c not in skip_cols]
            if covariate_columns is None
            else list(covariate_columns)
        )
        unknown = [c for c in cov_cols if c not in table.columns]
        if unknown:
            raise ConfigError(f"covariate_columns {unknown} are not in the labels table")
    return PrecomputedIndex(files, table, table_src, cov_cols)


def read_precomputed_subject(
    subject_id: str,
    path: str | Path,
    kind: Literal["timeseries", "fc"] = "timeseries",
    *,
    row: Mapping[str, Any] | None = None,
    table_src: str | None = None,
    label_column: str | None = "label",
    site_column: str | None = "site",
    participant_column: str | None = "participant",
    label_map: Mapping[Any, int] | None = None,
    covariate_columns: Sequence[str] = (),
    roi_names: Sequence[str] | None = None,
    tr: float | None = None,
) -> Subject:
    """Read one subject's matrix file with its labels-table ``row``: the per-subject step of
    :func:`read_precomputed` (not yet validated for NaN, constant ROIs ...).

    ``table_src`` names the labels table (``None``: the cohort has none, so no label is
    required); ``row`` is ``None`` when the table has no row for the subject.

    Raises:
        DataError: missing file (``missing_file``), no row or no usable label
            (``missing_label``), unreadable file, wrong shape, ROI-name count mismatch.
    """
    path = Path(path)
    src = str(path)
    sid = subject_id
    if not path.is_file():
        raise DataError("file not found", source=src, reason="missing_file")
    label = site = participant = None
    covariates: dict[str, Any] = {}
    if table_src is not None:
        if row is None:
            raise DataError(
                f"subject {sid!r} has no row in the labels table {table_src}",
                source=src,
                reason="missing_label",
            )
        if label_column is not None:
            raw = _value(row[label_column])
            if label_map is not None:
                keyed = {str(k): int(v) for k, v in label_map.items()}
                raw = keyed.get(str(raw)) if raw is not None else None
            if raw is None or not isinstance(raw, int):
                raise DataError(
                    f"label {row[label_column]!r} in column {label_column!r} is missing or "
                    "not an integer (pass label_map for text labels)",
                    source=src,
                    reason="missing_label",
                )
            label = raw
        if site_column is not None and site_column in row:
            s = _value(row[site_column])
            site = None if s is None else str(s)
        if participant_column is not None and participant_column in row:
            pv = _value(row[participant_column])
            participant = None if pv is None else str(pv)
        covariates = {c: _value(row[c]) for c in covariate_columns}
    arr, names = read_matrix(path)
    if arr.ndim != 2:
        expected = "(T, R) time series" if kind == "timeseries" else "(R, R) matrix"
        raise DataError(
            f"expected a 2-D {expected}, got shape {arr.shape}",
            source=src,
            reason="wrong_shape",
        )
    names = list(roi_names) if roi_names is not None else names
    if names is not None and len(names) != arr.shape[1]:
        raise DataError(
            f"{len(names)} ROI names for {arr.shape[1]} columns",
            source=src,
            reason="roi_mismatch",
        )
    return Subject(
        id=sid,
        timeseries=arr if kind == "timeseries" else None,
        fc=arr if kind == "fc" else None,
        label=label,
        site=site,
        covariates=covariates,
        roi_names=names,
        tr=tr if kind == "timeseries" else None,
        source=src,
        participant=participant,
    )


def read_precomputed(
    path_or_files: str | Path | Sequence[str | Path] | Mapping[str, str | Path],
    labels_table: str | Path | pd.DataFrame | None = None,
    kind: Literal["timeseries", "fc"] = "timeseries",
    *,
    id_column: str = "subject_id",
    label_column: str | None = "label",
    site_column: str | None = "site",
    participant_column: str | None = "participant",
    label_map: Mapping[Any, int] | None = None,
    covariate_columns: Sequence[str] | None = None,
    roi_names: Sequence[str] | None = None,
    tr: float | None = None,
    on_invalid: OnInvalid = "exclude",
    constant_roi: ConstantPolicy = "exclude",
    min_timepoints: int = 2,
    n_rois: int | None = None,
) -> Cohort:
    """Read per-subject matrix files and a labels table into a validated :class:`Cohort`.

    Args:
        path_or_files: a folder (every ``.npy/.csv/.tsv/.txt`` file in it except the
            labels table), a list of files, or a mapping ``{subject_id: file}``. The file
            stem is the subject id.
        labels_table: CSV/TSV path or DataFrame with ``id_column`` and optionally
            ``label_column``, ``site_column`` and covariates; ``None`` for no labels.
        kind: ``"timeseries"`` (files are ``(T, R)``) or ``"fc"`` (files are ``(R, R)``).
        id_column, label_column, site_column: column names in the labels table.
        participant_column: optional column with the participant each file belongs to
            (several runs / sessions of one person); cross-validation keeps a
            participant's files together. Absent column or empty cell: the subject id.
        label_map: maps label-column values to ints (e.g. ``{"ASD": 1, "TD": 0}``).
        covariate_columns: covariates to keep (default: every other column).
        roi_names: ROI names (default: the text header, if any).
        tr: repetition time in seconds for every subject (time series only).
        on_invalid, constant_roi, min_timepoints, n_rois: validation policies.

    Table ids without a file are excluded with reason ``"missing_file"``; files without a
    table row (or with an empty label) with reason ``"missing_label"``; non-2-D arrays and
    non-square FC matrices with ``"wrong_shape"``; NaN/Inf with ``"non_finite"``.
    """
    if kind not in ("timeseries", "fc"):
        raise ConfigError(f"kind must be 'timeseries' or 'fc', got {kind!r}")
    if on_invalid not in ("raise", "exclude"):
        raise ConfigError(f"on_invalid must be 'raise' or 'exclude', got {on_invalid!r}")
    index = index_precomputed(
        path_or_files,
        labels_table,
        id_column=id_column,
        label_column=label_column,
        site_column=site_column,
        participant_column=participant_column,
        covariate_columns=covariate_columns,
    )
    subjects: list[Subject] = []
    excluded: list[Exclusion] = []

    def fail(err: DataError, sid: str) -> None:
        if on_invalid == "raise":
            raise err
        excluded.append(Exclusion(sid, err.source, err.reason, str(err)))

    for sid, path in index.files.items():
        try:
            subj = read_precomputed_subject(
                sid,
                path,
                kind,
                row=index.row(sid),
                table_src=index.table_src,
                label_column=label_column,
                site_column=site_column,
                participant_column=participant_column,
                label_map=label_map,
                covariate_columns=index.covariate_columns,
                roi_names=roi_names,
                tr=tr,
            )
        except DataError as err:
            fail(err, sid)
            continue
        subjects.append(subj)

    for err, sid in index.unmatched():
        fail(err, sid)

    return validate_cohort(
        subjects,
        name="precomputed",
        on_invalid=on_invalid,
        constant_roi=constant_roi,
        min_timepoints=min_timepoints,
        n_rois=n_rois,
        excluded=excluded,
        roi_names=list(roi_names) if roi_names is not None else None,
        meta={"kind": kind},
    )
