"""BIDS / fMRIPrep reader on a tiny tree built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graphbrain.data import discover_fmriprep, parse_bids_name, read_bids
from graphbrain.errors import ConfigError, DataError

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
T = 50


def _confounds(rng: np.random.Generator, csf: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(0.01 * rng.standard_normal((T, 6)), columns=MOTION)
    for c in MOTION:
        table[c + "_derivative1"] = table[c].diff()
    table["white_matter"] = rng.standard_normal(T)
    table["csf"] = csf
    table["global_signal"] = rng.standard_normal(T)
    return table


def make_bids(root: Path, block_atlas, planted_bold, write_bold, amp: float = 3.0) -> dict:
    """Dataset root with participants.tsv and derivatives/fmriprep:

    sub-01, sub-02 (session ses-1), sub-03 with legacy ``_desc-confounds_regressors.tsv``,
    sub-04 without a confounds file, sub-05 listed but without BOLD; every BOLD carries a
    planted ``csf`` confound of amplitude ``amp`` in all brain voxels."""
    labels, affine = block_atlas
    rng = np.random.default_rng(42)
    deriv = root / "derivatives" / "fmriprep"
    csfs = {}
    for i, sub in enumerate(["01", "02", "03", "04"]):
        func = deriv / f"sub-{sub}" / ("ses-1/func" if sub == "02" else "func")
        ses = "_ses-1" if sub == "02" else ""
        stem = f"sub-{sub}{ses}_task-rest"
        csf = rng.standard_normal(T)
        csfs[f"sub-{sub}"] = csf
        data, _ = planted_bold(labels, n_vols=T, seed=i, confound=csf, amp=amp)
        bold = write_bold(func / f"{stem}_space-MNI_desc-preproc_bold.nii.gz", data, affine, tr=1.0)
        (func / f"{stem}_space-MNI_desc-preproc_bold.json").write_text(
            json.dumps({"RepetitionTime": 2.0})
        )
        # a mask with the same entities must not be mistaken for BOLD
        nib.save(
            nib.Nifti1Image((labels > 0).astype(np.uint8), affine),
            func / f"{stem}_space-MNI_desc-brain_mask.nii.gz",
        )
        table = _confounds(rng, csf)
        if sub == "03":
            legacy = table.rename(
                columns={
                    "trans_x": "X",
                    "trans_y": "Y",
                    "trans_z": "Z",
                    "rot_x": "RotX",
                    "rot_y": "RotY",
                    "rot_z": "RotZ",
                    "white_matter": "WhiteMatter",
                    "csf": "CSF",
                }
            )
            legacy.to_csv(
                func / f"{stem}_desc-confounds_regressors.tsv", sep="\t", index=False, na_rep="n/a"
            )
        elif sub != "04":
            table.to_csv(
                func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a"
            )
        assert bold.is_file()
    pd.DataFrame(
        {
            "participant_id": ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"],
            "diagnosis": ["ASD", "TD", "ASD", "TD", "ASD"],
            "site": ["A", "A", "B", "B", "B"],
            "age": [10.5, 11, "n/a", 9, 12],
            "sex": ["M", "F", "M", "F", "M"],
        }
    ).to_csv(root / "participants.tsv", sep="\t", index=False)
    return csfs


def test_parse_bids_name() -> None:
    ents, suffix, ext = parse_bids_name(
        "sub-01_ses-2_task-rest_run-1_space-MNI_desc-preproc_bold.nii.gz"
    )
    assert ents == {
        "sub": "01",
        "ses": "2",
        "task": "rest",
        "run": "1",
        "space": "MNI",
        "desc": "preproc",
    }
    assert (suffix, ext) == ("bold", ".nii.gz")
    with pytest.raises(ValueError):
        parse_bids_name("notbids.nii.gz")


def test_discovery(tmp_path, block_atlas, planted_bold, write_bold) -> None:
    make_bids(tmp_path, block_atlas, planted_bold, write_bold)
    runs = discover_fmriprep(tmp_path)
    assert [r.subject for r in runs] == ["01", "02", "03", "04"]
    assert runs[1].entities["ses"] == "1" and runs[1].scan_id == "sub-02_ses-1_task-rest"
    assert runs[0].confounds.name == "sub-01_task-rest_desc-confounds_timeseries.tsv"
    assert runs[2].confounds.name == "sub-03_task-rest_desc-confounds_regressors.tsv"
    assert runs[3].confounds is None
    assert discover_fmriprep(tmp_path, task="other") == []
    assert len(discover_fmriprep(tmp_path / "derivatives" / "fmriprep", space="MNI")) == 4


def test_read_bids_labels_confounds_and_exclusions(
    tmp_path, block_atlas, planted_bold, write_bold
) -> None:
    csfs = make_bids(tmp_path, block_atlas, planted_bold, write_bold)
    labels, affine = block_atlas
    atlas = nib.Nifti1Image(labels, affine)
    cohort = read_bids(tmp_path, atlas, task="rest", label_map={"ASD": 1, "TD": 0})
    assert cohort.ids == ["sub-01", "sub-02", "sub-03"]
    assert cohort.labels.tolist() == [1, 0, 1]
    assert list(cohort.sites) == ["A", "A", "B"]
    assert [s.tr for s in cohort] == [2.0, 2.0, 2.0]  # the sidecar wins over the header's 1.0
    assert cohort[0].covariates["age"] == 10.5 and cohort[0].covariates["sex"] == "M"
    assert cohort[2].covariates["age"] is None
    assert {(e.subject_id, e.reason) for e in cohort.excluded} == {
        ("sub-04", "missing_confounds"),
        ("sub-05", "missing_file"),
    }
    # the planted csf confound is regressed out: ROI series ~uncorrelated with it
    for s in cohort:
        r = [abs(np.corrcoef(s.timeseries[:, k], csfs[s.id])[0, 1]) for k in range(4)]
        assert max(r) < 1e-3
    # ... while without regression it dominates the ROI signals
    raw = read_bids(tmp_path, atlas, label_map={"ASD": 1, "TD": 0}, confound_strategy=None)
    assert len(raw) == 4
    for s in raw:
        r = [abs(np.corrcoef(s.timeseries[:, k], csfs[s.id])[0, 1]) for k in range(4)]
        assert min(r) > 0.8


def test_read_bids_raise_and_label_problems(
    tmp_path, block_atlas, planted_bold, write_bold
) -> None:
    make_bids(tmp_path, block_atlas, planted_bold, write_bold)
    labels, affine = block_atlas
    atlas = nib.Nifti1Image(labels, affine)
    with pytest.raises(
        DataError, match="sub-04_task-rest_space-MNI_desc-preproc_bold.nii.gz: no confounds file"
    ) as info:
        read_bids(tmp_path, atlas, label_map={"ASD": 1, "TD": 0}, on_invalid="raise")
    assert info.value.reason == "missing_confounds"

    # text labels without a label_map, and a label value outside the map
    cohort = read_bids(tmp_path, atlas)
    assert len(cohort) == 0
    assert {e.reason for e in cohort.excluded} >= {"missing_label"}
    assert "pass label_map" in cohort.excluded[0].message
    cohort = read_bids(tmp_path, atlas, label_map={"ASD": 1})
    assert cohort.ids == ["sub-01", "sub-03"]
    assert any("'TD' is not in label_map" in e.message for e in cohort.excluded)

    # a BOLD run with no participants row
    table = pd.read_csv(tmp_path / "participants.tsv", sep="\t")
    table[table.participant_id != "sub-01"].to_csv(
        tmp_path / "participants.tsv", sep="\t", index=False
    )
    cohort = read_bids(tmp_path, atlas, label_map={"ASD": 1, "TD": 0})
    assert ("sub-01", "missing_label") in {(e.subject_id, e.reason) for e in cohort.excluded}
    with pytest.raises(DataError, match="participant sub-01 has no row in participants.tsv"):
        read_bids(tmp_path, atlas, label_map={"ASD": 1, "TD": 0}, on_invalid="raise")
    with pytest.raises(DataError, match="no column 'dx'"):
        read_bids(tmp_path, atlas, label_column="dx")
    (tmp_path / "participants.tsv").unlink()
    with pytest.raises(DataError, match="no participants.tsv was found"):
        read_bids(tmp_path, atlas)
    unlabeled = read_bids(tmp_path, atlas, label_column=None)
    assert len(unlabeled) == 3 and not unlabeled.has_labels
    with pytest.raises(ConfigError, match="multiple_runs"):
        read_bids(tmp_path, atlas, multiple_runs="all")  # type: ignore[arg-type]


def test_multiple_runs(tmp_path, block_atlas, planted_bold, write_bold) -> None:
    make_bids(tmp_path, block_atlas, planted_bold, write_bold)
    labels, affine = block_atlas
    func = tmp_path / "derivatives" / "fmriprep" / "sub-01" / "func"
    for f in sorted(func.glob("sub-01_task-rest_*")):
        f.rename(func / f.name.replace("task-rest_", "task-rest_run-1_"))
    for f in sorted(func.glob("sub-01_task-rest_run-1_*")):
        (func / f.name.replace("run-1", "run-2")).write_bytes(f.read_bytes())
    atlas = nib.Nifti1Image(labels, affine)
    kw = {"label_map": {"ASD": 1, "TD": 0}}
    first = read_bids(tmp_path, atlas, **kw)
    assert first.ids[0] == "sub-01" and first[0].n_timepoints == T
    sep = read_bids(tmp_path, atlas, multiple_runs="separate", **kw)
    assert sep.ids[:2] == ["sub-01_task-rest_run-1", "sub-01_task-rest_run-2"]
    assert sep[0].covariates["participant_id"] == "sub-01"
    cat = read_bids(tmp_path, atlas, multiple_runs="concatenate", **kw)
    assert cat[0].n_timepoints == 2 * T and cat[0].covariates["n_runs"] == 2
    np.testing.assert_allclose(cat[0].timeseries[:T], first[0].timeseries)


def test_dict_strategy_uses_nilearn_load_confounds(
    tmp_path, block_atlas, planted_bold, write_bold
) -> None:
    make_bids(tmp_path, block_atlas, planted_bold, write_bold)
    labels, affine = block_atlas
    atlas = nib.Nifti1Image(labels, affine)
    kw = {"label_map": {"ASD": 1, "TD": 0}, "task": "rest"}
    ours = read_bids(tmp_path, atlas, confound_strategy="motion+wm_csf", **kw)
    nl = read_bids(
        tmp_path,
        atlas,
        confound_strategy={"strategy": ["motion", "wm_csf"], "motion": "basic", "wm_csf": "basic"},
        **kw,
    )
    # nilearn needs the new-style confounds name: sub-03 (legacy _regressors.tsv) is excluded
    assert nl.ids == ["sub-01", "sub-02"]
    assert {e.subject_id: e.reason for e in nl.excluded}["sub-03"] == "missing_confounds"
    for a, b in zip(ours, nl, strict=False):
        np.testing.assert_allclose(a.timeseries, b.timeseries, atol=1e-5)


def test_bids_from_the_command_line_with_a_label_map(tmp_path, block_atlas, planted_bold, write_bold):
    """The README's BIDS quick start: Hydra overrides, including a dict-valued label_map."""

    from graphbrain.cli import main

    make_bids(tmp_path / "ds", block_atlas, planted_bold, write_bold)
    labels, affine = block_atlas
    atlas = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), atlas)
    out = tmp_path / "model"
    rc = main([
        "train", "data=bids", f"data.root={tmp_path / 'ds'}", f"data.atlas={atlas}",
        "data.label_column=diagnosis", "data.label_map={ASD: 1, TD: 0}",
        f"output_dir={out}", "progress=false", "cache_dir=null",
    ])
    assert rc == 0
    subjects = pd.read_parquet(out / "training_subjects.parquet")
    assert dict(zip(subjects["subject_id"], subjects["label"])) == {"sub-01": 1, "sub-02": 0, "sub-03": 1}
    excluded = set(pd.read_parquet(out / "excluded.parquet")["subject_id"])
    assert {"sub-04", "sub-05"} <= excluded
