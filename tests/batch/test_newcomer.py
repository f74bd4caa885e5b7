"""Newcomer fixes (issue 12, item 9), each tested through the path a newcomer takes."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from graphbrain.cli import main as cli_main
from graphbrain.data.loaders import valid_params
from graphbrain.data.nifti import read_nifti
from graphbrain.errors import DataError


def test_every_reader_option_is_in_its_preset():
    from importlib.resources import files

    folder = files("graphbrain.configs").joinpath("data")
    for p in folder.iterdir():
        if p.name.endswith(".yaml"):
            cfg = OmegaConf.to_container(OmegaConf.load(str(p)))
            assert set(cfg) - {"source"} == set(valid_params(cfg["source"])), p.name


def _precomputed(tmp_path, n_files=20, n_rows_without_file=20, n_nan=2, text_labels=True):
    rng = np.random.default_rng(0)
    ts_dir = tmp_path / "ts"
    ts_dir.mkdir()
    rows = []
    for i in range(n_files):
        x = rng.standard_normal((60, 6)) @ rng.standard_normal((6, 6)) + rng.standard_normal((60, 6))
        if i < n_nan:
            x[3, 2] = np.nan
        np.save(ts_dir / f"s{i:02d}.npy", x.astype(np.float32))
        rows.append({"subject_id": f"s{i:02d}", "label": ["TD", "ASD"][i % 2] if text_labels else i % 2, "site": "A"})
    for i in range(n_rows_without_file):
        rows.append({"subject_id": f"gone{i:02d}", "label": "TD" if text_labels else 0, "site": "A"})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return [f"data.path_or_files={ts_dir}", f"data.labels_table={tmp_path / 'labels.csv'}"]


def test_precomputed_label_map_and_summary_counts(tmp_path, capsys):
    # label_map is in the precomputed preset (no '+' needed); phenotypic rows without a file
    # are reported apart from subjects that failed validation
    data = _precomputed(tmp_path)
    out = tmp_path / "out"
    rc = cli_main(["run", "data=precomputed", *data, "data.label_map={ASD: 1, TD: 0}", "cv.n_splits=2",
                   "progress=false", f"output_dir={out}", "cache_dir=null"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "2 folds, 18 subjects, 2 excluded, 20 listed without a data file" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n_excluded"], m["n_listed_without_file"]) == (22, 20)


def test_all_excluded_prints_reasons_and_writes_table(tmp_path, capsys):
    data = _precomputed(tmp_path, n_files=4, n_rows_without_file=1, n_nan=4, text_labels=False)
    out = tmp_path / "out"
    rc = cli_main(["run", "data=precomputed", *data, "progress=false", f"output_dir={out}", "cache_dir=null"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no usable subjects in the cohort (5 excluded" in err
    assert "non_finite: 4" in err and "missing_file: 1" in err
    assert "s00.npy: 1 non-finite value(s)" in err  # the first messages are shown
    table = pd.read_parquet(out / "excluded.parquet")
    assert sorted(table["reason"]) == ["missing_file"] + ["non_finite"] * 4


def _bold(labels: np.ndarray, affine: np.ndarray, shift_mm: float, path) -> str:
    rng = np.random.default_rng(1)
    data = rng.standard_normal((*labels.shape, 20)).astype(np.float32) + 100
    img_aff = affine.copy()
    img_aff[0, 3] += shift_mm
    nib.save(nib.Nifti1Image(data, img_aff), path)
    return str(path)


def test_atlas_in_another_space_is_named(tmp_path):
    labels = np.zeros((24, 6, 6), dtype=np.int16)
    for k in range(8):
        labels[3 * k : 3 * k + 3, 1:5, 1:5] = k + 1  # 8 regions along x
    affine = np.eye(4)
    atlas = nib.Nifti1Image(labels, affine)
    same = _bold(labels, affine, 0.0, tmp_path / "same.nii.gz")
    cohort = read_nifti([same], atlas, on_invalid="raise", standardize=False, detrend=False)
    assert cohort[0].timeseries.shape == (20, 8)
    moved = _bold(labels, affine, 15.0, tmp_path / "moved.nii.gz")  # image covers x = 15..38 mm
    with pytest.raises(DataError, match=r"5 of 8 atlas labels have no voxel.*different spaces") as err:
        read_nifti([moved], atlas, on_invalid="raise", standardize=False, detrend=False)
    assert err.value.reason == "atlas_space_mismatch"
    assert "38 % of the atlas's labelled voxels lie inside" in str(err.value)
    assert "['1', '2', '3', '4', '5']" in str(err.value)
    # under on_invalid=exclude it is one exclusion with that reason, not 5 constant ROIs
    cohort = read_nifti([same, moved], atlas, subject_ids=["a", "b"], standardize=False, detrend=False)
    assert cohort.ids == ["a"] and cohort.excluded[0].reason == "atlas_space_mismatch"


def test_progress_false_silences_trainer_bars(capsys):
    from graphbrain.pipeline import run_pipeline

    args = dict(data={"source": "synthetic", "n_subjects": 16, "n_rois": 8, "n_timepoints": 60},
                model="brainnetcnn", cv={"scheme": "stratified", "n_splits": 2},
                train={"epochs": 2, "batch_size": 8}, output_dir=None)
    run_pipeline(progress=False, **args)
    assert "%|" not in capsys.readouterr().err  # no tqdm bar at all
    run_pipeline(progress=True, **args)  # the bars exist when asked for: folds and epochs
    bars = set(re.findall(r"([A-Za-z][\w ]*): +\d+%\|", capsys.readouterr().err))
    assert "brainnetcnn folds" in bars and len(bars - {"brainnetcnn folds"}) >= 1


def test_single_fold_metrics_have_null_std(tmp_path):
    from graphbrain.pipeline import PipelineResult, predict, train_model

    data = {"source": "synthetic", "n_subjects": 30, "n_rois": 8, "n_timepoints": 60}
    model_dir = train_model(data=data, model="logreg", output_dir=tmp_path / "m", progress=False)
    res = predict(model_dir, data={**data, "seed": 5}, output_dir=tmp_path / "p")
    m = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert m["n_folds"]["auroc"] == 1 and all(v is None for v in m["std"].values())
    assert 0.0 <= m["auroc"] <= 1.0 and m["auroc"] == pytest.approx(res["auroc"])
    assert np.isnan(PipelineResult.load(tmp_path / "p").metrics["auroc"]["std"])
