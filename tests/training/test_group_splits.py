"""Participant-grouped splits: runs / sessions / duplicates of one person never straddle a split."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from graphbrain.data import Cohort, Subject, make_synthetic_cohort, read_bids
from graphbrain.errors import ConfigError
from graphbrain.pipeline import run_pipeline
from graphbrain.training.splits import (
    Fold,
    check_folds,
    inner_split,
    leave_site_out,
    make_folds,
    merge_groups,
    stratified_kfold,
)


def _participant_sides(folds: list[Fold], groups: np.ndarray) -> None:
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test]), f.name


# -- unit level ----------------------------------------------------------------------------


def test_grouped_stratified_keeps_participants_together_and_ungrouped_would_not():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i:02d}" for i in range(30)], 3)  # 30 people x 3 runs
    labels = np.repeat(rng.permutation(np.arange(30) % 2), 3)
    folds = make_folds("stratified", labels, np.array(["s"] * 90), n_splits=5, repeats=2, groups=groups)
    assert len(folds) == 10
    _participant_sides(folds, groups)
    for r in range(2):
        tests = np.concatenate([f.test for f in folds if f.repeat == r])
        assert np.array_equal(np.sort(tests), np.arange(90))  # each run in exactly one test fold
    # the same data split without groups does separate runs of one person (what we guard against)
    plain = make_folds("stratified", labels, np.array(["s"] * 90), n_splits=5)
    assert any(set(groups[f.train]) & set(groups[f.test]) for f in plain)


def test_unique_groups_give_exactly_the_ungrouped_folds():
    y = np.arange(40) % 2
    a = list(stratified_kfold(y, 4, seed=3))
    b = list(stratified_kfold(y, 4, seed=3, groups=np.array([f"id{i}" for i in range(40)])))
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.test, fb.test) and np.array_equal(fa.train, fb.train)


def test_fold_count_is_checked_on_participants_not_runs():
    groups = np.repeat(["a", "b", "c", "d", "e", "f"], 4)
    labels = np.repeat([0, 1, 0, 1, 0, 1], 4)  # 12 runs per class but 3 people per class
    with pytest.raises(ConfigError, match="3 participant"):
        make_folds("stratified", labels, np.array(["s"] * 24), n_splits=4, groups=groups)
    folds = make_folds("stratified", labels, np.array(["s"] * 24), n_splits=3, groups=groups)
    _participant_sides(folds, groups)


def test_leave_site_out_drops_a_person_scanned_at_two_sites_from_training():
    sites = np.array(["A", "A", "B", "B", "C", "C"])
    groups = np.array(["p1", "p2", "p1", "p3", "p4", "p5"])  # p1 at A and B
    labels = np.array([0, 1, 0, 1, 0, 1])
    folds = {f.name: f for f in leave_site_out(sites, labels, groups=groups)}
    assert folds["site=A"].train.tolist() == [3, 4, 5]  # p1's run at B (index 2) removed
    assert folds["site=B"].train.tolist() == [1, 4, 5]  # p1's run at A (index 0) removed
    assert folds["site=C"].train.tolist() == [0, 1, 2, 3]
    _participant_sides(list(folds.values()), groups)


def test_grouped_inner_split_stays_inside_training_and_keeps_people_whole():
    groups = np.repeat([f"p{i}" for i in range(20)], 2)
    labels = np.repeat(np.arange(20) % 2, 2)
    train = np.arange(8, 40)
    fit_idx, val_idx = inner_split(train, labels, val_fraction=0.25, seed=1, groups=groups)
    assert set(fit_idx) | set(val_idx) == set(train) and not set(fit_idx) & set(val_idx)
    assert not set(groups[fit_idx]) & set(groups[val_idx])
    assert set(labels[val_idx]) == {0, 1}  # stratified: both classes validated on
    assert 0.15 <= len(val_idx) / len(train) <= 0.35


def test_check_folds_refuses_a_shared_participant():
    groups = np.array(["a", "a", "b", "b"])
    bad = [Fold("f", np.array([0, 2]), np.array([1, 3]))]
    with pytest.raises(ConfigError, match="participant"):
        check_folds(bad, 4, groups)
    with pytest.raises(ConfigError, match="in train and test"):
        check_folds([Fold("g", np.array([0, 1]), np.array([1, 2]))], 4)
    with pytest.raises(ConfigError, match="out of range"):
        check_folds([Fold("h", np.array([0, 4]), np.array([1]))], 4)
    check_folds([Fold("ok", np.array([0, 1]), np.array([2, 3]))], 4, groups)


def test_merge_groups_joins_duplicate_chains():
    g = np.array(["a", "b", "c", "d", "e"])
    merged = merge_groups(g, [("b", "d"), ("d", "e")])
    assert merged.tolist() == ["a", "b", "c", "b", "b"]
    with pytest.raises(ConfigError, match="'zz'"):
        merge_groups(g, [("a", "zz")])


def test_participant_defaults_to_subject_id():
    s = Subject("x1", np.zeros((5, 2)))
    t = Subject("x2", np.zeros((5, 2)), participant="P")
    assert s.participant == "x1" and t.participant == "P"
    assert Cohort([s, t]).participants.tolist() == ["x1", "P"]


# -- a duplicated subject: memorisation would look like signal --------------------------------


def _duplicated_random_cohort(n: int = 40, seed: int = 0) -> Cohort:
    """``n`` people with labels unrelated to their data, each scanned twice (near-identical)."""
    base = make_synthetic_cohort(n_subjects=n, n_rois=12, n_timepoints=60, n_sites=1, effect_size=0.0, seed=seed)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    subjects = []
    for s, y in zip(base, labels, strict=True):
        for run in (1, 2):
            ts = s.timeseries + 0.05 * rng.standard_normal(s.timeseries.shape).astype(np.float32)
            subjects.append(replace(s, id=f"{s.id}_run-{run}", timeseries=ts, label=int(y), participant=s.id))
    return Cohort(subjects, name="duplicated")


def test_duplicated_subject_cannot_leak_through_the_pipeline():
    cohort = _duplicated_random_cohort()
    res = run_pipeline(cohort=cohort, cv={"scheme": "stratified", "n_splits": 5}, output_dir=None, progress=False)
    pred = res.predictions.merge(
        pd.DataFrame({"subject_id": cohort.ids, "participant": cohort.participants}), on="subject_id"
    )
    assert (pred.groupby("participant")["fold"].nunique() == 1).all()
    grouped = roc_auc_score(pred["label"], pred["proba"])
    # Without grouping the twin in training gives the answer away: compute the same model on
    # the plain folds to show this test's setting would catch a missing grouping.
    from graphbrain.training import build_classifier

    y = cohort.labels
    leaked = np.zeros(len(cohort))
    for f in make_folds("stratified", y, cohort.sites, n_splits=5):
        clf = build_classifier("logreg").fit(cohort.subset(f.train))
        leaked[f.test] = clf.predict_proba(cohort.subset(f.test))[:, 1]
    ungrouped = roc_auc_score(y, leaked)
    assert ungrouped > 0.9
    # Labels are random per person: 20 vs 20 independent people, null AUROC sd
    # sqrt((n1+n0+1)/(12 n1 n0)) = 0.092; each person counted twice does not add information,
    # so +/- 3 sd around 0.5 is a two-sided chance band.
    assert abs(grouped - 0.5) < 0.28


# -- multi-run BIDS --------------------------------------------------------------------------


def _multirun_bids(root, n_people: int = 8, runs: int = 2) -> np.ndarray:
    """fMRIPrep tree: ``n_people`` participants x ``runs`` runs on a 4-block atlas, no confounds."""
    labels_img = np.zeros((4, 4, 2), dtype=np.int16)
    labels_img[:2, :2] = 1
    labels_img[2:, :2] = 2
    labels_img[:2, 2:] = 3
    labels_img[2:, 2:] = 4
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    rng = np.random.default_rng(0)
    deriv = root / "derivatives" / "fmriprep"
    for p in range(n_people):
        func = deriv / f"sub-{p:02d}" / "func"
        func.mkdir(parents=True)
        for r in range(1, runs + 1):
            data = 100 + rng.standard_normal((*labels_img.shape, 40))
            img = nib.Nifti1Image(data.astype(np.float32), affine)
            img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
            nib.save(img, func / f"sub-{p:02d}_task-rest_run-{r}_space-MNI_desc-preproc_bold.nii.gz")
    pd.DataFrame(
        {
            "participant_id": [f"sub-{p:02d}" for p in range(n_people)],
            "diagnosis": [p % 2 for p in range(n_people)],
            "site": ["A" if p < n_people // 2 else "B" for p in range(n_people)],
        }
    ).to_csv(root / "participants.tsv", sep="\t", index=False)
    return labels_img, affine


def test_bids_separate_runs_share_a_participant_and_stay_together(tmp_path):
    atlas, affine = _multirun_bids(tmp_path)
    cohort = read_bids(tmp_path, nib.Nifti1Image(atlas, affine), confound_strategy=None, multiple_runs="separate")
    assert len(cohort) == 16
    assert cohort.participants.tolist() == [f"sub-{p:02d}" for p in range(8) for _ in range(2)]
    assert len(set(cohort.ids)) == 16
    for scheme, kw in (("stratified", {"n_splits": 4}), ("leave_site_out", {})):
        folds = make_folds(scheme, cohort.labels, cohort.sites, groups=cohort.participants, **kw)
        _participant_sides(folds, cohort.participants)
    res = run_pipeline(
        cohort=cohort, cv={"scheme": "stratified", "n_splits": 4}, output_dir=None, progress=False
    )
    by_subject = dict(zip(res.predictions["subject_id"], res.predictions["fold"], strict=True))
    for p in np.unique(cohort.participants):
        assert len({by_subject[s] for s, q in zip(cohort.ids, cohort.participants, strict=True) if q == p}) == 1


def test_torch_inner_split_groups_runs(monkeypatch):
    """TorchClassifier's early-stopping split never validates on a person it fits on."""
    from graphbrain.training import torch_estimator

    seen = {}
    real = torch_estimator.inner_split

    def spy(train_index, labels, **kw):
        out = real(train_index, labels, **kw)
        seen["groups"] = kw.get("groups")
        seen["split"] = out
        return out

    monkeypatch.setattr(torch_estimator, "inner_split", spy)
    cohort = _duplicated_random_cohort(n=20)
    clf = torch_estimator.TorchClassifier(
        "gcn", model_params={"hidden": 8}, train={"epochs": 1, "progress": False}
    )
    clf.fit(cohort)
    g = np.asarray(seen["groups"])
    fit_idx, val_idx = seen["split"]
    assert g.tolist() == cohort.participants.tolist()
    assert not set(g[fit_idx]) & set(g[val_idx])
    assert set(clf.val_ids_) == {cohort.ids[i] for i in val_idx}


# -- exact behaviour (kills mutants of splits.py) ----------------------------------------------


def test_repeats_are_the_documented_reshuffles_with_names():
    from sklearn.model_selection import StratifiedKFold

    y = np.arange(30) % 2
    folds = make_folds("stratified", y, np.array(["s"] * 30), n_splits=3, repeats=2, seed=7)
    assert [f.name for f in folds] == [f"rep{r}-fold{k}" for r in range(2) for k in range(3)]
    assert [f.repeat for f in folds] == [0, 0, 0, 1, 1, 1]
    for r in range(2):
        ref = list(StratifiedKFold(3, shuffle=True, random_state=7 + r).split(np.zeros(30), y))
        for f, (tr, te) in zip(folds[3 * r : 3 * r + 3], ref, strict=True):
            assert np.array_equal(f.test, te) and np.array_equal(f.train, tr)
    single = make_folds("stratified", y, np.array(["s"] * 30), n_splits=3, seed=7)
    assert [f.name for f in single] == ["fold0", "fold1", "fold2"] and {f.repeat for f in single} == {0}
    # grouped repeats are reshuffled too
    g = np.repeat([f"p{i}" for i in range(15)], 2)
    yg = np.repeat(np.arange(15) % 2, 2)
    gf = make_folds("stratified", yg, np.array(["s"] * 30), n_splits=3, repeats=2, seed=7, groups=g)
    assert any(not np.array_equal(gf[k].test, gf[3 + k].test) for k in range(3))
    assert {f.name for f in gf} == {f"rep{r}-fold{k}" for r in range(2) for k in range(3)}


def test_split_errors_name_the_problem():
    y = np.arange(20) % 2
    s = np.array(["a"] * 20)
    with pytest.raises(ConfigError, match="n_splits must be at least 2, got 1"):
        make_folds("stratified", y, s, n_splits=1)
    with pytest.raises(ConfigError, match="smallest class has 2 subject"):
        make_folds("stratified", np.array([0] * 10 + [1] * 2), np.array(["a"] * 12), n_splits=3)
    with pytest.raises(ConfigError, match=r"one participant id per subject \(20\)"):
        make_folds("stratified", y, s, n_splits=2, groups=np.array(["a", "b"]))
    for frac in (0.0, 1.0):
        with pytest.raises(ConfigError, match="val_fraction must be in"):
            inner_split(np.arange(20), y, val_fraction=frac)
    with pytest.raises(ConfigError, match="at least 2 participants"):
        inner_split(np.arange(4), np.array([0, 1, 0, 1]), groups=np.array(["p"] * 4))
    with pytest.raises(ConfigError, match="leaving out site 'A' leaves a single class"):
        list(leave_site_out(np.array(["A", "A", "B", "B"]), np.array([0, 0, 1, 1])))


def test_grouped_inner_split_fraction_follows_val_fraction():
    g = np.repeat([f"p{i}" for i in range(40)], 2)
    y = np.repeat(np.arange(40) % 2, 2)
    for frac, expected in ((0.5, 0.5), (0.25, 0.25), (0.1, 0.1)):
        _, val = inner_split(np.arange(80), y, val_fraction=frac, seed=0, groups=g)
        assert abs(len(val) / 80 - expected) <= 0.05, frac
    # ungrouped: the exact train_test_split share, stratified by label
    fit, val = inner_split(np.arange(80), y, val_fraction=0.25, seed=0)
    assert len(val) == 20 and y[val].sum() == 10


def test_leave_site_out_warns_about_people_at_two_sites(caplog):
    sites = np.array(["A", "A", "B", "B"])
    with caplog.at_level("WARNING", logger="graphbrain.training.splits"):
        folds = list(leave_site_out(sites, None, groups=np.array(["p", "q", "p", "r"])))
    assert caplog.messages[0] == (
        "site 'A': 1 training subject(s) belong to participants also scanned at this site; "
        "they are left out of this fold's training set"
    )
    assert folds[0].train.tolist() == [3]
    # a site with fewer subjects than min_test is skipped; min_test=1 keeps one-subject sites
    assert [f.name for f in leave_site_out(np.array(["A", "B", "B"]), min_test=2)] == ["site=B"]
    assert [f.name for f in leave_site_out(np.array(["A", "B", "B"]))] == ["site=A", "site=B"]


def test_check_folds_messages_name_the_side_and_list_five():
    with pytest.raises(ConfigError, match="fold h: train index out of range for 4 subjects"):
        check_folds([Fold("h", np.array([0, 4]), np.array([1]))], 4)
    with pytest.raises(ConfigError, match="fold t: test index out of range"):
        check_folds([Fold("t", np.array([0]), np.array([-1]))], 4)
    idx = np.arange(8)
    with pytest.raises(ConfigError, match=r"subject index\(es\) \[0, 1, 2, 3, 4\] in train and test"):
        check_folds([Fold("d", idx, idx)], 8)
    g = np.array([f"p{i}" for i in range(8)] * 2)  # subjects i and i + 8 are one person
    with pytest.raises(ConfigError, match=r"participant\(s\) \['p0', 'p1', 'p2', 'p3', 'p4'\] in both"):
        check_folds([Fold("e", idx, idx + 8)], 16, g)


def test_make_folds_defaults_and_scheme_aliases():
    y = np.arange(40) % 2
    s = np.array(["a"] * 20 + ["b"] * 20)
    default = make_folds("stratified", y, s)
    assert len(default) == 10
    explicit = make_folds("stratified", y, s, n_splits=10, seed=0)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(default, explicit, strict=True))
    for alias in ("stratified_kfold", "kfold"):
        same = make_folds(alias, y, s, n_splits=4)
        assert [f.test.tolist() for f in same] == [f.test.tolist() for f in make_folds("stratified", y, s, n_splits=4)]
    assert [f.name for f in make_folds("loso", y, s)] == ["site=a", "site=b"]


def test_inner_split_is_seeded_stratified_and_sized():
    y = np.array([0] * 18 + [1] * 2)
    train = np.arange(20)
    a = inner_split(train, y, val_fraction=0.5)
    assert all(np.array_equal(u, v) for u, v in zip(a, inner_split(train, y, val_fraction=0.5, seed=0), strict=True))
    assert all(np.array_equal(u, v) for u, v in zip(a, inner_split(train, y, val_fraction=0.5), strict=True))
    assert len(a[1]) == 10  # exactly val_fraction of the training fold
    for seed in range(6):  # two members of the rare class: stratified, one on each side, every seed
        fit, val = inner_split(train, y, val_fraction=0.5, seed=seed)
        assert y[val].sum() == 1 and y[fit].sum() == 1
    # a class with a single member cannot be stratified: still splits, no error
    fit, val = inner_split(np.arange(11), np.array([0] * 10 + [1]), val_fraction=0.3, seed=0)
    assert len(fit) + len(val) == 11
    # grouped: seeded and deterministic too
    g = np.repeat([f"p{i}" for i in range(20)], 2)
    yg = np.repeat(np.arange(20) % 2, 2)
    ga = inner_split(np.arange(40), yg, seed=3, groups=g)[1]
    assert np.array_equal(ga, inner_split(np.arange(40), yg, seed=3, groups=g)[1])
    assert any(not np.array_equal(ga, inner_split(np.arange(40), yg, seed=k, groups=g)[1]) for k in range(4, 8))
    assert np.array_equal(inner_split(np.arange(40), yg, groups=g)[1], inner_split(np.arange(40), yg, seed=0, groups=g)[1])


def test_make_folds_verifies_what_the_splitters_return(monkeypatch):
    """make_folds re-checks every fold: a splitter that separated a participant is refused."""
    from graphbrain.training import splits

    g = np.array(["a", "a", "b", "b"])
    bad = Fold("fold0", np.array([0, 2]), np.array([1, 3]))
    monkeypatch.setattr(splits, "stratified_kfold", lambda *a, **k: iter([bad]))
    monkeypatch.setattr(splits, "leave_site_out", lambda *a, **k: iter([bad]))
    for scheme in ("stratified", "leave_site_out"):
        with pytest.raises(ConfigError, match=r"fold fold0: participant\(s\) \['a', 'b'\] in both"):
            splits.make_folds(scheme, np.array([0, 1, 0, 1]), np.array(["x", "x", "y", "y"]), groups=g)
    overlap = Fold("fold0", np.array([0, 1]), np.array([1]))
    monkeypatch.setattr(splits, "stratified_kfold", lambda *a, **k: iter([overlap]))
    with pytest.raises(ConfigError, match="in train and test"):
        splits.make_folds("stratified", np.array([0, 1, 0, 1]), np.array(["x"] * 4))


def test_make_folds_leave_site_out_passes_labels_and_groups():
    sites = np.array(["A", "A", "B", "B", "C", "C"])
    with pytest.raises(ConfigError, match="leaves a single class"):
        make_folds("leave_site_out", np.array([0, 1, 0, 0, 0, 0]), sites)
    groups = np.array(["p1", "p2", "p1", "p3", "p4", "p5"])  # p1 scanned at A and B
    folds = make_folds("leave_site_out", np.array([0, 1, 0, 1, 0, 1]), sites, groups=groups)
    assert folds[0].train.tolist() == [3, 4, 5]
