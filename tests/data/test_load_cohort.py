"""load_cohort: dispatch by source name, parameter checking, validation of synthetic data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graphbrain.data import load_cohort, make_synthetic_cohort
from graphbrain.data.loaders import READERS, valid_params
from graphbrain.errors import ConfigError


def test_synthetic_with_validation_params() -> None:
    cohort = load_cohort("synthetic", n_subjects=8, n_rois=6, n_timepoints=20, seed=3)
    ref = make_synthetic_cohort(n_subjects=8, n_rois=6, n_timepoints=20, seed=3)
    assert cohort.ids == ref.ids and cohort.meta["planted_rois"] == ref.meta["planted_rois"]
    np.testing.assert_array_equal(cohort[0].timeseries, ref[0].timeseries)
    # validation parameters are applied, not dropped: scans of 20 < 30 are excluded / raise
    short = load_cohort("synthetic", n_subjects=8, n_rois=6, n_timepoints=20, min_timepoints=30)
    assert len(short) == 0 and {e.reason for e in short.excluded} == {"too_short"}
    with pytest.raises(ValueError, match="too short"):
        load_cohort(
            "synthetic", n_subjects=8, n_timepoints=20, min_timepoints=30, on_invalid="raise"
        )


def test_unknown_source_and_parameter() -> None:
    with pytest.raises(ConfigError, match="unknown data source 'abide'.*'abide_pcp'.*'synthetic'"):
        load_cohort("abide")
    with pytest.raises(
        ConfigError, match="unknown parameter\\(s\\) \\['n_subject'\\].*'n_subjects'"
    ):
        load_cohort("synthetic", n_subject=10)
    with pytest.raises(ConfigError, match="'constant_roi'.*'strategy'"):
        load_cohort("abide_pcp", root="x", atlass="ho")
    with pytest.raises(ConfigError, match="needs parameter\\(s\\) \\['root'\\]"):
        load_cohort("abide_pcp")
    assert set(READERS) == {"synthetic", "abide_pcp", "nifti", "bids", "precomputed"}
    for source in READERS:
        assert {"on_invalid", "constant_roi", "min_timepoints"} <= set(valid_params(source))


def test_dispatch_to_file_readers(tmp_path: Path, block_atlas, planted_bold, write_bold) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(tmp_path / f"s{i}.npy", rng.standard_normal((20, 4)))
    pd.DataFrame({"subject_id": ["s0", "s1", "s2"], "label": [0, 1, 0]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    pre = load_cohort(
        "precomputed", path_or_files=str(tmp_path), labels_table=str(tmp_path / "labels.csv")
    )
    assert pre.ids == ["s0", "s1", "s2"] and pre.labels.tolist() == [0, 1, 0]

    labels, affine = block_atlas
    data, _ = planted_bold(labels, n_vols=20)
    bold = write_bold(tmp_path / "img" / "sub.nii.gz", data, affine)
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "atlas.nii.gz")
    nif = load_cohort(
        "nifti", bold_files=[str(bold)], atlas=str(tmp_path / "atlas.nii.gz"), labels=[1]
    )
    assert nif.ids == ["sub"] and nif[0].timeseries.shape == (20, 4)


@pytest.mark.realdata
def test_abide_through_loader(shared_data: Path) -> None:
    root = shared_data / "abide_pcp"
    if not root.is_dir():
        pytest.skip("ABIDE-PCP data not available")
    cohort = load_cohort("abide_pcp", root=str(root), sites=["OHSU"], constant_roi="keep")
    assert len(cohort) == 25 and set(cohort.sites) == {"OHSU"} and cohort.n_rois == 111
