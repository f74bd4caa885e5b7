"""`graphbrain run -m`: every combination run, gathered into one comparison table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from graphbrain.cli import main as cli_main
from graphbrain.pipeline import run_pipeline
from graphbrain.pipeline.sweep import expand

BASE = ["data.n_subjects=40", "data.n_rois=10", "data.n_timepoints=80", "cv.n_splits=2", "progress=false",
        "cache_dir=null"]


def test_expand_is_the_cartesian_product():
    runs, swept = expand(["model=logreg,svm", "connectome.window=range(20,41,10)", "cv.n_splits=3"])
    assert swept == ["model", "connectome.window"]
    assert len(runs) == 6 and runs[0] == ["model=logreg", "connectome.window=20", "cv.n_splits=3"]
    assert runs[-1] == ["model=svm", "connectome.window=40", "cv.n_splits=3"]


def test_multirun_table_matches_single_runs(tmp_path, capsys):
    d = tmp_path / "sweep"
    rc = cli_main(["run", "-m", "model=logreg,svm", "connectome=correlation,partial_correlation", *BASE,
                   f"output_dir={d}"])
    assert rc == 0
    table = pd.read_parquet(d / "comparison.parquet")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert set(zip(table["model"], table["connectome"], strict=True)) == {
        ("logreg", "correlation"), ("logreg", "partial_correlation"), ("svm", "correlation"), ("svm", "partial_correlation")}
    for r in table.itertuples():  # each row is its run's metrics.json
        m = json.loads((tmp_path / "sweep" / r.run_dir.split("/")[-1] / "metrics.json").read_text())
        assert r.auroc == pytest.approx(m["auroc"]) and r.auroc_sd == pytest.approx(m["std"]["auroc"])
    # and the same configuration run alone gives the same number
    one = run_pipeline(overrides=["model=svm", "connectome=partial_correlation", *BASE], output_dir=None)
    row = table[(table["model"] == "svm") & (table["connectome"] == "partial_correlation")].iloc[0]
    assert row.auroc == pytest.approx(one["auroc"])
    md = (d / "comparison.md").read_text()
    assert md.startswith("| model | connectome | AUROC |") and md.count("\n") == 6
    assert "4 runs, 0 failed" in capsys.readouterr().out
    # rerun: finished runs are not recomputed; a failing combination is recorded, the rest go on
    rc = cli_main(["run", "-m", "model=logreg,svm", "connectome=correlation,nosuchkind", *BASE, f"output_dir={d}"])
    assert rc == 1
    again = pd.read_parquet(d / "comparison.parquet").set_index("overrides")
    assert again["status"].value_counts().to_dict() == {"done_before": 2, "failed": 2}
    assert again.loc[again["status"] == "failed", "error"].str.contains("nosuchkind").all()
