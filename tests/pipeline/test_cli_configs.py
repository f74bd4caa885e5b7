"""The command line and the packaged config presets."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest
import yaml

from graphbrain.cli import main
from graphbrain.data.loaders import valid_params
from graphbrain.models import available_models
from graphbrain.pipeline import build_config

CONFIGS = files("graphbrain.configs")


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.joinpath("data").iterdir() if p.name.endswith(".yaml")))
def test_every_data_preset_key_is_a_reader_parameter(preset):
    d = yaml.safe_load(CONFIGS.joinpath("data", preset).read_text())
    source = d.pop("source")
    assert source == preset.removesuffix(".yaml")
    assert set(d) <= set(valid_params(source))


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.joinpath("model").iterdir() if p.name.endswith(".yaml")))
def test_every_model_preset_is_registered_and_composes(preset):
    name = preset.removesuffix(".yaml")
    assert name in available_models()
    cfg = build_config(overrides=[f"model={name}"])
    assert cfg["model"]["name"] == name


def test_cli_run_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "data.n_subjects=40", "data.n_rois=10", "data.effect_size=2.0", "cv.n_splits=4",
               f"output_dir={out}", "progress=false", "cache_dir=null"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "auroc" in printed and str(out) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["auroc"] > 0.8 and len(metrics["per_fold"]) == 4


def test_cli_errors_are_clear(capsys):
    assert main(["run", "data.bogus=1"]) == 2
    assert "Could not override 'data.bogus'" in capsys.readouterr().err
    assert main(["run", "data=abide_pcp"]) == 2
    assert "data.root" in capsys.readouterr().err
    assert main(["predict"]) == 2
    assert "model_dir" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["--help"]) == 0


@pytest.mark.realdata
def test_abide_train_on_some_sites_predict_others(abide_root, tmp_path):
    root = str(abide_root)
    rc = main(["train", "data=abide_pcp", f"data.root={root}", "data.sites=[UM_1,USM,PITT,UM_2]",
               f"output_dir={tmp_path / 'm'}", "progress=false", "cache_dir=null"])
    assert rc == 0
    rc = main(["predict", f"model_dir={tmp_path / 'm'}", "data=abide_pcp", f"data.root={root}",
               "data.sites=[KKI,OLIN,OHSU]", f"output_dir={tmp_path / 'p'}"])
    assert rc == 0
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["n_subjects"] == 86
    assert metrics["auroc"] > 0.55  # unseen sites, real data: modest but above chance
    import pandas as pd

    train_ids = set(pd.read_parquet(tmp_path / "m" / "training_subjects.parquet")["subject_id"])
    pred_ids = set(pd.read_parquet(tmp_path / "p" / "predictions.parquet")["subject_id"])
    assert train_ids.isdisjoint(pred_ids) and len(train_ids) == 323 - 86


def test_connectome_and_train_presets_use_known_keys():
    from graphbrain.training.torch_estimator import CONNECTOME_DEFAULTS
    from graphbrain.training.trainer import TRAIN_DEFAULTS

    for p in CONFIGS.joinpath("connectome").iterdir():
        if p.name.endswith(".yaml"):
            assert set(yaml.safe_load(p.read_text())) <= set(CONNECTOME_DEFAULTS), p.name
    train = yaml.safe_load(CONFIGS.joinpath("train", "default.yaml").read_text())
    assert set(train) <= set(TRAIN_DEFAULTS)
