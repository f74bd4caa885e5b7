"""The GPU suite runs end to end on a CPU at tiny size (so it is ready for a GPU machine)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
PEERS = Path(__file__).resolve().parents[3] / "shared" / "peers" / "stagin"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_suite", BENCH / "gpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_suite_small_on_cpu(tmp_path):
    suite = _load()
    res = suite.main(["--small", "--device", "cpu", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu_suite.json").read_text())
    md = (tmp_path / "gpu_suite.md").read_text()
    assert saved["device"] == "cpu" and saved["small"] is True
    # the suite only reports speed after checking equal results
    assert res["dynamic_fc"]["max_abs_diff_vs_nilearn"] < 1e-5
    assert res["static_fc"]["max_abs_diff_vs_nilearn"] < 1e-5
    assert res["dynamic_fc"]["windows"] == 6 * 9  # 6 subjects x (60 - 20) // 5 + 1 windows
    sg = res["stagin"]
    assert sg["best_batch"] in (3, 6)
    assert sg["graphbrain_b3"]["subjects_per_s"] > 0 and sg["inference"]["subjects_per_s"] > 0
    have_original = (PEERS / "model.py").is_file() and importlib.util.find_spec("einops") is not None
    if have_original:
        assert res["dynamic_fc"]["stagin_loop_max_abs_diff"] < 1e-5
        assert sg["original_b3"]["subjects_per_s"] > 0 and "ratio_b3" in sg
    else:
        assert str(sg["original_b3"]).startswith("skipped")
    for key in ("dynamic FC", "static FC correlation", "STAGIN training, batch 3", "STAGIN inference"):
        assert key in md
    assert md.count("\n|") >= 7  # header, separator and one row per measure


def test_gpu_suite_without_original_code(tmp_path):
    suite = _load()
    res = suite.main(["--small", "--device", "cpu", "--out", str(tmp_path), "--no-original"])
    assert str(res["stagin"]["original_b3"]).startswith("skipped")
    assert str(res["dynamic_fc"]["stagin_loop"]).startswith("skipped")
