"""Reader for ABIDE I as released by the Preprocessed Connectomes Project (PCP).

The layout is exactly what :func:`nilearn.datasets.fetch_abide_pcp` writes::

    <root>/ABIDE_pcp/Phenotypic_V1_0b_preprocessed1.csv
    <root>/ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D      (or .1D.gz)

Each ``.1D`` file is a whitespace-separated table of ROI mean time series, shape
``(T, R)``, with a header row of ROI label ids (``#10  #11 ... #2001``). The
phenotypic CSV gives ``FILE_ID``, ``SUB_ID``, ``SITE_ID``, ``DX_GROUP`` (1 = autism,
2 = typical control), ``AGE_AT_SCAN``, ``SEX`` and more; ``-9999`` marks a missing value.

Labels: ``DX_GROUP`` 1 (autism) -> label 1, ``DX_GROUP`` 2 (control) -> label 0.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.validation import ConstantPolicy, OnInvalid, validate_cohort
from graphbrain.errors import ConfigError, DataError

PHENOTYPIC_FILE = "Phenotypic_V1_0b_preprocessed1.csv"

#: Repetition time (seconds) of each ABIDE I site's resting-state scan, from the ABIDE I
#: scan-parameter sheets (fcon_1000.projects.nitrc.org/indi/abide/abide_I.html). They
#: agree with the PCP scan lengths (e.g. KKI 152 volumes x 2.5 s, PITT 196 x 1.5 s).
ABIDE_SITE_TR: dict[str, float] = {
    "CALTECH": 2.0,
    "CMU": 2.0,
    "KKI": 2.5,
    "LEUVEN_1": 1.656,
    "LEUVEN_2": 1.656,
    "MAX_MUN": 3.0,
    "NYU": 2.0,
    "OHSU": 2.5,
    "OLIN": 1.5,
    "PITT": 1.5,
    "SBL": 2.2,
    "SDSU": 2.0,
    "STANFORD": 2.0,
    "TRINITY": 2.0,
    "UCLA_1": 3.0,
    "UCLA_2": 3.0,
    "UM_1": 2.0,
    "UM_2": 2.0,
    "USM": 2.0,
    "YALE": 2.0,
}

#: Phenotypic columns kept as covariates (column -> covariate name). Diagnosis-derived
#: scores (ADOS, ADI-R, SRS ...) are deliberately left out: they exist mostly for one
#: class and would leak the label.
ABIDE_COVARIATES: dict[str, str] = {
    "AGE_AT_SCAN": "age",
    "SEX": "sex",
    "FIQ": "fiq",
    "VIQ": "viq",
    "PIQ": "piq",
    "HANDEDNESS_SCORES": "handedness_score",
    "EYE_STATUS_AT_SCAN": "eye_status",
    "func_mean_fd": "func_mean_fd",
    "func_perc_fd": "func_perc_fd",
    "func_num_fd": "func_num_fd",
}

_MISSING_CODES = (-9999, -9999.0)
_REQUIRED = ("FILE_ID", "SUB_ID", "SITE_ID", "DX_GROUP")

#: Exceptions that mean "the bytes on disk could not be parsed".
UNREADABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    UnicodeDecodeError,
    ValueError,
)


def read_1d(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Read one PCP ``.1D`` or ``.1D.gz`` ROI time-series file.

    Returns:
        ``(timeseries, roi_names)``: float64 array of shape ``(T, R)`` and the ``R`` ROI
        label ids from the ``#``-header row (without the ``#``), or ``None`` if the file
        has no header.

    Raises:
        DataError: ``reason="unreadable"`` for a corrupt gzip stream, truncated file,
            non-numeric cells or ragged rows; ``reason="wrong_shape"`` when the header and
            the rows disagree on the ROI count or the file holds no rows.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("ascii")
        lines = text.splitlines()
        names: list[str] | None = None
        body_start = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                names = [tok.lstrip("#") for tok in line.split()]
                body_start = i + 1
            break
        body = "\n".join(lines[body_start:])
        ts = np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2, comments="#")
    except UNREADABLE_ERRORS as err:
        raise DataError(
            f"cannot read ROI time series file ({type(err).__name__}: {err})",
            source=str(path),
            reason="unreadable",
        ) from err
    if ts.size == 0:
        raise DataError("file holds no time points", source=str(path), reason="wrong_shape")
    if names is not None and len(names) != ts.shape[1]:
        raise DataError(
            f"header names {len(names)} ROIs but the rows have {ts.shape[1]} columns",
            source=str(path),
            reason="wrong_shape",
        )
    return ts, names


def _drop_columns(
    ts: np.ndarray, names: list[str] | None, drop: list[str], path: Path
) -> tuple[np.ndarray, list[str]]:
    """Remove the ROI columns named in ``drop`` from a ``(T, R)`` array."""
    if names is None:
        raise DataError(
            "drop_rois needs ROI names, but the file has no header row",
            source=str(path),
            reason="wrong_shape",
        )
    unknown = [d for d in drop if d not in names]
    if unknown:
        raise DataError(
            f"drop_rois names ROI(s) {unknown} that are not in the header",
            source=str(path),
            reason="roi_mismatch",
        )
    keep = [i for i, n in enumerate(names) if n not in set(drop)]
    return ts[:, keep], [names[i] for i in keep]


def _find_pcp_dir(root: Path) -> Path:
    """``root`` itself when it is the ``ABIDE_pcp`` folder, else ``root/ABIDE_pcp``."""
    if (root / "ABIDE_pcp").is_dir():
        return root / "ABIDE_pcp"
    if root.is_dir():
        return root
    raise DataError("ABIDE-PCP root folder does not exist", source=str(root), reason="missing_file")


def _clean_value(value: Any) -> Any:
    """Phenotypic cell -> Python value; ``-9999``, empty and NaN become ``None``."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and math.isnan(float(value)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        if float(value) in _MISSING_CODES:
            return None
        f = float(value)
        return int(f) if f.is_integer() else f
    text = str(value).strip()
    return text or None


def _dx_to_label(value: Any) -> int | None:
    v = _clean_value(value)
    if v == 1:
        return 1
    if v == 2:
        return 0
    return None


def read_abide_phenotypic(path: str | Path) -> pd.DataFrame:
    """Read the PCP phenotypic CSV and check its key columns.

    Returns the table with one row per scan; raises :class:`DataError` when the file is
    missing, unparsable or lacks one of ``FILE_ID``, ``SUB_ID``, ``SITE_ID``, ``DX_GROUP``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("phenotypic CSV not found", source=str(path), reason="missing_file")
    try:
        table = pd.read_csv(path)
    except UNREADABLE_ERRORS as err:
        raise DataError(
            f"cannot parse phenotypic CSV ({err})", source=str(path), reason="unreadable"
        ) from err
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise DataError(
            f"phenotypic CSV lacks column(s) {missing}; found {list(table.columns)[:12]}...",
            source=str(path),
            reason="missing_column",
        )
    return table


@dataclass
class AbideScan:
    """One phenotypic row (or a file without a row) of an ABIDE-PCP release, indexed by
    :func:`index_abide_pcp` without reading its time series (small and picklable: a batch
    driver plans with it, a worker reads it with :func:`read_abide_scan`).

    ``error`` is set when the entry cannot become a subject (no file: ``missing_file``;
    no usable ``DX_GROUP`` or no phenotypic row: ``missing_label``).
    """

    subject_id: str
    path: Path | None
    row: dict[str, Any]
    site: str | None
    sub_id: Any
    file_id: str | None
    label: int | None
    error: DataError | None = None


def abide_files(ts_dir: Path, atlas: str) -> dict[str, Path]:
    """``{FILE_ID: path}`` of the ``*_rois_<atlas>.1D[.gz]`` files in ``ts_dir`` (an
    uncompressed copy wins over a compressed one of the same scan)."""
    suffix = f"_rois_{atlas}"
    files: dict[str, Path] = {}
    for f in sorted(ts_dir.iterdir()):
        for ext in (".1D", ".1D.gz"):
            if f.name.endswith(suffix + ext):
                file_id = f.name[: -len(suffix + ext)]
                if file_id not in files or ext == ".1D":
                    files[file_id] = f
    return files


def index_abide_pcp(
    root: str | Path,
    atlas: str = "ho",
    pipeline: str = "cpac",
    strategy: str = "filt_noglobal",
    phenotypic: str | Path | None = None,
    sites: Iterable[str] | None = None,
    subject_id: Literal["FILE_ID", "SUB_ID"] = "FILE_ID",
) -> tuple[list[AbideScan], Path]:
    """Index an ABIDE-PCP release: the phenotypic CSV and the file listing, no time series.

    Arguments as :func:`read_abide_pcp`. Returns ``(scans, pcp_folder)``: one
    :class:`AbideScan` per phenotypic row kept by ``sites`` (in CSV order), then one per
    time-series file without a row. :func:`read_abide_pcp` is this plus
    :func:`read_abide_scan` on every scan plus validation.

    Raises:
        DataError: missing folder or phenotypic CSV, or no file for ``atlas``.
    """
    pcp = _find_pcp_dir(Path(root))
    ts_dir = pcp / pipeline / strategy
    if not ts_dir.is_dir():
        raise DataError(
            f"no time-series folder for pipeline={pipeline!r}, strategy={strategy!r}",
            source=str(ts_dir),
            reason="missing_file",
        )
    pheno_path = Path(phenotypic) if phenotypic is not None else pcp / PHENOTYPIC_FILE
    table = read_abide_phenotypic(pheno_path)
    suffix = f"_rois_{atlas}"
    files = abide_files(ts_dir, atlas)
    if not files:
        raise DataError(
            f"no '*{suffix}.1D' or '*{suffix}.1D.gz' files (is atlas={atlas!r} right?)",
            source=str(ts_dir),
            reason="missing_file",
        )
    site_filter = None if sites is None else {str(s) for s in sites}
    scans: list[AbideScan] = []
    used_files: set[str] = set()
    for row in table.to_dict(orient="records"):
        site = _clean_value(row["SITE_ID"])
        site = None if site is None else str(site)
        if site_filter is not None and site not in site_filter:
            continue
        file_id = _clean_value(row["FILE_ID"])
        file_id = None if file_id is None or file_id == "no_filename" else str(file_id)
        sub_id = _clean_value(row["SUB_ID"])
        sid = str(file_id if subject_id == "FILE_ID" and file_id else sub_id)
        scan = AbideScan(sid, None, row, site, sub_id, file_id, None)
        if file_id is None or file_id not in files:
            scan.error = DataError(
                f"phenotypic row (SUB_ID {sub_id}) has no '{suffix}' time-series file",
                source=str(ts_dir / f"{file_id}{suffix}.1D[.gz]"),
                reason="missing_file",
            )
        else:
            scan.path = files[file_id]
            used_files.add(file_id)
            scan.label = _dx_to_label(row["DX_GROUP"])
            if scan.label is None:
                scan.error = DataError(
                    f"DX_GROUP is {row['DX_GROUP']!r}, expected 1 (autism) or 2 (control)",
                    source=str(scan.path),
                    reason="missing_label",
                )
        scans.append(scan)

    wanted_prefixes = None if site_filter is None else tuple(s.lower() for s in site_filter)
    for file_id, path in files.items():
        if file_id in used_files:
            continue
        if wanted_prefixes is not None and not file_id.lower().startswith(wanted_prefixes):
            continue
        err = DataError(
            "time-series file has no row in the phenotypic CSV (no label)",
            source=str(path),
            reason="missing_label",
        )
        scans.append(AbideScan(file_id, path, {}, None, None, file_id, None, err))
    return scans, pcp


def read_abide_scan(scan: AbideScan, drop_rois: Iterable[str] | None = None) -> Subject:
    """Read one indexed scan (see :func:`index_abide_pcp`) into a :class:`Subject`, not yet
    validated: the per-subject step of :func:`read_abide_pcp`.

    Raises:
        DataError: the scan's own ``error``, an unreadable file, or ``drop_rois`` naming
            ROIs the header lacks.
    """
    if scan.error is not None:
        raise scan.error
    if scan.path is None:
        raise DataError(f"scan {scan.subject_id!r} has no time-series file", reason="missing_file")
    path = Path(scan.path)
    drop = [str(r).lstrip("#") for r in drop_rois] if drop_rois is not None else []
    ts, names = read_1d(path)
    if drop:
        ts, names = _drop_columns(ts, names, drop, path)
    row, site = scan.row, scan.site
    return Subject(
        id=scan.subject_id,
        timeseries=ts,
        label=scan.label,
        site=site,
        covariates={name: _clean_value(row[col]) for col, name in ABIDE_COVARIATES.items() if col in row}
        | {"sub_id": str(scan.sub_id), "file_id": scan.file_id},
        roi_names=names,
        tr=ABIDE_SITE_TR.get(site.upper()) if site else None,
        source=str(path),
        participant=str(scan.sub_id),
    )


def read_abide_pcp(
    root: str | Path,
    atlas: str = "ho",
    pipeline: str = "cpac",
    strategy: str = "filt_noglobal",
    phenotypic: str | Path | None = None,
    sites: Iterable[str] | None = None,
    subject_id: Literal["FILE_ID", "SUB_ID"] = "FILE_ID",
    drop_rois: Iterable[str] | None = None,
    on_invalid: OnInvalid = "exclude",
    constant_roi: ConstantPolicy = "exclude",
    min_timepoints: int = 2,
    n_rois: int | None = None,
) -> Cohort:
    """Read ABIDE-PCP ROI time series and phenotypes into a validated :class:`Cohort`.

    Args:
        root: the folder given to ``fetch_abide_pcp(data_dir=...)`` (it contains
            ``ABIDE_pcp/``), or the ``ABIDE_pcp`` folder itself.
        atlas: ROI derivative name: ``"ho"``, ``"aal"``, ``"cc200"``, ``"cc400"``,
            ``"dosenbach160"``, ``"ez"``, ``"tt"`` (files ``*_rois_<atlas>.1D[.gz]``).
        pipeline: ``"cpac"``, ``"ccs"``, ``"dparsf"`` or ``"niak"``.
        strategy: ``"filt_noglobal"``, ``"filt_global"``, ``"nofilt_noglobal"`` or
            ``"nofilt_global"``.
        phenotypic: explicit path of the phenotypic CSV; default
            ``<ABIDE_pcp>/Phenotypic_V1_0b_preprocessed1.csv``.
        sites: keep only these ``SITE_ID`` values (default: all).
        subject_id: which column gives :attr:`Subject.id` (``FILE_ID`` such as
            ``"Pitt_0050003"``, or ``SUB_ID`` such as ``"50003"``).
        drop_rois: ROI label ids (header names, e.g. ``["3455"]``) to remove from every
            subject before validation. In the HO/C-PAC release ROI ``3455`` is constant
            zero in about a fifth of the scans; dropping it keeps those subjects.
        on_invalid: ``"exclude"`` records bad subjects as exclusions; ``"raise"`` raises
            :class:`DataError` at the first one.
        constant_roi: policy for zero-variance ROIs (``"exclude"``, ``"raise"``, ``"keep"``).
        min_timepoints: shortest accepted scan.
        n_rois: expected ROI count (default: the majority count).

    Returns:
        A cohort whose subjects hold ``(T, R)`` float32 time series (``T`` varies by
        site), ``label`` 1 = autism / 0 = control, ``site`` = ``SITE_ID``, ``tr`` from
        :data:`ABIDE_SITE_TR`, and covariates from :data:`ABIDE_COVARIATES` (``None`` where
        missing). Phenotypic rows without a file are excluded with reason
        ``"missing_file"``; files without a phenotypic row, or with a ``DX_GROUP`` other
        than 1/2, with reason ``"missing_label"``.
    """
    if on_invalid not in ("raise", "exclude"):
        raise ConfigError(f"on_invalid must be 'raise' or 'exclude', got {on_invalid!r}")
    if subject_id not in ("FILE_ID", "SUB_ID"):
        raise ConfigError(f"subject_id must be 'FILE_ID' or 'SUB_ID', got {subject_id!r}")
    scans, pcp = index_abide_pcp(root, atlas, pipeline, strategy, phenotypic, sites, subject_id)
    drop = [str(r).lstrip("#") for r in drop_rois] if drop_rois is not None else None
    excluded: list[Exclusion] = []
    subjects: list[Subject] = []

    def fail(err: DataError, sid: str) -> None:
        if on_invalid == "raise":
            raise err
        excluded.append(Exclusion(sid, err.source, err.reason, str(err)))

    for scan in scans:
        try:
            subjects.append(read_abide_scan(scan, drop))
        except DataError as err:
            fail(err, scan.subject_id)

    subjects.sort(key=lambda s: s.id)
    return validate_cohort(
        subjects,
        name="abide_pcp",
        on_invalid=on_invalid,
        constant_roi=constant_roi,
        min_timepoints=min_timepoints,
        n_rois=n_rois,
        excluded=excluded,
        meta={"atlas": atlas, "pipeline": pipeline, "strategy": strategy, "root": str(pcp)},
    )
