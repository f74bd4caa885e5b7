"""The run -> explain -> report path through the CLI, and the report opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbrain.cli import main

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain_run")
    coords = d / "coords.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.uniform(-50, 50, (8, 3)), columns=["x", "y", "z"]).assign(name=[f"area {i}" for i in range(8)]).to_csv(coords, index=False)
    rc = main([
        "run", "model=logreg", "data.n_subjects=48", "data.n_rois=8", "data.n_planted=3", "data.effect_size=1.5",
        "cv.n_splits=3", "explain=true", f"output_dir={d / 'run'}", "progress=false", "cache_dir=null",
        f"explain_atlas.coords={coords}", "explain_options.random=4", "explain_options.steps=4",
        "explain_options.permutations=200", "explain_options.methods=[linear]",
    ])
    assert rc == 0
    return d / "run"


def test_run_with_explain_writes_models_tables_and_report(run_dir):
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == ["r0-fold0", "r0-fold1", "r0-fold2"]
    ex = run_dir / "explain"
    for name in ("top_rois", "top_edges", "class_difference_roi", "stability", "faithfulness", "attributions_roi", "ground_truth"):
        assert (ex / f"{name}.parquet").exists(), name
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    att = pd.read_parquet(ex / "attributions_roi.parquet")
    lin = att[att["method"] == "linear"]
    assert len(lin) == len(pred) * 8 and lin["subject_id"].iloc[::8].tolist() == pred["subject_id"].tolist()
    top = pd.read_parquet(ex / "top_rois.parquet")
    assert top["label"].str.startswith("area ").all()  # names from the coordinate table
    assert {"x", "y", "z", "p", "q"} <= set(top.columns)
    faith = pd.read_parquet(ex / "faithfulness.parquet")
    assert set(faith["method"]) == {"linear"} and (faith["faithful"] == "yes").all()
    html = (ex / "report.html").read_text()
    assert "Excluded subjects" in html and "Configuration" in html and "AUROC" in html.upper()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) >= 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # self-contained: no external files or links
    assert (ex / "figures" / "linear_glass_rois.svg").exists()


def test_explain_command_reuses_saved_models(run_dir, tmp_path, monkeypatch):
    import graphbrain.explain.attribution as attribution

    def no_refit(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("refitted although the fold models were saved")

    monkeypatch.setattr(attribution, "build_classifier", no_refit, raising=False)
    out = tmp_path / "again"
    rc = main(["explain", f"run_dir={run_dir}", "method=linear", "formats=png", "faithfulness=false",
               "permutations=50", "refit=false", f"out={out}", "progress=false"])
    assert rc == 0
    a = pd.read_parquet(out / "attributions_roi.parquet")
    b = pd.read_parquet(run_dir / "explain" / "attributions_roi.parquet")
    b = b[b["method"] == "linear"].reset_index(drop=True)
    assert np.allclose(a["attribution"], b["attribution"])
    assert not list((out / "figures").glob("*.svg"))
    assert main(["explain", f"run_dir={run_dir}", "bogus=1"]) == 2


@pytest.mark.skipif(CHROMIUM is None, reason="headless chromium is not installed")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    report = run_dir / "explain" / "report.html"
    # same page plus a probe that writes, once loaded, how many images failed to decode
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.title='IMGS '+i.length+' BROKEN '+i.filter(x=>!(x.complete&&x.naturalWidth>0)).length;});"
        "</script></body>",
    ))
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"<title>IMGS (\d+) BROKEN (\d+)</title>", dom.stdout)
    assert m, dom.stderr[-500:]
    assert int(m.group(1)) >= 6 and int(m.group(2)) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([*base, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 2000
    assert img.std() > 0.05 and (img < 0.5).mean() > 0.01  # text and figures, not a blank page
