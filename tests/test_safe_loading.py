"""Safe loading, proven: pickles, truncated files and wrong tensors are refused with a clear
graphbrain error, and nothing in a file is ever executed.

Every malicious pickle here would create a marker file when unpickled (its ``__reduce__``
calls ``pathlib.Path.touch``); each test asserts the marker does not exist afterwards.
Also: a saved model folder holds only JSON and safetensors files, and
``run_pipeline(output_dir=None)`` writes nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from graphbrain.data import make_synthetic_cohort
from graphbrain.errors import DataError, GraphbrainError
from graphbrain.pipeline import PipelineResult, run_pipeline
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.torch_estimator import TorchClassifier


class _Payload:
    """Unpickling this calls ``Path(marker).touch()``: proof of code execution."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _pickle_bytes(marker) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=4)


def _torch_save_bytes(marker, tmp) -> bytes:
    p = tmp / "evil.pt"
    torch.save({"weight": _Payload(marker)}, p)
    return p.read_bytes()


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n_subjects=20, n_rois=6, n_timepoints=50, n_sites=2, seed=4)


@pytest.fixture(scope="module")
def saved(cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    build_classifier("logreg", connectome={"kind": "tangent"}).fit(cohort).save(root / "sk")
    TorchClassifier("gcn", model_params={"hidden": 8}, connectome={"kind": "tangent"},
                    train={"epochs": 1, "progress": False}).fit(cohort).save(root / "torch")
    res = run_pipeline(cohort=cohort, cv={"scheme": "stratified", "n_splits": 2}, output_dir=root / "res",
                       progress=False, overrides=["cache_dir=null"])
    assert res.output_dir == root / "res"
    return root


def _copy(saved, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(saved / name, dst)
    return dst


LOADERS = {
    "sk": [load_classifier],
    "torch": [load_classifier, TorchClassifier.load],
    "res": [PipelineResult.load],
}
TARGETS = [
    ("sk", "arrays.safetensors"),
    ("torch", "weights.safetensors"),
    ("torch", "transformer.safetensors"),
    ("torch", "scaler.safetensors"),
    ("res", "attention.safetensors"),
]


def test_saved_model_folders_hold_only_json_and_safetensors(saved):
    for name in ("sk", "torch"):
        files = sorted(p.name for p in (saved / name).iterdir())
        assert files and all(f.endswith((".json", ".safetensors")) for f in files), files
        assert "classifier.json" in files
    for p in (saved / "res").iterdir():  # results: JSON, YAML, parquet, safetensors only
        assert p.suffix in {".json", ".yaml", ".parquet", ".safetensors"}, p.name


@pytest.mark.parametrize(("folder", "target"), TARGETS)
@pytest.mark.parametrize("payload", ["pickle", "torch.save"])
def test_pickles_are_refused_and_never_executed(saved, tmp_path, folder, target, payload):
    if not (saved / folder / target).exists():
        pytest.skip(f"{folder} has no {target} in this configuration")
    d = _copy(saved, folder, tmp_path)
    marker = tmp_path / "EXECUTED"
    data = _pickle_bytes(marker) if payload == "pickle" else _torch_save_bytes(marker, tmp_path)
    assert not marker.exists()
    (d / target).write_bytes(data)
    for loader in LOADERS[folder]:
        with pytest.raises(DataError, match="never unpickles") as err:
            loader(d)
        assert target in str(err.value) or target in (err.value.source or "")
        assert "pickle" in str(err.value) or "zip archive" in str(err.value)
    assert not marker.exists()
    # the payload is live: unpickling it really would have run code
    pickle.loads(_pickle_bytes(marker))
    assert marker.exists()


@pytest.mark.parametrize(("folder", "target"), TARGETS)
def test_truncated_safetensors_are_refused(saved, tmp_path, folder, target):
    if not (saved / folder / target).exists():
        pytest.skip(f"{folder} has no {target}")
    d = _copy(saved, folder, tmp_path)
    raw = (d / target).read_bytes()
    for cut in (3, len(raw) // 2, len(raw) - 1):
        (d / target).write_bytes(raw[:cut])
        for loader in LOADERS[folder]:
            with pytest.raises(DataError, match="truncated"):
                loader(d)


@pytest.mark.parametrize("folder", ["sk", "torch"])
def test_truncated_or_pickled_json_is_refused(saved, tmp_path, folder):
    d = _copy(saved, folder, tmp_path)
    marker = tmp_path / "EXECUTED"
    raw = (d / "classifier.json").read_bytes()
    for bad in (raw[: len(raw) // 2], _pickle_bytes(marker), b"[1, 2]"):
        (d / "classifier.json").write_bytes(bad)
        for loader in LOADERS[folder]:
            with pytest.raises(GraphbrainError, match="classifier.json|JSON|folder"):
                loader(d)
    assert not marker.exists()


def test_wrong_dtype_or_shape_arrays_are_refused_sklearn(saved, tmp_path):
    d = _copy(saved, "sk", tmp_path)
    from safetensors.numpy import load_file

    good = load_file(str(d / "arrays.safetensors"))
    cases = {
        "int scaler": {**good, "scaler.mean": good["scaler.mean"].astype(np.int64)},
        "short coef": {**good, "model.coef": good["model.coef"][:, :-1].copy()},
        "missing": {k: v for k, v in good.items() if k != "scaler.scale"},
    }
    for name, arrays in cases.items():
        save_file(arrays, str(d / "arrays.safetensors"))
        with pytest.raises(DataError, match="dtype|shapes|missing") as err:
            load_classifier(d)
        assert "arrays.safetensors" in (err.value.source or ""), name


def test_wrong_dtype_or_shape_weights_are_refused_torch(saved, tmp_path):
    from safetensors.torch import load_file
    from safetensors.torch import save_file as save_torch

    d = _copy(saved, "torch", tmp_path)
    good = load_file(str(d / "weights.safetensors"))
    key = next(k for k, v in good.items() if v.ndim == 2)
    cases = {
        "dtype": {**good, key: good[key].to(torch.float64)},
        "shape": {**good, key: torch.zeros(good[key].shape[0] + 1, good[key].shape[1])},
        "renamed": {**{k: v for k, v in good.items() if k != key}, key + "_x": good[key]},
    }
    for name, state in cases.items():
        save_torch(state, str(d / "weights.safetensors"))
        for loader in LOADERS["torch"]:
            with pytest.raises(DataError, match="tensor|weights do not match") as err:
                loader(d)
            assert "weights.safetensors" in (err.value.source or ""), name


def test_result_folder_with_unsafe_yaml_or_broken_parquet_is_refused(saved, tmp_path):
    d = _copy(saved, "res", tmp_path)
    marker = tmp_path / "EXECUTED"
    (d / "config.yaml").write_text(f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    with pytest.raises(DataError, match="cannot load"):
        PipelineResult.load(d)
    assert not marker.exists()
    d2 = _copy(saved, "res", tmp_path / "b")
    (d2 / "predictions.parquet").write_bytes(_pickle_bytes(marker))
    with pytest.raises(DataError, match="cannot load"):
        PipelineResult.load(d2)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["kg.json", "kg.json.gz", "tsv"])
def test_kg_loaders_refuse_pickles_and_truncated_files(tmp_path, name):
    from graphbrain.kg import io as kg_io

    marker = tmp_path / "EXECUTED"
    p = tmp_path / name
    if name == "tsv":
        p.mkdir()
        (p / "triples.tsv").write_bytes(_pickle_bytes(marker))
    else:
        p.write_bytes(_pickle_bytes(marker))
    with pytest.raises(GraphbrainError):
        kg_io.load(p)
    if name == "tsv":
        (p / "triples.tsv").write_text('head\trelation\ttail\tsource\tattributes\na\tis_a\tb\t\t{"x": \n')
        with pytest.raises(GraphbrainError, match="triples.tsv:2"):
            kg_io.load(p)
    else:
        p.write_bytes(b'{"concepts": [' if name == "kg.json" else gzip.compress(b'{"concepts": ['))
        with pytest.raises(GraphbrainError):
            kg_io.load(p)
    assert not marker.exists()


# -- file hygiene ------------------------------------------------------------------------------


def test_output_dir_none_writes_nothing(cohort, tmp_path):
    os.chdir(tmp_path)  # the autouse fixture restores the working directory afterwards
    res = run_pipeline(cohort=cohort, cv={"scheme": "stratified", "n_splits": 2}, output_dir=None,
                       progress=False, overrides=["cache_dir=null"])
    assert res.config["output_dir"] is None and res.output_dir is None
    assert list(tmp_path.iterdir()) == []
    # and the default (no output_dir argument) does write, relative to the working directory
    run_pipeline(cohort=cohort, cv={"scheme": "stratified", "n_splits": 2}, progress=False,
                 overrides=["cache_dir=null"])
    assert (tmp_path / "outputs").is_dir()


def test_cache_key_covers_fc_source_code(tmp_path, monkeypatch):
    import graphbrain.cache as cache

    real = cache.code_fingerprint
    x = np.arange(12.0).reshape(4, 3)
    k1 = cache.content_key([x], {"kind": "correlation"})
    assert cache.content_key([x], {"kind": "correlation"}) == k1
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited-fc-code")
    assert cache.content_key([x], {"kind": "correlation"}) != k1
    # the fingerprint reads the source files: editing a module changes it
    mod = tmp_path / "fake_fc_module.py"
    mod.write_text("def fc(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = real.__wrapped__(("fake_fc_module",), ())
    mod.write_text("def fc(x):\n    return -x\n")
    b = real.__wrapped__(("fake_fc_module",), ())
    assert a != b
    # and the packaged FC modules are part of the default fingerprint
    assert "graphbrain.connectome.static" in cache.CODE_MODULES
    assert json.dumps(cache.LIBRARIES)  # library versions are hashed too
