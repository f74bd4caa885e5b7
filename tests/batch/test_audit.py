"""Leakage audit: planted duplicates found (exact and near), split overlaps, site confounding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graphbrain.batch.audit import correlated_pairs, site_confounding
from graphbrain.batch.cli_audit import main as audit_main


def test_correlated_pairs_match_brute_force():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 50)).astype(np.float32)
    x[7] = 3 * x[2] + 0.1 * rng.standard_normal(50)  # r ~ 0.999
    x[30] = x[11] + 0.6 * rng.standard_normal(50)  # r ~ 0.86
    x[5] = 4.0  # constant: correlates with nothing
    with np.errstate(invalid="ignore", divide="ignore"):
        full = np.corrcoef(x.astype(np.float64))
    for thr in (0.8, 0.95):
        i, j, r = correlated_pairs(x, thr, block=3)
        iu = np.triu_indices(40, k=1)
        with np.errstate(invalid="ignore"):
            want = {(a, b) for a, b in zip(*iu, strict=True) if full[a, b] >= thr}
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == want
        np.testing.assert_allclose(r, full[i, j], atol=1e-5)
    assert {(2, 7)} == set(zip(*correlated_pairs(x, 0.95)[:2], strict=True))


def test_site_confounding_auroc():
    sites = np.repeat(["a", "b", "c", "d"], 20)
    confounded = np.r_[np.ones(20), np.zeros(20), np.ones(20), np.zeros(20)].astype(int)
    auroc, table = site_confounding(confounded, sites)
    assert auroc == pytest.approx(1.0)
    assert table.set_index("site")["positive_rate"].tolist() == [1.0, 0.0, 1.0, 0.0]
    balanced = np.tile([0, 1], 40)  # every site half / half: site says nothing
    auroc, _ = site_confounding(balanced, sites)
    assert auroc <= 0.6


def test_audit_cli_finds_planted_leaks(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "ts"
    folder.mkdir(parents=True)
    rows = []
    base = {}
    for i in range(24):
        # subject-specific network structure (Ledoit-Wolf shrinks pure noise to the identity)
        ts = rng.standard_normal((100, 3)) @ rng.standard_normal((3, 20)) + rng.standard_normal((100, 20))
        ts = ts.astype(np.float32)
        base[i] = ts
        site = f"site{i % 3}"
        rows.append({"subject_id": f"s{i:03d}", "label": int(site == "site0"), "site": site})
        np.save(folder / f"s{i:03d}.npy", ts)
    np.save(folder / "dup_of_s000.npy", base[0])  # the same scan uploaded by another site
    rows.append({"subject_id": "dup_of_s000", "label": 1, "site": "site1"})
    near = 2.0 * base[1] + 5.0 + 0.05 * rng.standard_normal(base[1].shape).astype(np.float32)
    np.save(folder / "near_s001.npy", near)  # rescaled, offset, slightly noisy copy
    rows.append({"subject_id": "near_s001", "label": 0, "site": "site2"})
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "labels.csv", index=False)
    split = pd.DataFrame({
        "subject_id": ["s000", "s001", "s002", "dup_of_s000", "s002", "near_s001"],
        "split": ["train", "train", "train", "test", "test", "test"],
    })
    split.to_csv(tmp_path / "split.csv", index=False)
    out = tmp_path / "audit"
    rc = audit_main([
        "data=precomputed", f"data.path_or_files={folder}", f"data.labels_table={tmp_path / 'data' / 'labels.csv'}",
        f"output_dir={out}", f"split={tmp_path / 'split.csv'}", "audit.strict=true", "progress=false",
    ])
    assert rc == 1  # strict: warnings -> exit 1
    dup = pd.read_parquet(out / "duplicates.parquet")
    pairs = {(r.subject_a, r.subject_b): r for r in dup.itertuples()}
    assert set(pairs) == {("dup_of_s000", "s000"), ("near_s001", "s001")}
    assert pairs[("dup_of_s000", "s000")].kind == "identical_timeseries"
    assert pairs[("near_s001", "s001")].kind == "correlated_fc" and pairs[("near_s001", "s001")].similarity > 0.98
    assert dup["cross_site"].all()
    ov = pd.read_parquet(out / "split_overlap.parquet")
    kinds = set(zip(ov["kind"], ov["subject_train"], ov["subject_test"], strict=True))
    assert kinds == {
        ("same_subject", "s002", "s002"),
        ("duplicate:identical_timeseries", "s000", "dup_of_s000"),
        ("duplicate:correlated_fc", "s001", "near_s001"),
    }
    report = json.loads((out / "audit.json").read_text())
    assert report["site_auroc"] > 0.9  # label = (site == site0), almost
    assert any("predictable from site" in w for w in report["warnings"])
    assert report["n_subjects"] == 26
