"""Per-subject quality control, thresholds that exclude with a recorded reason, cohort plots.

Per subject:

* scan length: ``n_timepoints`` and, when the TR is known, ``scan_seconds``;
* temporal SNR per ROI: ``tSNR_r = |mean_t x_tr| / sd_t x_tr`` (sample sd, ``ddof=1``);
  summarised by its median and minimum over non-constant ROIs (ROI time series that
  were z-scored or band-pass filtered have a mean near 0, so their tSNR is near 0 by
  construction: only threshold tSNR on unstandardised signals);
* constant ROIs: zero-variance columns (e.g. a region outside the field of view);
* motion, when available: framewise displacement (Power et al. 2012) from a confounds
  table (its ``framewise_displacement`` column, or computed from the six rigid-body
  parameters: ``FD_t = sum |d trans| + 50 mm * sum |d rot|`` with rotations in radians),
  giving ``mean_fd``, ``max_fd`` and ``fd_fraction`` (share of volumes above
  ``fd_spike_mm``); otherwise ``mean_fd`` from a phenotypic column such as ABIDE's
  ``func_mean_fd`` (see :data:`~graphbrain.batch.tasks.MOTION_COLUMNS`).

:class:`QCThresholds` turns these into exclusions; each failed check gives a reason
code and a message naming the value and the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.errors import ConfigError

MOTION_PARAMS = (
    ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"),
    ("X", "Y", "Z", "RotX", "RotY", "RotZ"),
)


@dataclass
class QCThresholds:
    """Exclusion thresholds (``None`` switches a check off).

    Attributes:
        min_timepoints: shortest accepted scan (volumes).
        min_scan_seconds: shortest accepted scan in seconds (needs the TR).
        min_tsnr: lowest accepted median tSNR over ROIs.
        max_constant_rois: most constant ROIs accepted (0: any constant ROI excludes).
        max_mean_fd: highest accepted mean framewise displacement (mm); ABIDE-style
            studies use 0.2-0.5 mm.
        max_fd_fraction: highest accepted share of volumes with FD above ``fd_spike_mm``.
        fd_spike_mm: FD above which a volume counts as a motion spike.
        require_motion: exclude subjects without any motion estimate.
    """

    min_timepoints: int | None = 2
    min_scan_seconds: float | None = None
    min_tsnr: float | None = None
    max_constant_rois: int | None = None
    max_mean_fd: float | None = None
    max_fd_fraction: float | None = None
    fd_spike_mm: float = 0.5
    require_motion: bool = False

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> QCThresholds:
        values = dict(values or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown qc key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, qc: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(reason, message)`` for every failed threshold (empty: the subject passes)."""
        out: list[tuple[str, str]] = []
        t = qc["n_timepoints"]
        if self.min_timepoints is not None and t < self.min_timepoints:
            out.append(("too_short", f"scan has {t} time points, at least {self.min_timepoints} required (qc.min_timepoints)"))
        sec = qc.get("scan_seconds")
        if self.min_scan_seconds is not None:
            if sec is None:
                out.append(("missing_tr", "scan length in seconds is unknown (no TR) but qc.min_scan_seconds is set"))
            elif sec < self.min_scan_seconds:
                out.append(("too_short", f"scan lasts {sec:.1f} s, at least {self.min_scan_seconds} s required (qc.min_scan_seconds)"))
        if self.min_tsnr is not None and _lt(qc.get("tsnr_median"), self.min_tsnr):
            out.append(("low_tsnr", f"median tSNR {qc['tsnr_median']:.2f} < {self.min_tsnr} (qc.min_tsnr)"))
        nc = qc["n_constant_rois"]
        if self.max_constant_rois is not None and nc > self.max_constant_rois:
            out.append(("constant_roi", f"{nc} constant (zero-variance) ROI(s) {qc['constant_rois']}, at most {self.max_constant_rois} allowed (qc.max_constant_rois)"))
        fd = qc.get("mean_fd")
        if fd is None and self.require_motion:
            out.append(("missing_motion", "no motion estimate (no confounds with framewise displacement, no phenotypic mean-FD column) but qc.require_motion is set"))
        if self.max_mean_fd is not None and fd is not None and fd > self.max_mean_fd:
            out.append(("motion", f"mean framewise displacement {fd:.3f} mm > {self.max_mean_fd} mm (qc.max_mean_fd; from {qc.get('fd_source')})"))
        frac = qc.get("fd_fraction")
        if self.max_fd_fraction is not None and frac is not None and frac > self.max_fd_fraction:
            out.append(("motion", f"{100 * frac:.1f} % of volumes have FD > {self.fd_spike_mm} mm, at most {100 * self.max_fd_fraction:.1f} % allowed (qc.max_fd_fraction)"))
        return out


def _lt(v: Any, bound: float) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v < bound


def tsnr(timeseries: np.ndarray) -> np.ndarray:
    """Temporal SNR per ROI, ``|mean| / sd`` over time (``nan`` for constant ROIs)."""
    ts = np.asarray(timeseries, dtype=np.float64)
    sd = ts.std(axis=0, ddof=1) if ts.shape[0] > 1 else np.zeros(ts.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(ts.mean(axis=0)) / sd
    out[~np.isfinite(out)] = np.nan
    return out


def framewise_displacement(motion: np.ndarray, radius_mm: float = 50.0) -> np.ndarray:
    """Power framewise displacement from ``(T, 6)`` rigid-body parameters
    (3 translations in mm, 3 rotations in radians); the first volume gets 0."""
    m = np.asarray(motion, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 6:
        raise ConfigError(f"motion parameters must be (T, 6), got shape {m.shape}")
    d = np.abs(np.diff(m, axis=0))
    fd = d[:, :3].sum(axis=1) + radius_mm * d[:, 3:].sum(axis=1)
    return np.concatenate([[0.0], fd])


def fd_from_confounds(confounds: Any) -> np.ndarray | None:
    """FD per volume from a confounds table (path / DataFrame), or ``None`` when it has neither
    a ``framewise_displacement`` column nor the six motion parameters."""
    if confounds is None:
        return None
    if isinstance(confounds, (str, Path)):
        path = Path(confounds)
        sep = "," if path.suffix.lower() == ".csv" else "\t"
        table = pd.read_csv(path, sep=sep, na_values=["n/a", "NA", "NaN", ""])
    elif isinstance(confounds, pd.DataFrame):
        table = confounds
    else:
        return None
    if "framewise_displacement" in table.columns:
        return table["framewise_displacement"].fillna(0.0).to_numpy(dtype=np.float64)
    for cols in MOTION_PARAMS:
        if all(c in table.columns for c in cols):
            return framewise_displacement(table[list(cols)].fillna(0.0).to_numpy(dtype=np.float64))
    return None


def compute_qc(
    timeseries: np.ndarray,
    *,
    tr: float | None = None,
    roi_names: list[str] | None = None,
    fd: np.ndarray | None = None,
    covariates: Mapping[str, Any] | None = None,
    fd_spike_mm: float = 0.5,
) -> tuple[dict[str, Any], np.ndarray]:
    """QC measures of one scan: ``(row, tsnr_per_roi)``; see the module docstring."""
    from graphbrain.batch.tasks import MOTION_COLUMNS
    from graphbrain.data.validation import constant_rois

    ts = np.asarray(timeseries)
    t, r = ts.shape
    const = constant_rois(ts)
    snr = tsnr(ts)
    good = snr[np.isfinite(snr)]
    names = roi_names or [str(i) for i in range(r)]
    row: dict[str, Any] = {
        "n_timepoints": int(t),
        "n_rois": int(r),
        "tr": None if tr is None else float(tr),
        "scan_seconds": None if tr is None else float(t * tr),
        "tsnr_median": float(np.median(good)) if good.size else float("nan"),
        "tsnr_min": float(good.min()) if good.size else float("nan"),
        "n_constant_rois": int(const.size),
        "constant_rois": ",".join(names[i] if i < len(names) else str(i) for i in const),
        "mean_fd": None,
        "max_fd": None,
        "fd_fraction": None,
        "fd_source": None,
    }
    if fd is not None and len(fd):
        fd = np.asarray(fd, dtype=np.float64)
        row.update(
            mean_fd=float(fd.mean()),
            max_fd=float(fd.max()),
            fd_fraction=float((fd > fd_spike_mm).mean()),
            fd_source="confounds",
        )
    elif covariates:
        for col in MOTION_COLUMNS:
            v = covariates.get(col)
            if v is not None and not (isinstance(v, float) and np.isnan(v)):
                row.update(mean_fd=float(v), fd_source=f"phenotypic:{col}")
                break
    return row, snr.astype(np.float32)


def plot_cohort_qc(qc: pd.DataFrame, status: pd.DataFrame, path: str | Path, thresholds: QCThresholds | None = None) -> Path:
    """One PNG with four panels: scan length, median tSNR per site, mean FD (with the
    threshold), and subjects per status / exclusion reason."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from graphbrain.batch.atomic import write_bytes

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    if len(qc):
        ax.hist(qc["n_timepoints"], bins=30, color="#4c72b0")
        if thresholds is not None and thresholds.min_timepoints:
            ax.axvline(thresholds.min_timepoints, color="red", ls="--", label="threshold")
            ax.legend()
    ax.set(title="scan length", xlabel="time points", ylabel="subjects")
    ax = axes[0, 1]
    if len(qc) and "site" in qc:
        sites = sorted(qc["site"].fillna("unknown").astype(str).unique())
        vals = [qc.loc[qc["site"].fillna("unknown").astype(str) == s, "tsnr_median"].dropna().to_numpy() for s in sites]
        ax.boxplot(vals, showfliers=True)
        ax.set_xticks(range(1, len(sites) + 1), sites, rotation=45, ha="right", fontsize=8)
    ax.set(title="median tSNR over ROIs, per site", ylabel="tSNR")
    ax = axes[1, 0]
    fd = qc["mean_fd"].dropna().astype(float) if len(qc) and "mean_fd" in qc else pd.Series(dtype=float)
    if len(fd):
        ax.hist(fd, bins=30, color="#55a868")
        if thresholds is not None and thresholds.max_mean_fd is not None:
            ax.axvline(thresholds.max_mean_fd, color="red", ls="--", label="qc.max_mean_fd")
            ax.legend()
    else:
        ax.text(0.5, 0.5, "no motion estimates", ha="center", va="center", transform=ax.transAxes)
    ax.set(title="mean framewise displacement", xlabel="mm", ylabel="subjects")
    ax = axes[1, 1]
    if len(status):
        lab = status["status"].astype(str)
        reason = status.get("reason")
        if reason is not None:
            lab = lab.where(reason.isna(), lab + ":" + reason.astype(str))
        counts = lab.value_counts().sort_index()
        ax.barh(counts.index, counts.to_numpy(), color="#c44e52")
    ax.set(title="subjects per status / reason", xlabel="subjects")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return write_bytes(path, buf.getvalue())
