"""Every source streams: the driver plans from the index (tables, file listings) and
reads no time series; workers read one subject each, through the data room's public
per-subject readers, and get what the whole-cohort reader gets."""

from __future__ import annotations

import json
import pickle

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from batch_data import write_cohort

from graphbrain.batch.runner import process_cohort
from graphbrain.batch.tasks import plan_tasks
from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.data import load_cohort, make_synthetic_cohort, synthetic_subject

CONN = {"window": 20, "stride": 10}
#: the per-subject leaf readers: calling any of them in the driver while planning fails
LEAF_READERS = [
    ("graphbrain.data.abide", "read_1d"),
    ("graphbrain.data.precomputed", "read_matrix"),
    ("graphbrain.data.nifti", "_extract"),
    ("graphbrain.data.bids", "_extract"),
    ("graphbrain.data.synthetic", "_subject"),
]


def _abide(root):
    """A fake ABIDE-PCP tree: 5 scans with files, one row without a file, one bad DX_GROUP."""
    rng = np.random.default_rng(0)
    ts_dir = root / "ABIDE_pcp" / "cpac" / "filt_noglobal"
    ts_dir.mkdir(parents=True)
    rows = []
    for i in range(6):
        site = "PITT" if i < 3 else "KKI"
        fid = f"{site.title()}_{50000 + i:07d}"
        ts = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 5)) + rng.standard_normal((60, 5))
        if i != 5:
            lines = ["\t".join(f"#{n}" for n in (10, 11, 12, 2001, 3455))]
            lines += ["\t".join(f"{v:.6f}" for v in row) for row in ts]
            (ts_dir / f"{fid}_rois_ho.1D").write_text("\n".join(lines) + "\n")
        rows.append({"SUB_ID": 50000 + i, "SITE_ID": site, "FILE_ID": fid, "DX_GROUP": 9 if i == 4 else 1 + i % 2,
                     "AGE_AT_SCAN": 12.0 + i, "SEX": 1, "func_mean_fd": 0.1 * (i + 1)})
    pd.DataFrame(rows).to_csv(root / "ABIDE_pcp" / "Phenotypic_V1_0b_preprocessed1.csv", index=False)
    return {"source": "abide_pcp", "root": str(root)}


def _atlas(tmp_path):
    labels = np.zeros((8, 8, 6), dtype=np.int16)
    labels[:4, :4, 1:5], labels[4:, :4, 1:5], labels[:4, 4:, 1:5], labels[4:, 4:, 1:5] = 1, 2, 3, 4
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    path = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), path)
    return labels, affine, path


def _bids(tmp_path):
    """fMRIPrep derivatives of 3 participants (one without confounds: excluded by the reader's
    confound strategy) plus one listed in participants.tsv without any BOLD run."""
    labels, affine, atlas = _atlas(tmp_path)
    rng = np.random.default_rng(1)
    root = tmp_path / "bids"
    for i, sub in enumerate(["01", "02", "03"]):
        func = root / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        stem = f"sub-{sub}_task-rest"
        sig = rng.standard_normal((40, 4))
        data = 100 + 0.2 * rng.standard_normal((*labels.shape, 40))
        for k in range(4):
            data[labels == k + 1] += sig[:, k]
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), func / f"{stem}_space-MNI_desc-preproc_bold.nii.gz")
        (func / f"{stem}_space-MNI_desc-preproc_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
        if sub != "03":
            conf = pd.DataFrame(0.01 * rng.standard_normal((40, 6)),
                                columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])
            conf["white_matter"], conf["csf"] = rng.standard_normal(40), rng.standard_normal(40)
            conf["framewise_displacement"] = np.r_[np.nan, np.full(39, 0.1 * (i + 1))]
            conf.to_csv(func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03", "sub-04"], "diagnosis": [1, 0, 1, 0],
                  "site": ["A", "B", "A", "B"], "age": [10, 11, 12, 13]}).to_csv(
        root / "participants.tsv", sep="\t", index=False)
    return {"source": "bids", "root": str(root), "atlas": str(atlas)}


def _nifti(tmp_path):
    labels, affine, atlas = _atlas(tmp_path)
    rng = np.random.default_rng(2)
    files = []
    for i in range(3):
        f = tmp_path / f"bold{i}.nii.gz"
        nib.save(nib.Nifti1Image((rng.standard_normal((*labels.shape, 30)) + 50).astype(np.float32), affine), f)
        files.append(str(f))
    return {"source": "nifti", "bold_files": files, "atlas": str(atlas), "labels": [0, 1, 0]}


SOURCES = {
    "precomputed": lambda p: write_cohort(p / "data"),
    "abide_pcp": lambda p: _abide(p / "abide"),
    "bids": _bids,
    "nifti": _nifti,
    "synthetic": lambda p: {"source": "synthetic", "n_subjects": 8, "n_rois": 6, "n_timepoints": 50},
}
N_TASKS = {"precomputed": 12, "abide_pcp": 4, "bids": 3, "nifti": 3, "synthetic": 8}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_driver_plans_without_reading_any_series(source, tmp_path, monkeypatch):
    data = SOURCES[source](tmp_path)
    for module, name in LEAF_READERS:
        def refuse(*a, _n=f"{module}.{name}", **k):
            raise AssertionError(f"the driver called {_n} while planning")
        monkeypatch.setattr(f"{module}.{name}", refuse)
    plan = plan_tasks(data)
    assert len(plan.tasks) == N_TASKS[source]
    for t in plan.tasks:  # small records, no array inside: the driver's memory is the index
        assert len(pickle.dumps(t)) < 4000


def _reference(source, data):
    params = {k: v for k, v in data.items() if k != "source"}
    return load_cohort(source, **params, constant_roi="keep")


@pytest.mark.parametrize("source", ["abide_pcp", "bids", "precomputed"])
def test_streamed_subjects_equal_the_cohort_reader(source, tmp_path):
    data = SOURCES[source](tmp_path)
    res = process_cohort(data, output_dir=tmp_path / "run", connectome=CONN, micro_batch=2, progress=False,
                         plots=False)
    cohort = _reference(source, data)
    st = res.status.set_index("subject_id")
    ok = st[st["status"] == "ok"]
    assert sorted(ok.index) == sorted(s.id for s in cohort.subjects)
    # the reader's exclusions (no file, no label, ...) are the batch's non-ok rows, reason for reason
    assert {(e.subject_id, e.reason) for e in cohort.excluded} == {
        (sid, r.reason) for sid, r in st[st["status"] != "ok"].iterrows()}
    for s in cohort.subjects:
        assert (ok.loc[s.id, "label"], ok.loc[s.id, "site"], ok.loc[s.id, "participant"]) == (s.label, s.site,
                                                                                            s.participant)
        want = ConnectivityTransformer().fit([s.timeseries]).transform([s.timeseries])[0]
        np.testing.assert_allclose(res.static_fc(s.id), want, atol=1e-6)
    if source == "bids":  # motion QC from each run's confounds file
        qc = res.table("qc").set_index("subject_id")
        assert qc.loc["sub-02", "mean_fd"] == pytest.approx(0.2 * 39 / 40)
        assert qc.loc["sub-02", "fd_source"] == "confounds"


def test_synthetic_streams_per_subject_with_the_cohort_design(tmp_path):
    params = {"n_subjects": 8, "n_rois": 6, "n_timepoints": 50, "seed": 3}
    res = process_cohort({"source": "synthetic", **params}, output_dir=tmp_path / "run", connectome=CONN,
                         micro_batch=3, progress=False, plots=False)
    assert res.counts["ok"] == 8
    whole = make_synthetic_cohort(**params)
    for i in (0, 5):
        s = synthetic_subject(i, **params)
        assert (s.id, s.label, s.site) == (whole[i].id, whole[i].label, whole[i].site)
        want = ConnectivityTransformer().fit([s.timeseries]).transform([s.timeseries])[0]
        np.testing.assert_allclose(res.static_fc(s.id), want, atol=1e-6)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["fingerprint"]["data"]["seed"] == 3
    assert plan_tasks({"source": "synthetic", **params}).meta["planted_rois"] == whole.meta["planted_rois"]


def test_pool_workers_generate_what_the_driver_never_does(tmp_path, monkeypatch):
    """A real process pool (forkserver: workers do not inherit the driver's patch) makes the
    subjects while generating one in the driver would fail."""
    def refuse(*a, **k):
        raise AssertionError("the driver generated a subject")

    monkeypatch.setattr("graphbrain.data.synthetic._subject", refuse)
    res = process_cohort({"source": "synthetic", "n_subjects": 10, "n_rois": 6, "n_timepoints": 50},
                         output_dir=tmp_path / "run", connectome=CONN, micro_batch=3, progress=False, plots=False,
                         executor={"name": "process", "n_workers": 2, "mp_context": "forkserver"})
    assert res.counts["ok"] == 10 and res.n_failed == 0
