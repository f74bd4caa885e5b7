"""NIfTI + atlas reader: planted signals, equality with nilearn maskers, every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiSpheresMasker

from graphbrain.data import (
    extract_timeseries,
    load_atlas,
    read_nifti,
    read_tr,
    select_confounds,
)
from graphbrain.errors import ConfigError, DataError

Planted = Callable[..., tuple[np.ndarray, np.ndarray]]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture
def atlas_img(block_atlas: tuple[np.ndarray, np.ndarray]) -> nib.Nifti1Image:
    labels, affine = block_atlas
    return nib.Nifti1Image(labels, affine)


@pytest.fixture
def two_runs(
    tmp_path: Path, block_atlas, planted_bold: Planted, write_bold
) -> tuple[list[Path], list[np.ndarray]]:
    labels, affine = block_atlas
    files, signals = [], []
    for i in range(2):
        data, sig = planted_bold(labels, n_vols=60, seed=i)
        files.append(write_bold(tmp_path / f"run{i}" / "bold.nii.gz", data, affine, tr=2.0))
        signals.append(sig)
    return files, signals


def test_planted_signals_recovered(two_runs, atlas_img) -> None:
    files, signals = two_runs
    cohort = read_nifti(files, atlas_img, labels=[1, 0], sites="siteA", on_invalid="raise")
    assert cohort.ids == [
        "run0_bold",
        "run1_bold",
    ]  # same file name: parent folder makes them unique
    assert cohort.roi_names == ["1", "2", "3", "4"] and cohort.labels.tolist() == [1, 0]
    for subj, sig in zip(cohort, signals, strict=True):
        assert subj.timeseries.shape == (60, 4) and subj.tr == 2.0 and subj.site == "siteA"
        for k in range(4):
            assert _corr(subj.timeseries[:, k], sig[:, k]) > 0.99
            others = [abs(_corr(subj.timeseries[:, k], sig[:, j])) for j in range(4) if j != k]
            assert max(others) < 0.5


def test_equals_nilearn_labels_masker_with_cleaning(two_runs, atlas_img) -> None:
    files, _ = two_runs
    rng = np.random.default_rng(3)
    conf = pd.DataFrame(rng.standard_normal((60, 3)), columns=["a", "b", "c"])
    params = {"detrend": True, "high_pass": 0.01, "low_pass": 0.2, "t_r": 2.0}
    ours = extract_timeseries(
        files[0], atlas_img, confounds=conf, standardize="zscore_sample", **params
    )
    ref = NiftiLabelsMasker(atlas_img, standardize="zscore_sample", **params).fit_transform(
        str(files[0]), confounds=conf.to_numpy()
    )
    assert ours.shape == (60, 4)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_maps_and_coordinate_atlases_equal_nilearn(two_runs, block_atlas, tmp_path) -> None:
    files, signals = two_runs
    labels, affine = block_atlas
    maps = nib.Nifti1Image(
        np.stack([(labels == k).astype(np.float32) for k in range(1, 5)], -1), affine
    )
    ours = extract_timeseries(files[0], maps)
    ref = NiftiMapsMasker(maps, standardize="zscore_sample", detrend=True, t_r=2.0).fit_transform(
        str(files[0])
    )
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert _corr(ours[:, 2], signals[0][:, 2]) > 0.99

    ijk = np.array([[1.5, 1.5, 2.5], [5.5, 1.5, 2.5], [1.5, 5.5, 2.5], [5.5, 5.5, 2.5]])
    xyz = nib.affines.apply_affine(affine, ijk)
    csv = tmp_path / "seeds.csv"
    pd.DataFrame(xyz, columns=["x", "y", "z"]).to_csv(csv, index=False)
    assert load_atlas(csv).kind == "coords"
    cohort = read_nifti(files[:1], csv, radius=4.0, on_invalid="raise")
    assert cohort.roi_names == ["seed0", "seed1", "seed2", "seed3"]
    ref = NiftiSpheresMasker(
        [tuple(c) for c in xyz], radius=4.0, standardize="zscore_sample", detrend=True, t_r=2.0
    ).fit_transform(str(files[0]))
    np.testing.assert_allclose(cohort[0].timeseries, ref, atol=1e-5)
    for k in range(4):
        assert _corr(cohort[0].timeseries[:, k], signals[0][:, k]) > 0.99


def test_atlas_on_other_grid_is_resampled(two_runs, block_atlas) -> None:
    files, signals = two_runs
    labels, affine = block_atlas
    fine = np.repeat(np.repeat(np.repeat(labels, 2, 0), 2, 1), 2, 2)  # 1.5 mm, same extent
    fine_affine = affine.copy()
    fine_affine[:3, :3] /= 2
    fine_affine[:3, 3] -= 0.75
    ts = extract_timeseries(files[0], nib.Nifti1Image(fine, fine_affine))
    assert ts.shape == (60, 4)
    for k in range(4):
        assert _corr(ts[:, k], signals[0][:, k]) > 0.99


def test_tr_from_header_units(tmp_path, block_atlas, planted_bold) -> None:
    labels, affine = block_atlas
    data, _ = planted_bold(labels, n_vols=20)
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_zooms((3.0, 3.0, 3.0, 1500.0))
    img.header.set_xyzt_units("mm", "msec")
    assert read_tr(img) == pytest.approx(1.5)
    img.header.set_zooms((3.0, 3.0, 3.0, 0.0))
    assert read_tr(img) is None
    path = tmp_path / "notr.nii.gz"
    nib.save(img, path)
    with pytest.raises(DataError, match="notr.nii.gz: band-pass filtering needs the repetition"):
        extract_timeseries(path, nib.Nifti1Image(labels, affine), high_pass=0.01)
    ts = extract_timeseries(path, nib.Nifti1Image(labels, affine), high_pass=0.01, t_r=2.0)
    assert ts.shape == (20, 4)


def test_select_confounds_strategies() -> None:
    rng = np.random.default_rng(0)
    cols = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    table = pd.DataFrame(rng.standard_normal((10, 6)), columns=cols)
    for c in cols:
        table[c + "_derivative1"] = table[c].diff()  # NaN in the first row, as fMRIPrep writes
    table["white_matter"], table["csf"], table["global_signal"] = rng.standard_normal((3, 10))
    table["cosine00"] = np.linspace(-1, 1, 10)
    assert select_confounds(table, "motion").shape == (10, 6)
    assert select_confounds(table, "motion+wm_csf").shape == (10, 8)
    assert select_confounds(table, "motion+wm_csf+gsr").shape == (10, 9)
    both = select_confounds(table, "motion+derivatives")
    assert both.shape == (10, 12) and np.isfinite(both).all() and (both[0, 6:] == 0).all()
    np.testing.assert_allclose(both[1:, 6], np.diff(table["trans_x"]))
    np.testing.assert_allclose(select_confounds(table, ["csf"])[:, 0], table["csf"])
    assert select_confounds(table, "wm_csf+cosine").shape == (10, 3)
    legacy = pd.DataFrame(
        rng.standard_normal((10, 8)),
        columns=["X", "Y", "Z", "RotX", "RotY", "RotZ", "WhiteMatter", "CSF"],
    )
    assert select_confounds(legacy, "motion+wm_csf").shape == (10, 8)
    with pytest.raises(ConfigError, match="unknown confound strategy token 'motoin'"):
        select_confounds(table, "motoin")
    with pytest.raises(DataError, match="lacks column\\(s\\) \\['nope'\\]") as info:
        select_confounds(table, ["nope"])
    assert info.value.reason == "missing_confounds"
    with pytest.raises(DataError, match="'gsr' needs columns"):
        select_confounds(legacy, "motion+gsr")
    middle = table.copy()
    middle.loc[5, "csf"] = np.nan
    with pytest.raises(DataError, match="'csf' has NaN/Inf at row 5") as info:
        select_confounds(middle, "wm_csf")
    assert info.value.reason == "bad_confounds"
    with pytest.raises(DataError, match="confounds have 10 rows but the image has 12 volumes"):
        select_confounds(table, "motion", n_timepoints=12)


def test_atlas_errors(tmp_path, block_atlas) -> None:
    labels, affine = block_atlas
    with pytest.raises(DataError, match="atlas has no region") as info:
        load_atlas(nib.Nifti1Image(np.zeros_like(labels), affine))
    assert info.value.reason == "empty_atlas"
    with pytest.raises(DataError, match="non-integer values"):
        load_atlas(nib.Nifti1Image(labels * 0.5, affine))
    with pytest.raises(DataError, match="shape \\(N, 3\\)"):
        load_atlas(np.zeros((4, 2)))
    garbage = tmp_path / "atlas.nii.gz"
    garbage.write_bytes(b"garbage" * 50)
    with pytest.raises(DataError, match="atlas.nii.gz: cannot read atlas as NIfTI") as info:
        load_atlas(garbage)
    assert info.value.reason == "unreadable"
    with pytest.raises(ConfigError, match="roi_names has 2 names but the atlas has 4 ROIs"):
        load_atlas(nib.Nifti1Image(labels, affine), roi_names=["a", "b"])


# --- every bad input: an error naming the file under "raise", an exclusion under "exclude" ---


def _garbage(path: Path, **_) -> None:
    path.write_bytes(b"\x1f\x8b\x08 definitely not a NIfTI file" * 20)


def _truncated(path: Path, **_) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _three_d(path: Path, labels, affine, planted_bold, write_bold, **_) -> None:
    data, _ = planted_bold(labels, n_vols=5)
    nib.save(nib.Nifti1Image(data[..., 0].astype(np.float32), affine), path)


def _nan(path: Path, labels, affine, planted_bold, write_bold, **_) -> None:
    data, _ = planted_bold(labels, n_vols=30, seed=5)
    data[1, 1, 2, 7] = np.nan
    write_bold(path, data, affine)


def _short(path: Path, labels, affine, planted_bold, write_bold, **_) -> None:
    data, _ = planted_bold(labels, n_vols=4, seed=5)
    write_bold(path, data, affine)


def _constant(path: Path, labels, affine, planted_bold, write_bold, **_) -> None:
    data, _ = planted_bold(labels, n_vols=30, seed=5)
    data[labels == 3] = 7.0
    write_bold(path, data, affine)


def _far_away(path: Path, labels, affine, planted_bold, write_bold, **_) -> None:
    data, _ = planted_bold(labels, n_vols=30, seed=5)
    shifted = affine.copy()
    shifted[:3, 3] += 1000.0
    write_bold(path, data, shifted)


def _no_file(path: Path, **_) -> None:
    path.unlink()


NIFTI_CASES = [
    ("garbage bytes", _garbage, "unreadable", "cannot read BOLD image as NIfTI", {}),
    ("truncated", _truncated, "unreadable", "cannot read BOLD image as NIfTI", {}),
    ("3D image", _three_d, "wrong_shape", "expected a 4D BOLD image .* got 3D", {}),
    ("nan voxel", _nan, "non_finite", "1 voxel\\(s\\) inside the atlas regions hold NaN/Inf", {}),
    ("too short", _short, "too_short", "too short: 4 time points", {"min_timepoints": 10}),
    (
        "constant roi",
        _constant,
        "constant_roi",
        "constant \\(zero-variance\\) ROI\\(s\\): \\['3'\\]",
        {"standardize": False, "detrend": False},
    ),
    ("atlas outside image", _far_away, "atlas_mismatch", "does not overlap", {}),
    ("missing file", _no_file, "missing_file", "BOLD image file not found", {}),
]


@pytest.mark.parametrize(
    ("case", "spoil", "reason", "message", "extra"), NIFTI_CASES, ids=[c[0] for c in NIFTI_CASES]
)
def test_bad_bold_raises_or_is_excluded(
    two_runs,
    atlas_img,
    block_atlas,
    planted_bold,
    write_bold,
    tmp_path,
    case,
    spoil,
    reason,
    message,
    extra,
) -> None:
    files, _ = two_runs
    labels, affine = block_atlas
    bad = tmp_path / "bad" / "bold.nii.gz"
    bad.parent.mkdir()
    bad.write_bytes(files[0].read_bytes())
    spoil(bad, labels=labels, affine=affine, planted_bold=planted_bold, write_bold=write_bold)
    all_files = [*files, bad]
    policy = {"constant_roi": "raise"} if reason == "constant_roi" else {"on_invalid": "raise"}
    with pytest.raises(DataError, match=message) as info:
        read_nifti(all_files, atlas_img, **policy, **extra)
    assert info.value.reason == reason
    assert "bad/bold.nii.gz" in str(info.value)

    cohort = read_nifti(all_files, atlas_img, on_invalid="exclude", constant_roi="exclude", **extra)
    assert len(cohort) == 2 and cohort.ids == ["run0_bold", "run1_bold"]
    assert [(e.subject_id, e.reason) for e in cohort.excluded] == [("bad_bold", reason)]
    assert "bad/bold.nii.gz" in (cohort.excluded[0].source or "")


@pytest.mark.filterwarnings("ignore:Non-finite values detected")
def test_nan_outside_every_region_is_harmless(
    tmp_path, block_atlas, planted_bold, atlas_img, write_bold
) -> None:
    labels, affine = block_atlas
    data, signals = planted_bold(labels, n_vols=30)
    data[0, 0, 0, :] = np.nan  # a background voxel, as some pipelines write outside the brain
    path = write_bold(tmp_path / "nan_bg.nii.gz", data, affine)
    cohort = read_nifti([path], atlas_img, on_invalid="raise")
    assert np.isfinite(cohort[0].timeseries).all()
    assert _corr(cohort[0].timeseries[:, 0], signals[:, 0]) > 0.99


@pytest.mark.filterwarnings("ignore:After applying mask to the labels image")
def test_label_without_voxels_in_mask_is_a_constant_roi(two_runs, atlas_img, block_atlas) -> None:
    files, _ = two_runs
    labels, affine = block_atlas
    mask = nib.Nifti1Image(((labels > 0) & (labels != 4)).astype(np.int8), affine)
    kept = read_nifti(files, atlas_img, mask_img=mask, constant_roi="keep")
    assert kept.n_rois == 4 and np.all(kept[0].timeseries[:, 3] == 0)
    assert kept.meta["flags"]["run0_bold"] == ["constant_roi:3"]
    dropped = read_nifti(files, atlas_img, mask_img=mask)
    assert len(dropped) == 0 and {e.reason for e in dropped.excluded} == {"constant_roi"}


def test_missing_label_and_confound_problems(two_runs, atlas_img) -> None:
    files, _ = two_runs
    labels = {"run0_bold": 1}
    with pytest.raises(DataError, match="run1.*no label for this subject") as info:
        read_nifti(files, atlas_img, labels=labels, on_invalid="raise")
    assert info.value.reason == "missing_label"
    cohort = read_nifti(files, atlas_img, labels=labels)
    assert cohort.ids == ["run0_bold"] and cohort.excluded[0].reason == "missing_label"

    short_conf = np.random.default_rng(0).standard_normal((50, 2))
    good_conf = np.random.default_rng(1).standard_normal((60, 2))
    with pytest.raises(DataError, match="confounds have 50 rows but the image has 60 volumes"):
        read_nifti(files, atlas_img, confounds=[good_conf, short_conf], on_invalid="raise")
    cohort = read_nifti(files, atlas_img, confounds=[good_conf, short_conf])
    assert [e.reason for e in cohort.excluded] == ["confounds_mismatch"]
    with pytest.raises(ConfigError, match="confounds must be a list"):
        read_nifti(files, atlas_img, confounds=good_conf)
    with pytest.raises(ConfigError, match="labels has 3 entries for 2 BOLD files"):
        read_nifti(files, atlas_img, labels=[0, 1, 1])


# --- real 4D BOLD: Haxby 2001, subject 1 ---


@pytest.mark.realdata
def test_haxby_end_to_end(shared_data: Path) -> None:
    sub = shared_data / "haxby2001" / "sub001"
    bold = [sub / "BOLD" / f"task001_run00{i}" / "bold_25mm.nii.gz" for i in (1, 2)]
    if not all(b.is_file() for b in bold):
        pytest.skip("Haxby data not available")
    img = nib.load(bold[0])
    assert img.shape == (6, 10, 10, 121) and read_tr(img) == 2.5

    # (a) the Harvard-Oxford cortical label mask shipped on the same grid (21 labels)
    hoc = sub / "masks" / "25mm" / "hoc.nii.gz"
    rng = np.random.default_rng(0)
    conf = rng.standard_normal((121, 2))
    ours = extract_timeseries(bold[0], hoc, confounds=conf, high_pass=0.01)
    ref = NiftiLabelsMasker(
        str(hoc), standardize="zscore_sample", detrend=True, high_pass=0.01, t_r=2.5
    ).fit_transform(str(bold[0]), confounds=conf)
    assert ours.shape == (121, 21)
    np.testing.assert_allclose(ours, ref, atol=1e-5)

    # (b) the brain mask split into 4 parcels along the anterior-posterior axis
    brain_img = nib.load(sub / "masks" / "25mm" / "brain.nii.gz")
    brain = np.asarray(brain_img.dataobj) > 0
    y = np.nonzero(brain)[1]
    cuts = np.quantile(y, [0.25, 0.5, 0.75])
    parcels = np.zeros(brain.shape, dtype=np.int16)
    parcels[brain] = 1 + np.searchsorted(cuts, y, side="right")
    atlas = nib.Nifti1Image(parcels, brain_img.affine)
    cohort = read_nifti(bold, atlas, labels=[0, 1], on_invalid="raise", constant_roi="raise")
    assert cohort.ids == ["task001_run001_bold_25mm", "task001_run002_bold_25mm"]
    assert cohort.n_rois == 4 and all(
        s.timeseries.shape == (121, 4) and s.tr == 2.5 for s in cohort
    )
    ref = NiftiLabelsMasker(
        atlas, standardize="zscore_sample", detrend=True, t_r=2.5
    ).fit_transform(str(bold[1]))
    np.testing.assert_allclose(cohort[1].timeseries, ref, atol=1e-5)
