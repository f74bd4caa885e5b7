"""4D NIfTI BOLD + atlas -> ROI time series, through nilearn maskers.

Three kinds of atlas are understood (``atlas_kind="auto"`` guesses from the input):

* ``"labels"``: a 3D integer label image (0 = background) -> :class:`NiftiLabelsMasker`,
  one ROI per non-zero label, ordered by label value;
* ``"maps"``: a 4D image of probabilistic maps -> :class:`NiftiMapsMasker`, one ROI per map;
* ``"coords"``: an ``(N, 3)`` array of MNI/world coordinates, or a CSV/TSV file with
  ``x, y, z`` columns (or three numeric columns) -> :class:`NiftiSpheresMasker` with
  spheres of ``radius`` mm (``None``: the single voxel at each seed).

Cleaning (confound regression, detrending, band-pass, standardisation) is done by the
masker (:func:`nilearn.signal.clean`), so results equal a direct nilearn call.

Confounds come from an fMRIPrep confounds TSV (or any table/array with one row per
volume). :func:`select_confounds` picks columns by a named strategy (see
:data:`CONFOUND_COLUMNS`): tokens joined by ``+`` such as ``"motion"``,
``"motion+wm_csf"``, ``"motion+derivatives+wm_csf+gsr"``, or an explicit list of column
names. Leading NaNs (the first row of derivative / framewise-displacement columns) are
set to 0; any other NaN is an error. A ``dict`` strategy is passed as keyword arguments to
:func:`nilearn.interfaces.fmriprep.load_confounds` instead (needs the fMRIPrep file
layout next to the BOLD file, and adds its scrubbing ``sample_mask``).
"""

from __future__ import annotations

import glob
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pandas as pd

from graphbrain.data.records import Cohort, Exclusion, Subject
from graphbrain.data.validation import ConstantPolicy, OnInvalid, validate_cohort
from graphbrain.errors import ConfigError, DataError

AtlasKind = Literal["auto", "labels", "maps", "coords"]
ConfoundsInput = str | Path | pd.DataFrame | np.ndarray | None
ConfoundStrategy = str | Sequence[str] | Mapping[str, Any] | None

#: Strategy tokens -> candidate column groups (fMRIPrep >= 1.2 names first, then the
#: older CamelCase names). ``derivatives`` / ``power2`` expand the columns chosen so far
#: with fMRIPrep's ``_derivative1`` / ``_power2`` suffixes; ``cosine`` takes every
#: ``cosine*`` column (fMRIPrep's high-pass basis).
CONFOUND_COLUMNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "motion": (
        ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"),
        ("X", "Y", "Z", "RotX", "RotY", "RotZ"),
    ),
    "wm_csf": (("white_matter", "csf"), ("WhiteMatter", "CSF")),
    "gsr": (("global_signal",), ("GlobalSignal",)),
}
_TOKEN_ALIASES = {"global_signal": "gsr", "wmcsf": "wm_csf", "motion6": "motion"}
_SPECIAL_TOKENS = ("derivatives", "power2", "cosine")

_UNREADABLE = (OSError, EOFError, zlib.error, nib.filebasedimages.ImageFileError, ValueError)


@dataclass
class Atlas:
    """A parcellation ready for a nilearn masker.

    Attributes:
        kind: ``"labels"``, ``"maps"`` or ``"coords"``.
        img: the label image (3D) or maps image (4D, one map per ROI); ``None`` for coords.
        coords: seed coordinates, shape ``(R, 3)``; ``None`` for images.
        roi_names: the ``R`` ROI names (label values as strings by default).
        label_values: for label atlases, the ``R`` label values in output column order.
        source: where the atlas came from (for error messages).
    """

    kind: Literal["labels", "maps", "coords"]
    img: nib.Nifti1Image | None
    coords: np.ndarray | None
    roi_names: list[str]
    label_values: list[float] | None = None
    source: str = "atlas"

    @property
    def n_rois(self) -> int:
        return len(self.roi_names)


def _load_img(img: str | Path | nib.Nifti1Image, what: str) -> tuple[nib.Nifti1Image, str]:
    """Load a NIfTI image fully into memory; unreadable files raise DataError."""
    if isinstance(img, nib.spatialimages.SpatialImage):
        return img, f"<in-memory {what}>"
    path = Path(img)
    if not path.is_file():
        raise DataError(f"{what} file not found", source=str(path), reason="missing_file")
    try:
        loaded = nib.load(path)
        # Read every byte now, so a truncated or corrupt file fails here, clearly. The
        # array keeps the on-disk dtype (scaled only if the header says so), exactly as
        # nilearn would see the file.
        data = np.asanyarray(loaded.dataobj)
    except _UNREADABLE as err:
        raise DataError(
            f"cannot read {what} as NIfTI ({type(err).__name__}: {err})",
            source=str(path),
            reason="unreadable",
        ) from err
    header = loaded.header.copy()
    header.set_data_dtype(data.dtype)
    return nib.Nifti1Image(data, loaded.affine, header), str(path)


def _read_coords(path: Path) -> np.ndarray:
    try:
        table = pd.read_csv(path, sep=None, engine="python")
    except (*_UNREADABLE, pd.errors.ParserError) as err:
        raise DataError(
            f"cannot read coordinates table ({err})", source=str(path), reason="unreadable"
        ) from err
    cols = [c for c in ("x", "y", "z") if c in table.columns]
    if len(cols) == 3:
        return table[cols].to_numpy(dtype=np.float64)
    numeric = table.select_dtypes("number")
    if numeric.shape[1] == 3:
        return numeric.to_numpy(dtype=np.float64)
    # A header-less table of three numbers per line.
    raw = pd.read_csv(path, sep=None, engine="python", header=None)
    try:
        return raw.to_numpy(dtype=np.float64)
    except ValueError as err:
        raise DataError(
            "coordinates table needs x, y, z columns (or exactly three numeric columns)",
            source=str(path),
            reason="wrong_shape",
        ) from err


def load_atlas(
    atlas: Atlas | str | Path | nib.Nifti1Image | np.ndarray | Sequence[Sequence[float]],
    kind: AtlasKind = "auto",
    roi_names: Sequence[str] | None = None,
) -> Atlas:
    """Turn a path, image or coordinate array into an :class:`Atlas`.

    Raises:
        DataError: unreadable atlas file, an atlas with no region (all background), a
            label image that is not integer-valued, or coordinates not shaped ``(N, 3)``.
        ConfigError: unknown ``kind`` or ``roi_names`` of the wrong length.
    """
    if isinstance(atlas, Atlas):
        return atlas
    if kind not in ("auto", "labels", "maps", "coords"):
        raise ConfigError(f"atlas_kind must be 'auto', 'labels', 'maps' or 'coords', got {kind!r}")
    is_table = isinstance(atlas, (str, Path)) and Path(atlas).suffix.lower() in (
        ".csv",
        ".tsv",
        ".txt",
    )
    is_array = isinstance(atlas, (np.ndarray, list, tuple))
    if kind == "coords" or (kind == "auto" and (is_table or is_array)):
        coords = _read_coords(Path(atlas)) if is_table else np.asarray(atlas, dtype=np.float64)  # type: ignore[arg-type]
        source = str(atlas) if is_table else "<coordinates>"
        if coords.ndim != 2 or coords.shape[1] != 3 or coords.shape[0] == 0:
            raise DataError(
                f"coordinates must have shape (N, 3) with N >= 1, got {coords.shape}",
                source=source,
                reason="wrong_shape",
            )
        names = [f"seed{i}" for i in range(coords.shape[0])]
        return _named(Atlas("coords", None, coords, names, source=source), roi_names)

    img, source = _load_img(atlas, "atlas")  # type: ignore[arg-type]
    data = np.asarray(img.dataobj)
    if kind == "auto":
        kind = "maps" if data.ndim == 4 and data.shape[3] > 1 else "labels"
    if kind == "labels":
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
            img = nib.Nifti1Image(data, img.affine)
        if data.ndim != 3:
            raise DataError(
                f"a label atlas must be a 3D image, got shape {data.shape}",
                source=source,
                reason="wrong_shape",
            )
        if not np.allclose(data, np.round(data)):
            raise DataError(
                "label atlas holds non-integer values; pass atlas_kind='maps' for "
                "probabilistic maps",
                source=source,
                reason="wrong_shape",
            )
        values = [float(v) for v in np.unique(data) if v != 0]
        if not values:
            raise DataError(
                "atlas has no region (every voxel is background 0)",
                source=source,
                reason="empty_atlas",
            )
        names = [str(int(v)) for v in values]
        out = Atlas(
            "labels",
            nib.Nifti1Image(data.astype(np.int32), img.affine),
            None,
            names,
            values,
            source,
        )
        return _named(out, roi_names)
    # maps
    if data.ndim != 4:
        raise DataError(
            f"a maps atlas must be a 4D image, got shape {data.shape}",
            source=source,
            reason="wrong_shape",
        )
    nonempty = np.abs(data).reshape(-1, data.shape[3]).max(axis=0) > 0
    if not nonempty.any():
        raise DataError("atlas maps are all zero", source=source, reason="empty_atlas")
    names = [f"map{i}" for i in range(data.shape[3])]
    return _named(Atlas("maps", img, None, names, source=source), roi_names)


def _named(atlas: Atlas, roi_names: Sequence[str] | None) -> Atlas:
    if roi_names is not None:
        if len(roi_names) != atlas.n_rois:
            raise ConfigError(
                f"roi_names has {len(roi_names)} names but the atlas has {atlas.n_rois} ROIs"
            )
        atlas.roi_names = [str(n) for n in roi_names]
    return atlas


def read_tr(img: nib.Nifti1Image) -> float | None:
    """Repetition time in seconds from a 4D NIfTI header, or ``None`` when not recorded.

    The header's fourth zoom is converted from ms/us when ``xyzt_units`` says so.
    """
    zooms = img.header.get_zooms()
    if len(zooms) < 4:
        return None
    tr = float(zooms[3])
    if not np.isfinite(tr) or tr <= 0:
        return None
    try:
        unit = img.header.get_xyzt_units()[1]
    except (AttributeError, KeyError):
        unit = "sec"
    if unit == "msec":
        tr /= 1000.0
    elif unit == "usec":
        tr /= 1e6
    return tr


def _read_confound_table(confounds: ConfoundsInput, source: str) -> pd.DataFrame | None:
    if confounds is None:
        return None
    if isinstance(confounds, pd.DataFrame):
        return confounds.copy()
    if isinstance(confounds, np.ndarray):
        arr = confounds if confounds.ndim == 2 else confounds.reshape(len(confounds), -1)
        return pd.DataFrame(arr, columns=[f"confound{i}" for i in range(arr.shape[1])])
    path = Path(confounds)
    if not path.is_file():
        raise DataError("confounds file not found", source=str(path), reason="missing_confounds")
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        return pd.read_csv(path, sep=sep, na_values=["n/a", "NA", "NaN", ""])
    except (*_UNREADABLE, pd.errors.ParserError) as err:
        raise DataError(
            f"cannot parse confounds table ({err})", source=str(path), reason="unreadable"
        ) from err


def _strategy_columns(
    columns: Sequence[str], strategy: str | Sequence[str], source: str
) -> list[str]:
    if not isinstance(strategy, str):
        wanted = [str(c) for c in strategy]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DataError(
                f"confounds table lacks column(s) {missing}",
                source=source,
                reason="missing_confounds",
            )
        return wanted
    chosen: list[str] = []
    for raw in strategy.split("+"):
        token = _TOKEN_ALIASES.get(raw.strip(), raw.strip())
        if token in CONFOUND_COLUMNS:
            for group in CONFOUND_COLUMNS[token]:
                if all(c in columns for c in group):
                    chosen.extend(group)
                    break
            else:
                raise DataError(
                    f"confound strategy token {token!r} needs columns {list(CONFOUND_COLUMNS[token][0])}, "
                    "not all present in the table",
                    source=source,
                    reason="missing_confounds",
                )
        elif token in ("derivatives", "power2"):
            suffix = "_derivative1" if token == "derivatives" else "_power2"
            extra = [c + suffix for c in chosen if not c.endswith(("_derivative1", "_power2"))]
            missing = [c for c in extra if c not in columns]
            if missing or not extra:
                raise DataError(
                    f"confound strategy token {token!r} needs columns {missing or '(a base token first)'}",
                    source=source,
                    reason="missing_confounds",
                )
            chosen.extend(extra)
        elif token == "cosine":
            chosen.extend(c for c in columns if c.startswith("cosine"))
        else:
            valid = sorted([*CONFOUND_COLUMNS, *_SPECIAL_TOKENS, *_TOKEN_ALIASES])
            raise ConfigError(
                f"unknown confound strategy token {raw!r} in {strategy!r}; valid: {valid}"
            )
    return list(dict.fromkeys(chosen))


def select_confounds(
    confounds: ConfoundsInput,
    strategy: str | Sequence[str] | None = None,
    n_timepoints: int | None = None,
    source: str | None = None,
) -> np.ndarray | None:
    """Pick confound columns by a named strategy and return them as ``(T, K)`` float64.

    Args:
        confounds: a TSV/CSV path (fMRIPrep ``*_desc-confounds_timeseries.tsv``), a
            DataFrame, a ``(T, K)`` array, or ``None`` (no confounds).
        strategy: ``None`` (all columns), ``"+"``-joined tokens (``motion``, ``wm_csf``,
            ``gsr``, ``derivatives``, ``power2``, ``cosine``), or a list of column names.
        n_timepoints: the number of volumes ``T`` the table must match.
        source: name used in error messages (defaults to the confounds path).

    Raises:
        DataError: missing file/columns (``"missing_confounds"``), a row count that is not
            ``T`` (``"confounds_mismatch"``), NaN/Inf beyond the leading rows
            (``"bad_confounds"``) or an unparsable file (``"unreadable"``).
    """
    src = source or (str(confounds) if isinstance(confounds, (str, Path)) else "<confounds>")
    table = _read_confound_table(confounds, src)
    if table is None:
        return None
    cols = (
        list(table.columns)
        if strategy is None
        else _strategy_columns(list(table.columns), strategy, src)
    )
    sub = table[cols].apply(pd.to_numeric, errors="coerce")
    values = sub.to_numpy(dtype=np.float64, copy=True)
    if values.ndim != 2 or values.shape[1] == 0:
        raise DataError("no confound column selected", source=src, reason="missing_confounds")
    if n_timepoints is not None and values.shape[0] != n_timepoints:
        raise DataError(
            f"confounds have {values.shape[0]} rows but the image has {n_timepoints} volumes",
            source=src,
            reason="confounds_mismatch",
        )
    # Derivatives and framewise displacement are undefined at the first volume(s).
    for j in range(values.shape[1]):
        col = values[:, j]
        k = 0
        while k < len(col) and np.isnan(col[k]):
            k += 1
        if k < len(col):
            col[:k] = 0.0
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cj = np.nonzero(bad)
        raise DataError(
            f"confound column {cols[int(cj[0])]!r} has NaN/Inf at row {int(rows[0])} "
            "(only leading NaNs are filled with 0)",
            source=src,
            reason="bad_confounds",
        )
    return values


def _make_masker(
    atlas: Atlas, mask_img: Any, radius: float | None, allow_overlap: bool, clean: dict
) -> Any:
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiSpheresMasker

    if atlas.kind == "labels":
        return NiftiLabelsMasker(labels_img=atlas.img, mask_img=mask_img, **clean)
    if atlas.kind == "maps":
        return NiftiMapsMasker(maps_img=atlas.img, mask_img=mask_img, allow_overlap=True, **clean)
    return NiftiSpheresMasker(
        seeds=[tuple(c) for c in atlas.coords],  # type: ignore[union-attr]
        radius=radius,
        mask_img=mask_img,
        allow_overlap=allow_overlap,
        **clean,
    )


def _extract(
    bold: str | Path | nib.Nifti1Image,
    atlas: Atlas,
    *,
    confounds: ConfoundsInput = None,
    confound_strategy: ConfoundStrategy = None,
    standardize: bool | str | None = "zscore_sample",
    detrend: bool = True,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    mask_img: Any = None,
    radius: float | None = None,
    smoothing_fwhm: float | None = None,
    allow_overlap: bool = False,
) -> tuple[np.ndarray, float | None]:
    """One BOLD image -> ``((T, R) float32 time series, t_r)``; problems raise DataError."""
    from nilearn.image.resampling import BoundingBoxError

    img, src = _load_img(bold, "BOLD image")
    shape = img.shape
    if len(shape) != 4:
        raise DataError(
            f"expected a 4D BOLD image (x, y, z, time), got {len(shape)}D shape {shape}",
            source=src,
            reason="wrong_shape",
        )
    n_vol = int(shape[3])
    tr = float(t_r) if t_r is not None else read_tr(img)
    if (low_pass is not None or high_pass is not None) and tr is None:
        raise DataError(
            "band-pass filtering needs the repetition time, but the header has none; pass t_r",
            source=src,
            reason="missing_tr",
        )
    sample_mask = None
    if isinstance(confound_strategy, Mapping):
        if not isinstance(bold, (str, Path)):
            raise ConfigError(
                "a dict confound_strategy (nilearn load_confounds) needs BOLD file paths"
            )
        from nilearn.interfaces.fmriprep import load_confounds

        try:
            conf_df, sample_mask = load_confounds(str(bold), **dict(confound_strategy))
        except (ValueError, FileNotFoundError, KeyError) as err:
            raise DataError(
                f"nilearn load_confounds failed: {err}", source=src, reason="missing_confounds"
            ) from err
        conf = select_confounds(conf_df, None, n_vol, source=src)
    else:
        conf = select_confounds(confounds, confound_strategy, n_vol, source=None)
    clean = {
        "standardize": None if standardize is False else standardize,
        "detrend": detrend,
        "low_pass": low_pass,
        "high_pass": high_pass,
        "t_r": tr,
        "smoothing_fwhm": smoothing_fwhm,
    }
    _check_finite(img, atlas, src)
    masker = _make_masker(atlas, mask_img, radius, allow_overlap, clean)
    try:
        ts = masker.fit_transform(img, confounds=conf, sample_mask=sample_mask)
    except BoundingBoxError as err:
        raise DataError(
            f"atlas {atlas.source} does not overlap the image's field of view ({err})",
            source=src,
            reason="atlas_mismatch",
        ) from err
    except ValueError as err:
        raise DataError(
            f"ROI extraction failed: {err}", source=src, reason="atlas_mismatch"
        ) from err
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim == 1:
        ts = ts[:, None]
    if atlas.kind == "labels":
        ts = _expand_labels(ts, masker, atlas, src, img=img)
    elif ts.shape[1] != atlas.n_rois:
        raise DataError(
            f"extracted {ts.shape[1]} ROI signals, the atlas has {atlas.n_rois}",
            source=src,
            reason="atlas_mismatch",
        )
    return ts.astype(np.float32), tr


def _check_finite(img: nib.Nifti1Image, atlas: Atlas, src: str) -> None:
    """Raise if a voxel the atlas uses holds NaN/Inf.

    nilearn would silently replace such values by zeros inside its cleaning step;
    non-finite voxels outside every region are harmless and allowed.
    """
    data = np.asanyarray(img.dataobj)
    if np.issubdtype(data.dtype, np.integer):
        return
    bad_vox = ~np.isfinite(data).all(axis=3)
    if not bad_vox.any():
        return
    if atlas.kind == "coords":
        inside = bad_vox  # sphere support is not cheap to know: be strict
    else:
        from nilearn.image import resample_to_img

        support = np.asarray(atlas.img.dataobj) != 0  # type: ignore[union-attr]
        if support.ndim == 4:
            support = support.any(axis=3)
        support_img = nib.Nifti1Image(support.astype(np.int8), atlas.img.affine)  # type: ignore[union-attr]
        resampled = resample_to_img(
            support_img,
            nib.Nifti1Image(bad_vox.astype(np.int8), img.affine),
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
        inside = bad_vox & (np.asarray(resampled.dataobj) > 0)
    if inside.any():
        first = tuple(int(i) for i in np.argwhere(inside)[0])
        t = int(np.flatnonzero(~np.isfinite(data[first]))[0])
        raise DataError(
            f"{int(inside.sum())} voxel(s) inside the atlas regions hold NaN/Inf "
            f"(first at voxel {first}, volume {t}); nilearn would silently zero them",
            source=src,
            reason="non_finite",
        )


#: Share of an atlas's labels that may lose every voxel on resampling to a BOLD image
#: (small regions at the edge of the field of view) before the pair is taken to be in
#: different spaces and the scan is refused (reason ``"atlas_space_mismatch"``).
MAX_LOST_LABEL_FRACTION = 0.25


def _fov_overlap(atlas: Atlas, img: Any) -> float | None:
    """Share of the atlas's labelled voxels whose world position lies inside the image's
    field of view (a sample of at most 20,000 voxels)."""
    if atlas.img is None or img is None:
        return None
    data = np.asarray(atlas.img.dataobj)
    vox = np.argwhere(data != 0)
    if not len(vox):
        return None
    vox = vox[:: max(1, len(vox) // 20000)]
    world = nib.affines.apply_affine(atlas.img.affine, vox)
    ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), world)
    shape = np.asarray(img.shape[:3])
    inside = np.all((ijk >= -0.5) & (ijk <= shape - 0.5), axis=1)
    return float(inside.mean())


def _expand_labels(ts: np.ndarray, masker: Any, atlas: Atlas, src: str, img: Any = None) -> np.ndarray:
    """Put the masker's columns back in atlas order; labels that lost every voxel
    (outside the image or the mask) become all-zero columns, which validation then reports
    as constant ROIs (policy ``constant_roi``). When more than
    :data:`MAX_LOST_LABEL_FRACTION` of the labels are lost, the atlas and the image are
    almost surely in different spaces (nilearn only warns): that is a DataError naming the
    lost labels, not dozens of "constant ROIs"."""
    region_ids = getattr(masker, "region_ids_", None)
    if region_ids is None:  # nilearn < 0.10.3: no record of which labels survived
        if ts.shape[1] != atlas.n_rois:
            raise DataError(
                f"masker returned {ts.shape[1]} signals for {atlas.n_rois} atlas regions "
                "(some regions have no voxel in this image; upgrade nilearn to keep them)",
                source=src,
                reason="atlas_mismatch",
            )
        return ts
    ids = [v for k, v in region_ids.items() if k != "background"]
    if len(ids) != ts.shape[1]:
        raise DataError(
            f"masker returned {ts.shape[1]} signals for {len(ids)} regions",
            source=src,
            reason="atlas_mismatch",
        )
    if not ids:
        raise DataError(
            f"no region of atlas {atlas.source} falls inside the image",
            source=src,
            reason="atlas_mismatch",
        )
    pos = {float(v): i for i, v in enumerate(atlas.label_values or [])}
    kept = {float(v) for v in ids}
    lost = [atlas.roi_names[i] for v, i in pos.items() if v not in kept]
    if pos and len(lost) > MAX_LOST_LABEL_FRACTION * len(pos):
        overlap = _fov_overlap(atlas, img)
        fov = "" if overlap is None else f"; {100 * overlap:.0f} % of the atlas's labelled voxels lie inside the image's field of view"
        raise DataError(
            f"{len(lost)} of {len(pos)} atlas labels have no voxel in this image after resampling "
            f"the atlas {atlas.source} to it (first: {lost[:8]}){fov}. The atlas and the BOLD image are "
            "probably in different spaces (e.g. an MNI atlas on a native-space or differently "
            "oriented image): compare their affines, use the image's MNI-space derivative "
            "(fMRIPrep space-MNI152...) or an atlas in the image's space; a mask_img that "
            "removes most regions gives this too",
            source=src,
            reason="atlas_space_mismatch",
        )
    out = np.zeros((ts.shape[0], atlas.n_rois), dtype=np.float64)
    for j, v in enumerate(ids):
        if float(v) not in pos:
            raise DataError(
                f"masker returned unknown label {v}", source=src, reason="atlas_mismatch"
            )
        out[:, pos[float(v)]] = ts[:, j]
    return out


def extract_timeseries(
    bold_file: str | Path | nib.Nifti1Image,
    atlas: Atlas | str | Path | nib.Nifti1Image | np.ndarray,
    *,
    atlas_kind: AtlasKind = "auto",
    confounds: ConfoundsInput = None,
    confound_strategy: ConfoundStrategy = None,
    standardize: bool | str | None = "zscore_sample",
    detrend: bool = True,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    mask_img: Any = None,
    radius: float | None = None,
    smoothing_fwhm: float | None = None,
    allow_overlap: bool = False,
) -> np.ndarray:
    """ROI time series of one 4D BOLD image, shape ``(T, R)`` float32.

    ``R`` is the atlas's ROI count (label atlases keep a column for every label, zero
    where the label has no voxel in this image). ``t_r`` defaults to the NIfTI header.
    See the module docstring for atlas kinds and confound strategies.

    Raises:
        DataError: missing/corrupt file (``"missing_file"``/``"unreadable"``), not 4D
            (``"wrong_shape"``), atlas outside the image (``"atlas_mismatch"``), confound
            problems, or band-pass without a known TR (``"missing_tr"``).
    """
    at = load_atlas(atlas, atlas_kind)
    ts, _ = _extract(
        bold_file,
        at,
        confounds=confounds,
        confound_strategy=confound_strategy,
        standardize=standardize,
        detrend=detrend,
        low_pass=low_pass,
        high_pass=high_pass,
        t_r=t_r,
        mask_img=mask_img,
        radius=radius,
        smoothing_fwhm=smoothing_fwhm,
        allow_overlap=allow_overlap,
    )
    return ts


def _file_ids(paths: Sequence[Path]) -> list[str]:
    """Short unique ids: the file name without ``.nii[.gz]``, prefixed with as many parent
    folder names as needed to make the ids unique."""

    def stem(p: Path) -> str:
        name = p.name
        for ext in (".nii.gz", ".nii"):
            if name.endswith(ext):
                return name[: -len(ext)]
        return p.stem

    for depth in range(0, max((len(p.parts) for p in paths), default=1)):
        ids = [
            "_".join([*p.parent.parts[len(p.parent.parts) - depth :], stem(p)])
            if depth
            else stem(p)
            for p in paths
        ]
        if len(set(ids)) == len(ids):
            return ids
    return [str(p) for p in paths]


def _expand_files(bold_files: str | Path | Sequence[str | Path]) -> list[Path]:
    """A folder -> its ``.nii[.gz]`` files; a glob pattern -> its matches; else as given."""
    if isinstance(bold_files, (str, Path)):
        p = Path(bold_files)
        if p.is_dir():
            files = sorted([*p.glob("*.nii.gz"), *p.glob("*.nii")])
        elif any(ch in str(bold_files) for ch in "*?["):
            files = sorted(Path(f) for f in glob.glob(str(bold_files), recursive=True))
        else:
            return [p]
        if not files:
            raise DataError(
                "no .nii/.nii.gz file found", source=str(bold_files), reason="missing_file"
            )
        return files
    return [Path(f) for f in bold_files]


def _per_file(value: Any, ids: list[str], what: str) -> list[Any]:
    """Broadcast a per-subject argument over the files: a mapping by subject id (absent
    ids give ``_MISSING``), a sequence aligned with the files, or one value for all
    (sites; confounds only when there is a single file)."""
    n = len(ids)
    if value is None:
        return [None] * n
    if isinstance(value, Mapping):
        return [value.get(i, _MISSING) for i in ids]
    single = isinstance(value, (str, Path, pd.DataFrame)) or (
        what == "confounds" and isinstance(value, np.ndarray)
    )
    if single:
        if what == "labels":
            raise ConfigError("labels must be a sequence aligned with the files or a mapping by id")
        if what == "confounds" and n > 1:
            raise ConfigError(
                "with several BOLD files, confounds must be a list (one per file) or a mapping by id"
            )
        return [value] * n
    seq = list(value)
    if len(seq) != n:
        raise ConfigError(f"{what} has {len(seq)} entries for {n} BOLD files")
    return seq


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


@dataclass
class NiftiScan:
    """One BOLD file with its per-file metadata, resolved by :func:`index_nifti` without
    reading the image (``label_missing``: a labels mapping lacks this subject)."""

    subject_id: str
    path: Path
    label: Any = None
    site: str | None = None
    participant: str | None = None
    confounds: Any = None
    label_missing: bool = False


def index_nifti(
    bold_files: str | Path | Sequence[str | Path],
    *,
    labels: Sequence[int | None] | Mapping[str, int] | None = None,
    subject_ids: Sequence[str] | None = None,
    participants: Sequence[str | None] | Mapping[str, str] | None = None,
    sites: Sequence[str | None] | Mapping[str, str] | str | None = None,
    confounds: ConfoundsInput | Sequence[ConfoundsInput] | Mapping[str, ConfoundsInput] = None,
) -> list[NiftiScan]:
    """The BOLD files and their per-file labels, sites, participants and confounds
    (arguments as :func:`read_nifti`), without reading any image.

    Raises:
        DataError: an empty folder or glob. ConfigError: per-file arguments that do not
        match the files.
    """
    files = _expand_files(bold_files)
    ids = [str(s) for s in subject_ids] if subject_ids is not None else _file_ids(files)
    if len(ids) != len(files):
        raise ConfigError(f"subject_ids has {len(ids)} entries for {len(files)} BOLD files")
    lab = _per_file(labels, ids, "labels")
    site = _per_file(sites, ids, "sites")
    if isinstance(participants, (str, Path)):
        raise ConfigError("participants must be a sequence aligned with the files or a mapping by id")
    part = _per_file(participants, ids, "participants")
    conf = _per_file(confounds, ids, "confounds")
    return [
        NiftiScan(
            subject_id=sid,
            path=path,
            label=None if y is _MISSING else y,
            site=None if s is None or s is _MISSING else str(s),
            participant=None if pid is None or pid is _MISSING else str(pid),
            confounds=None if c is _MISSING else c,
            label_missing=y is _MISSING,
        )
        for sid, path, y, s, c, pid in zip(ids, files, lab, site, conf, part, strict=True)
    ]


def read_nifti_subject(scan: NiftiScan, atlas: Atlas, **options: Any) -> Subject:
    """Extract one indexed BOLD file's ROI time series (see :func:`index_nifti`): the
    per-subject step of :func:`read_nifti`, not yet validated. ``options``: the extraction
    arguments of :func:`read_nifti` (``confound_strategy``, ``standardize``, ``detrend``,
    ``low_pass``, ``high_pass``, ``t_r``, ``mask_img``, ``radius``, ``smoothing_fwhm``,
    ``allow_overlap``).

    Raises:
        DataError: no label in the labels mapping (``missing_label``), unreadable image,
            atlas and image in different spaces ...
    """
    path = scan.path
    if scan.label_missing:
        raise DataError(
            "no label for this subject in the labels mapping",
            source=str(path),
            reason="missing_label",
        )
    ts, tr = _extract(path, atlas, confounds=scan.confounds, **options)
    y = scan.label
    return Subject(
        id=scan.subject_id,
        timeseries=ts,
        label=None if y is None else int(y),
        site=scan.site,
        roi_names=list(atlas.roi_names),
        tr=tr,
        source=str(path),
        participant=scan.participant,
    )

def read_nifti(
    bold_files: str | Path | Sequence[str | Path],
    atlas: Atlas | str | Path | nib.Nifti1Image | np.ndarray,
    *,
    atlas_kind: AtlasKind = "auto",
    roi_names: Sequence[str] | None = None,
    labels: Sequence[int | None] | Mapping[str, int] | None = None,
    subject_ids: Sequence[str] | None = None,
    participants: Sequence[str | None] | Mapping[str, str] | None = None,
    sites: Sequence[str | None] | Mapping[str, str] | str | None = None,
    confounds: ConfoundsInput | Sequence[ConfoundsInput] | Mapping[str, ConfoundsInput] = None,
    confound_strategy: ConfoundStrategy = None,
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
    name: str = "nifti",
) -> Cohort:
    """Extract ROI time series from 4D BOLD images into a validated :class:`Cohort`.

    Args:
        bold_files: BOLD image paths, a folder of ``.nii[.gz]`` files, or a glob pattern.
        atlas: label image, 4D maps image, or ``(R, 3)`` coordinates / coordinates CSV.
        atlas_kind: ``"auto"``, ``"labels"``, ``"maps"`` or ``"coords"``.
        roi_names: names for the ``R`` ROIs (default: label values / ``mapN`` / ``seedN``).
        labels: per-file class labels (aligned sequence, or mapping by subject id; a
            mapping without an id excludes that subject with reason ``"missing_label"``);
            ``None`` for an unlabelled cohort.
        subject_ids: ids aligned with the files (default: file names, made unique with
            their parent folders).
        participants: participant per file (aligned sequence or mapping by subject id),
            for several runs / sessions of one person; cross-validation keeps them
            together. Default: each file is its own participant.
        sites: site per file (aligned sequence or mapping), or one site for all.
        confounds: per-file confounds (aligned sequence or mapping by id; a single value
            when there is one file): TSV path, DataFrame or ``(T, K)`` array.
        confound_strategy: columns to use; see :func:`select_confounds`.
        standardize, detrend, low_pass, high_pass, t_r, smoothing_fwhm: passed to the
            nilearn masker; ``t_r`` defaults to each image's header.
        mask_img: optional brain mask restricting the voxels used.
        radius: sphere radius in mm for coordinate atlases.
        allow_overlap: allow overlapping spheres (coordinate atlases).
        on_invalid, constant_roi, min_timepoints, n_rois: validation policies, see
            :func:`graphbrain.data.validation.validate_cohort`.

    Returns:
        A cohort of subjects with ``(T, R)`` float32 time series.
    """
    if on_invalid not in ("raise", "exclude"):
        raise ConfigError(f"on_invalid must be 'raise' or 'exclude', got {on_invalid!r}")
    at = load_atlas(atlas, atlas_kind, roi_names)
    scans = index_nifti(
        bold_files, labels=labels, subject_ids=subject_ids, participants=participants, sites=sites,
        confounds=confounds,
    )
    subjects: list[Subject] = []
    excluded: list[Exclusion] = []
    for scan in scans:
        try:
            subjects.append(
                read_nifti_subject(
                    scan,
                    at,
                    confound_strategy=confound_strategy,
                    standardize=standardize,
                    detrend=detrend,
                    low_pass=low_pass,
                    high_pass=high_pass,
                    t_r=t_r,
                    mask_img=mask_img,
                    radius=radius,
                    smoothing_fwhm=smoothing_fwhm,
                    allow_overlap=allow_overlap,
                )
            )
        except DataError as err:
            if on_invalid == "raise":
                raise
            excluded.append(Exclusion(scan.subject_id, err.source or str(scan.path), err.reason, str(err)))
    return validate_cohort(
        subjects,
        name=name,
        on_invalid=on_invalid,
        constant_roi=constant_roi,
        min_timepoints=min_timepoints,
        n_rois=n_rois if n_rois is not None else at.n_rois,
        excluded=excluded,
        roi_names=list(at.roi_names),
        meta={"atlas": at.source, "atlas_kind": at.kind},
    )
