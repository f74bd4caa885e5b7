"""Cohort statistics, atlas metadata and faithfulness against hand computations and planted truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbrain.data import make_synthetic_cohort
from graphbrain.explain import (
    Explanation,
    class_difference,
    explain,
    faithfulness,
    fdr_bh,
    fold_stability,
    load_atlas,
    top_units,
)
from graphbrain.explain.aggregate import jaccard
from graphbrain.training import build_classifier

ATLASES = Path(__file__).resolve().parents[3] / "shared" / "data" / "atlases_pcp"


def _expl(a: np.ndarray, y: np.ndarray, folds: np.ndarray | None = None) -> Explanation:
    n, r = a.shape
    return Explanation(
        method="m", model="x", roi=a, edge=None, window=None, signed=True,
        subject_ids=[str(i) for i in range(n)], labels=y, roi_names=[f"R{i}" for i in range(r)], folds=folds,
    )


def test_class_difference_matches_hand_computation_and_a_loop_permutation_test():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    a = rng.standard_normal((40, 5))
    a[y == 1, 0] += 2.0  # unit 0 differs between classes, the others do not
    e = _expl(a, y)
    d = class_difference(e, n_permutations=2000, seed=1, within_folds=False)
    assert np.allclose(d["diff"], a[y == 1].mean(0) - a[y == 0].mean(0))
    # same statistic with a plain loop over permutations
    rng2 = np.random.default_rng(5)
    obs = np.abs(a[y == 1].mean(0) - a[y == 0].mean(0))
    null = np.array([np.abs(a[p == 1].mean(0) - a[p == 0].mean(0)) for p in (rng2.permutation(y) for _ in range(2000))])
    p_loop = (1 + (null >= obs).sum(0)) / 2001
    assert d["p"].iloc[0] < 0.001 and p_loop[0] < 0.001
    assert np.allclose(d["p"].to_numpy()[1:], p_loop[1:], atol=0.04)  # Monte-Carlo error, 2000 draws
    assert d["q"].iloc[0] < 0.01 and (d["q"].to_numpy()[1:] > 0.05).all()


def test_permutations_stay_within_folds():
    # fold B's model scores everyone higher; within a fold, classes do not differ
    y = np.tile([0, 1], 20)
    folds = np.repeat(["A", "B"], 20)
    a = np.where(folds == "B", 5.0, 0.0)[:, None] + np.random.default_rng(1).standard_normal((40, 1)) * 0.01
    # unbalance classes across folds so that the pooled difference is confounded by fold
    y = np.where(np.arange(40) < 25, 0, 1)
    e = _expl(a, y, folds)
    within = class_difference(e, n_permutations=500, within_folds=True)
    pooled = class_difference(e, n_permutations=500, within_folds=False)
    assert pooled["p"].iloc[0] < 0.01  # the fold effect looks like a class effect ...
    assert within["p"].iloc[0] > 0.05  # ... until labels are only shuffled inside folds


def test_fdr_matches_scipy():
    from scipy.stats import false_discovery_control

    p = np.array([0.001, 0.02, 0.03, 0.2, 0.5, np.nan])
    q = fdr_bh(p)
    assert np.allclose(q[:5], false_discovery_control(p[:5]))
    assert np.isnan(q[5])


def test_jaccard_and_fold_stability():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(0.5)
    y = np.tile([0, 1], 15)
    folds = np.repeat(["f0", "f1", "f2"], 10)
    a = np.zeros((30, 8))
    a[:, :3] = 1.0  # every fold ranks ROIs 0-2 first
    a[folds == "f2", 3] = 5.0  # fold f2 also puts ROI 3 on top
    s = fold_stability(_expl(a, y, folds), k=3)
    # f0-f1: {0,1,2} both -> 1; f2 = {3,0,1} -> 2/4 with each
    assert s["jaccard_mean"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert s["jaccard_min"] == pytest.approx(0.5)


def test_label_table_with_groups_and_coordinates(tmp_path):
    p = tmp_path / "atlas.csv"
    p.write_text("# my atlas\nid,name,network,x,y,z\n3,C,visual,1,2,3\n1,A,default,4,5,6\n2,B,visual,7,8,9\n")
    atlas = load_atlas(["1", "2", "3", "9"], labels=p)
    assert atlas.labels[:3] == ["A", "B", "C"] and "not in label table" in atlas.labels[3]
    assert atlas.groups[:3] == ["default", "visual", "visual"]
    assert np.allclose(atlas.coords[0], [4, 5, 6]) and np.isnan(atlas.coords[3]).all()
    e = _expl(np.tile([[1.0, 3.0, 2.0, 0.0]], (4, 1)), np.array([0, 1, 0, 1]))
    top = top_units(e, atlas, k=2)
    assert top["label"].tolist() == ["B", "C"] and top["x"].tolist() == [7.0, 1.0]
    with pytest.raises(Exception, match="none of the ROI ids"):
        load_atlas(["100", "200"], labels=p)


def test_coordinates_from_a_label_image_agree_with_nilearn(tmp_path):
    import nibabel as nib
    from nilearn.plotting import find_parcellation_cut_coords

    data = np.zeros((12, 12, 12), dtype=np.int16)
    data[1:4, 2:5, 2:5] = 7
    data[7:11, 6:10, 3:6] = 12
    data[5:7, 1:3, 8:11] = 30
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-18, -18, -18]
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    atlas = load_atlas(["12", "7", "99"], image=path)
    coords, values = find_parcellation_cut_coords(str(path), return_label_names=True)
    ref = dict(zip([int(v) for v in values], coords))
    assert np.allclose(atlas.coords[0], ref[12]) and np.allclose(atlas.coords[1], ref[7])
    assert np.isnan(atlas.coords[2]).all()  # not a label value of the image
    # centre of label 7: voxels 1..3 -> world -18 + 3 * 2 = -12 in x
    assert atlas.coords[1][0] == pytest.approx(-12.0)


@pytest.mark.skipif(not (ATLASES / "ho_labels.csv").exists(), reason="../shared/data/atlases_pcp is not available")
def test_harvard_oxford_label_table_from_pcp():
    ids = ["#10", "#49", "#2001", "#2002"]  # ABIDE-PCP time-series header ids
    atlas = load_atlas([i.lstrip("#") for i in ids], labels=ATLASES / "ho_labels.csv")
    assert atlas.labels[:2] == ["Left Thalamus", "Right Thalamus"]
    assert all("not in label table" not in x for x in atlas.labels)
    assert atlas.coords is None
    # no group column: grouped by the hemisphere the names state (PCP HO: 2001 right, 2002 left)
    assert atlas.groups == ["left", "right", "right", "left"]
    assert atlas.order().tolist() == [0, 3, 1, 2]


@pytest.fixture(scope="module")
def logreg_setup():
    c = make_synthetic_cohort(n_subjects=60, n_rois=10, n_timepoints=90, n_planted=4, effect_size=1.5, seed=4)
    train, test = c.subset(range(40)), c.subset(range(40, 60))
    clf = build_classifier("logreg").fit(train)
    return clf, test


def test_faithfulness_separates_a_true_ranking_from_a_reversed_one(logreg_setup):
    clf, test = logreg_setup
    e = explain(clf, test, method="linear")
    rev = Explanation(**{**e.__dict__, "method": "reversed", "roi": -e.roi, "edge": -e.edge})
    f = faithfulness(clf, test, [e, rev], units=("roi", "edge"), n_steps=5, n_random=5)
    t = f.table.set_index(["method", "unit"])
    assert (t.loc["linear", "faithful"] == "yes").all()
    # removing first what speaks *against* the prediction raises confidence: below random
    assert (t.loc["reversed", "deletion_aoc"] < t.loc["reversed", "deletion_aoc_random"]).all()
    assert (t.loc["reversed", "faithful"] == "no").all()
    # curves start at the unperturbed prediction and deletion ends at the all-mean input
    cur = f.curves
    start = cur[(cur["fraction"] == 0) & (cur["curve"] == "deletion")]["score"]
    assert np.allclose(start, start.iloc[0])
    assert set(pd.unique(cur["method"])) == {"linear", "reversed", "random (mean)"}
