"""Small on-disk cohorts for the batch tests (precomputed .npy files + a labels table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_cohort(
    folder: Path, n: int = 12, n_rois: int = 8, n_timepoints: int = 80, seed: int = 0, bad: bool = True
) -> dict:
    """``n`` subjects as ``.npy`` files plus ``labels.csv``; with ``bad``: one file is garbage
    (unreadable), one holds a NaN, one has a constant ROI, one label row has no file, and the
    last subject has a high phenotypic mean FD."""
    ts_dir = folder / "ts"
    ts_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ts = rng.standard_normal((n_timepoints, n_rois)).astype(np.float32) + 3.0
        sid = f"s{i:03d}"
        if bad and i == 2:
            ts[:, 1] = 0.0
        if bad and i == 4:
            ts[7, 3] = np.nan
        np.save(ts_dir / f"{sid}.npy", ts)
        rows.append({"subject_id": sid, "label": i % 2, "site": f"site{i % 3}",
                     "func_mean_fd": 0.9 if (bad and i == n - 1) else 0.1 + 0.01 * i})
    if bad:
        (ts_dir / "s005.npy").write_bytes(b"not a numpy file")
        rows.append({"subject_id": "s999", "label": 1, "site": "site0", "func_mean_fd": 0.1})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return {"source": "precomputed", "path_or_files": str(ts_dir), "labels_table": str(folder / "labels.csv")}
