"""ROI names, MNI coordinates and groups for explanation tables and brain figures.

:func:`load_atlas` matches the model's ROI ids (``cohort.roi_names``; for ABIDE-PCP the
label values of the time-series header, ``#10`` -> ``"10"``) to

* a label table (``labels=``): CSV/TSV with ``#`` comments, columns ``id, name`` and
  optionally ``group`` / ``network`` / ``lobe`` and ``x, y, z`` (header optional: a
  two-column headerless table such as PCP's ``ho_labels.csv`` is read as id, name);
* a label image (``image=``): a 3-D integer parcellation in MNI space; coordinates are
  the parcels' centres from nilearn's ``find_parcellation_cut_coords`` (the largest
  component of each parcel), matched to ROI ids by label value;
* or coordinates of a coordinate atlas (``coords=``): an ``(R, 3)`` array in ROI order
  or a CSV with ``x, y, z`` columns (and optionally ``id``/``name``).

When nothing is given, ROI ids are their own names and figures that need coordinates
are skipped. Without a group column, names that state their hemisphere ("Left ...",
"..._R") group the ROIs by hemisphere for the heatmaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.errors import ConfigError, DataError

GROUP_COLUMNS = ("group", "network", "lobe", "system", "yeo")


@dataclass
class Atlas:
    """Per-ROI metadata in the model's ROI order."""

    ids: list[str]
    labels: list[str]
    coords: np.ndarray | None = None
    groups: list[str] | None = None
    source: str = ""

    @property
    def n_rois(self) -> int:
        return len(self.ids)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"roi": np.arange(self.n_rois), "roi_id": self.ids, "label": self.labels})
        if self.groups is not None:
            df["group"] = self.groups
        if self.coords is not None:
            df[["x", "y", "z"]] = np.round(self.coords, 1)
        return df

    def order(self) -> np.ndarray:
        """ROI order for plots: atlas order, grouped (stably) when groups are known."""
        if self.groups is None:
            return np.arange(self.n_rois)
        first = {g: i for i, g in reversed(list(enumerate(self.groups)))}
        return np.array(sorted(range(self.n_rois), key=lambda i: (first[self.groups[i]], i)))


def _key(v: Any) -> str:
    s = str(v).strip().lstrip("#")
    try:
        f = float(s)
        return str(int(f)) if f.is_integer() else s
    except ValueError:
        return s


def read_label_table(path: str | Path) -> pd.DataFrame:
    """A label table as a frame with ``id`` and ``name`` (+ ``group``, ``x``, ``y``, ``z`` if present)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"atlas label table {p} does not exist")
    sep = "\t" if p.suffix.lower() in (".tsv", ".txt") else ","
    raw = pd.read_csv(p, sep=sep, comment="#", header=None, dtype=str, skipinitialspace=True)
    if raw.empty or raw.shape[1] < 2:
        raise DataError(f"{p}: expected at least two columns (id, name)", source=str(p), reason="bad_label_table")
    first = [str(v).strip().lower() for v in raw.iloc[0]]
    if not _is_number(first[0]):
        raw.columns = first
        raw = raw.iloc[1:].reset_index(drop=True)
        cols = {c: c for c in raw.columns}
        idc = next((c for c in cols if c in ("id", "index", "label_id", "value", "roi", "roi number")), raw.columns[0])
        namec = next((c for c in cols if c in ("name", "label", "region", "roi_name")), raw.columns[1])
        out = pd.DataFrame({"id": raw[idc].map(_key), "name": raw[namec].astype(str).str.strip()})
        for g in GROUP_COLUMNS:
            if g in raw.columns:
                out["group"] = raw[g].astype(str).str.strip()
                break
        if all(c in raw.columns for c in ("x", "y", "z")):
            out[["x", "y", "z"]] = raw[["x", "y", "z"]].astype(float).to_numpy()
        return out
    out = pd.DataFrame({"id": raw[0].map(_key), "name": raw[1].astype(str).str.strip()})
    if raw.shape[1] >= 3:
        out["group"] = raw[2].astype(str).str.strip()
    return out


def _is_number(s: str) -> bool:
    try:
        float(s.lstrip("#"))
        return True
    except ValueError:
        return False


def image_coords(image: str | Path | Any) -> dict[str, np.ndarray]:
    """``{label value: MNI centre}`` of every parcel of a label image (nilearn)."""
    from nilearn.plotting import find_parcellation_cut_coords

    if isinstance(image, str | Path) and not Path(image).exists():
        raise ConfigError(f"atlas image {image} does not exist")
    coords, values = find_parcellation_cut_coords(str(image) if isinstance(image, Path) else image, return_label_names=True)
    return {_key(v): np.asarray(c, dtype=np.float64) for v, c in zip(values, coords)}


def load_atlas(
    roi_ids: list[str] | None,
    *,
    n_rois: int | None = None,
    image: str | Path | Any | None = None,
    labels: str | Path | pd.DataFrame | None = None,
    coords: str | Path | np.ndarray | None = None,
) -> Atlas:
    """Names, coordinates and groups for the model's ROIs (see the module docstring)."""
    if roi_ids is None:
        if n_rois is None:
            raise ConfigError("load_atlas needs the ROI ids or their number")
        roi_ids = [str(i) for i in range(n_rois)]
    ids = [_key(r) for r in roi_ids]
    names = [str(r) for r in roi_ids]
    groups: list[str] | None = None
    xyz: np.ndarray | None = None
    source = []
    if labels is not None:
        table = labels if isinstance(labels, pd.DataFrame) else read_label_table(labels)
        table = table.assign(id=table["id"].map(_key)).drop_duplicates("id").set_index("id")
        hit = [i in table.index for i in ids]
        if not any(hit):
            raise DataError(
                f"none of the ROI ids ({ids[:3]}...) is in the label table's id column "
                f"({list(table.index[:3])}...); is it the atlas the time series were extracted with?",
                source=str(labels) if not isinstance(labels, pd.DataFrame) else "labels",
                reason="atlas_mismatch",
            )
        names = [str(table.loc[i, "name"]) if h else f"ROI {i} (not in label table)" for i, h in zip(ids, hit)]
        if "group" in table.columns:
            groups = [str(table.loc[i, "group"]) if h else "unlabelled" for i, h in zip(ids, hit)]
        if all(c in table.columns for c in ("x", "y", "z")):
            xyz = np.array([table.loc[i, ["x", "y", "z"]].to_numpy(float) if h else [np.nan] * 3 for i, h in zip(ids, hit)])
        source.append(str(labels) if not isinstance(labels, pd.DataFrame) else "label table")
    if image is not None:
        found = image_coords(image)
        miss = [i for i in ids if i not in found]
        if len(miss) == len(ids):
            raise DataError(
                f"none of the ROI ids ({ids[:3]}...) is a label value of the atlas image",
                source=str(image),
                reason="atlas_mismatch",
            )
        xyz = np.array([found.get(i, np.full(3, np.nan)) for i in ids])
        source.append(str(image))
    if coords is not None:
        if isinstance(coords, str | Path):
            df = pd.read_csv(coords, comment="#")
            df.columns = [str(c).strip().lower() for c in df.columns]
            if not all(c in df.columns for c in ("x", "y", "z")):
                raise DataError(f"{coords}: a coordinate table needs x, y, z columns", source=str(coords))
            if "id" in df.columns:
                df = df.assign(id=df["id"].map(_key)).set_index("id")
                xyz = np.array([df.loc[i, ["x", "y", "z"]].to_numpy(float) if i in df.index else [np.nan] * 3 for i in ids])
            else:
                xyz = df[["x", "y", "z"]].to_numpy(float)
            if labels is None and "name" in df.columns and "id" not in df.columns:
                names = df["name"].astype(str).tolist()
            source.append(str(coords))
        else:
            xyz = np.asarray(coords, dtype=np.float64)
            source.append("coordinates")
        if xyz.shape != (len(ids), 3):
            raise DataError(f"coordinates have shape {xyz.shape}, expected ({len(ids)}, 3)", reason="atlas_mismatch")
    if groups is None:
        groups = hemisphere_groups(names)
    return Atlas(ids=ids, labels=names, coords=xyz, groups=groups, source="; ".join(source))


def hemisphere_groups(names: list[str]) -> list[str] | None:
    """``left`` / ``right`` / ``other`` from names such as "Left Thalamus" or "Precentral_L",
    when at least 80 % of the names say their hemisphere (atlases without a group column)."""
    out = []
    for n in names:
        low = n.strip().lower()
        if low.startswith("left ") or low.endswith(("_l", " l", "-lh", "_lh")):
            out.append("left")
        elif low.startswith("right ") or low.endswith(("_r", " r", "-rh", "_rh")):
            out.append("right")
        else:
            out.append("other")
    return out if names and out.count("other") <= 0.2 * len(names) else None
