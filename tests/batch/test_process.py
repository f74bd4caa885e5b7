"""Batch processing: per-subject isolation, QC exclusions, agreement with nilearn, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import LedoitWolf

from graphbrain.batch.qc import fd_from_confounds, framewise_displacement, tsnr
from graphbrain.batch.runner import BatchResult, process_cohort
from graphbrain.connectome.dynamic import sliding_window_fc
from graphbrain.errors import ConfigError

CONN = {"kind": "correlation", "window": 20, "stride": 10}


def test_isolation_qc_and_outputs(bad_cohort, tmp_path):
    out = tmp_path / "run"
    res = process_cohort(bad_cohort, output_dir=out, connectome=CONN, qc={"max_mean_fd": 0.5, "max_constant_rois": 0},
                         batch_size=3, progress=False, plots=True)
    st = res.status.set_index("subject_id")
    # one failure (unreadable file) recorded with its stage; the other 11 subjects went on
    assert st.loc["s005", "status"] == "failed"
    errors = pd.read_parquet(out / "errors.parquet")
    assert errors["subject_id"].tolist() == ["s005"]
    assert errors.loc[0, "stage"] == "load" and errors.loc[0, "error_type"] == "DataError"
    assert "s005.npy" in errors.loc[0, "message"]
    # exclusions with reasons: constant ROI (QC threshold), NaN (validation), motion (phenotypic FD)
    assert st.loc["s002", ["status", "reason"]].tolist() == ["excluded", "constant_roi"]
    assert st.loc["s004", ["status", "reason"]].tolist() == ["excluded", "non_finite"]
    assert st.loc["s011", ["status", "reason"]].tolist() == ["excluded", "motion"]
    assert "0.900 mm > 0.5 mm" in st.loc["s011", "message"]
    # a labels row without a file is reported apart, not as a subject
    assert st.loc["s999", "status"] == "missing_input"
    c = res.counts
    assert (c["n_subjects"], c["ok"], c["excluded"], c["failed"], c["missing_input"]) == (12, 8, 3, 1, 1)
    assert "12 subjects: 8 ok, 3 excluded" in res.summary_line() and "1 listed without a file" in res.summary_line()
    excl = pd.read_parquet(out / "excluded.parquet")
    assert set(excl["subject_id"]) == {"s002", "s004", "s005", "s011", "s999"}
    assert (out / "qc.png").stat().st_size > 10_000
    # QC numbers: tSNR per ROI by hand, phenotypic FD carried
    ts0 = np.load(tmp_path / "data" / "ts" / "s000.npy").astype(np.float64)
    qc = pd.read_parquet(out / "qc.parquet").set_index("subject_id")
    by_hand = np.abs(ts0.mean(0)) / ts0.std(0, ddof=1)
    assert qc.loc["s000", "tsnr_median"] == pytest.approx(np.median(by_hand), rel=1e-5)
    t = pd.read_parquet(out / "tsnr.parquet").set_index("subject_id")
    np.testing.assert_allclose(t.loc["s000"].drop("index").to_numpy(dtype=float), by_hand, rtol=1e-5)
    assert qc.loc["s001", "mean_fd"] == pytest.approx(0.11) and qc.loc["s001", "fd_source"] == "phenotypic:func_mean_fd"
    assert qc.loc["s002", "n_constant_rois"] == 1 and qc.loc["s002", "constant_rois"] == "1"
    # connectomes agree with nilearn (Ledoit-Wolf correlation) and the numpy sliding window
    ref = ConnectivityMeasure(kind="correlation", cov_estimator=LedoitWolf(store_precision=False)).fit_transform([ts0])[0]
    np.testing.assert_allclose(res.static_fc("s000"), ref, atol=1e-5)
    ids, x = res.features()
    assert x.shape == (8, 28) and len(set(ids)) == 8
    iu = np.triu_indices(8, k=1)
    np.testing.assert_allclose(x[ids.index("s000")], ref[iu], atol=1e-5)
    dyn = sliding_window_fc(ts0, 20, 10, backend="numpy")
    np.testing.assert_allclose(res.dynamic_fc("s000"), dyn[:, iu[0], iu[1]], atol=1e-5)
    assert res.dynamic_fc("s000").shape == (7, 28)


def test_resume_skips_done_and_refuses_other_settings(bad_cohort, tmp_path):
    out = tmp_path / "run"
    first = process_cohort(bad_cohort, output_dir=out, connectome=CONN, batch_size=4, progress=False, plots=False)
    assert first.counts["processed_now"] == 12
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npy")}
    again = process_cohort(bad_cohort, output_dir=out, connectome=CONN, batch_size=4, progress=False, plots=False)
    assert again.counts["processed_now"] == 0 and again.counts["skipped_done"] == 12
    assert {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npy")} == mtimes
    pd.testing.assert_frame_equal(first.status.drop(columns="seconds"), again.status.drop(columns="seconds"))
    with pytest.raises(ConfigError, match="other settings.*window"):
        process_cohort(bad_cohort, output_dir=out, connectome={**CONN, "window": 30}, progress=False)
    # a new folder sharing the cache reads the connectomes instead of recomputing them
    other = process_cohort(bad_cohort, output_dir=tmp_path / "run2", cache_dir=out / "cache", connectome=CONN,
                           progress=False, plots=False)
    ok = other.status[other.status["status"] == "ok"]
    assert ok["cache_hit"].all()
    assert BatchResult.load(out).counts["ok"] == first.counts["ok"]
    info = json.loads((out / "run.json").read_text())
    assert info["attempts"] == 2


def test_motion_from_confounds():
    motion = np.zeros((4, 6))
    motion[1, 0] = 0.3  # 0.3 mm translation
    motion[2, 3] = 0.01  # 0.01 rad = 0.5 mm arc at 50 mm
    fd = framewise_displacement(motion)
    np.testing.assert_allclose(fd, [0.0, 0.3, 0.3 + 0.5, 0.5])
    table = pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])
    np.testing.assert_allclose(fd_from_confounds(table), fd)
    table["framewise_displacement"] = [np.nan, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(fd_from_confounds(table), [0.0, 1.0, 2.0, 3.0])
    assert fd_from_confounds(pd.DataFrame({"csf": [1.0, 2.0]})) is None
    x = np.array([[1.0, 0.0], [3.0, 0.0]])
    assert tsnr(x)[0] == pytest.approx(2.0 / np.sqrt(2.0)) and np.isnan(tsnr(x)[1])


def test_tangent_refused(bad_cohort, tmp_path):
    with pytest.raises(ConfigError, match="tangent.*training fold"):
        process_cohort(bad_cohort, output_dir=tmp_path / "r", connectome={"kind": "tangent"}, progress=False)


def test_nifti_streaming_equals_reader_and_reads_motion(tmp_path):
    import nibabel as nib

    from graphbrain.data.nifti import read_nifti

    rng = np.random.default_rng(2)
    labels = np.zeros((8, 8, 8), dtype=np.int16)
    labels[:4, :4] = 1
    labels[4:, :4] = 2
    labels[:4, 4:] = 3
    labels[4:, 4:] = 4
    atlas = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), atlas)
    files, confounds = [], []
    for i in range(2):
        data = rng.standard_normal((8, 8, 8, 40)).astype(np.float32) + 50
        f = tmp_path / f"sub{i}.nii.gz"
        nib.save(nib.Nifti1Image(data, np.eye(4)), f)
        c = tmp_path / f"sub{i}_confounds.tsv"
        fd = np.r_[np.nan, np.full(39, 0.1 + 0.2 * i)]
        pd.DataFrame({"framewise_displacement": fd, "csf": rng.standard_normal(40)}).to_csv(c, sep="\t", index=False)
        files.append(str(f))
        confounds.append(str(c))
    data = {"source": "nifti", "bold_files": files, "atlas": str(atlas), "confounds": confounds, "labels": [0, 1]}
    res = process_cohort(data, output_dir=tmp_path / "run", connectome={"window": 20, "stride": 10},
                         qc={"max_mean_fd": 0.2}, progress=False, plots=False)
    st = res.status.set_index("subject_id")
    assert st.loc["sub0", "status"] == "ok" and st.loc["sub1", ["status", "reason"]].tolist() == ["excluded", "motion"]
    qc = res.table("qc").set_index("subject_id")
    assert qc.loc["sub0", "mean_fd"] == pytest.approx(0.1 * 39 / 40) and qc.loc["sub0", "fd_source"] == "confounds"
    ref = read_nifti(files, str(atlas), confounds=confounds, labels=[0, 1])
    lw = ConnectivityMeasure(kind="correlation", cov_estimator=LedoitWolf(store_precision=False))
    np.testing.assert_allclose(res.static_fc("sub0"), lw.fit_transform([ref[0].timeseries])[0], atol=1e-5)


def test_in_memory_and_synthetic_cohorts(tmp_path, small_cohort):
    res = process_cohort(cohort=small_cohort.subset(range(6)), output_dir=tmp_path / "mem", dynamic=False,
                         progress=False, plots=False)
    assert res.counts["ok"] == 6 and res.status["dynamic_key"].isna().all()
    syn = process_cohort({"source": "synthetic", "n_subjects": 6, "n_rois": 8, "n_timepoints": 60},
                         output_dir=tmp_path / "syn", connectome={"window": 20, "stride": 20}, progress=False,
                         plots=False)
    assert syn.counts["ok"] == 6 and syn.dynamic_fc(syn.status["subject_id"].iloc[0]).shape == (3, 28)
