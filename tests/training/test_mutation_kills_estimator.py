"""Tests written against mutants of ``training/estimator.py`` that the suite let survive.

Safe loading must refuse bad files with a DataError that names the file and carries a
machine-readable reason; a state with a missing tensor is as wrong as one with an extra
tensor; a model folder may be a new nested path; a long ROI list is shortened readably
(``python tools/mutation.py estimator``; see docs/testing.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from graphbrain.data import make_synthetic_cohort
from graphbrain.errors import DataError
from graphbrain.training import build_classifier, load_classifier
from graphbrain.training.estimator import _short, check_state, read_json_file


def test_read_json_file_names_the_file_and_the_reason(tmp_path: Path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="file not found") as err:
        read_json_file(missing)
    assert err.value.reason == "missing_file" and str(missing) in str(err.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "sklearn",')
    with pytest.raises(DataError, match="not a valid JSON file") as err:
        read_json_file(broken)
    assert err.value.reason == "unsafe_or_corrupt_file" and str(broken) in str(err.value)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object, got list") as err:
        read_json_file(listed)
    assert err.value.reason == "wrong_format" and str(err.value).startswith(f"{listed}: ")


def test_check_state_refuses_a_missing_tensor_as_well_as_an_extra_one():
    a, b = np.zeros((2, 3), np.float32), np.ones(3, np.float32)
    assert check_state({"w": a, "b": b}, {"w": a, "b": b}, "x") is not None
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \[\]") as err:
        check_state({"w": a, "b": b}, {"w": a}, "folder/weights.safetensors")
    assert err.value.reason == "wrong_weights"
    with pytest.raises(DataError, match=r"missing \[\], unexpected \['c'\]"):
        check_state({"w": a}, {"w": a, "c": b}, "folder/weights.safetensors")


def test_long_roi_lists_are_shortened_to_the_first_six():
    names = [f"r{i}" for i in range(9)]
    assert _short(names) == "['r0', 'r1', 'r2', 'r3', 'r4', 'r5', ... (9 ROIs)]"
    assert _short(names[:6]) == repr(names[:6])


def test_model_saves_into_a_new_nested_folder_and_loads_back(tmp_path: Path):
    cohort = make_synthetic_cohort(n_subjects=20, n_rois=6, n_timepoints=50, n_sites=2, seed=2)
    clf = build_classifier("logreg").fit(cohort)
    target = tmp_path / "runs" / "fold3" / "model"
    clf.save(target)
    np.testing.assert_allclose(load_classifier(target).predict_proba(cohort), clf.predict_proba(cohort))


def test_inconsistent_saved_array_shapes_are_refused_with_a_reason(tmp_path: Path):
    cohort = make_synthetic_cohort(n_subjects=20, n_rois=6, n_timepoints=50, n_sites=2, seed=3)
    build_classifier("logreg").fit(cohort).save(tmp_path / "m")
    arrays = {
        "scaler.mean": np.zeros(15), "scaler.scale": np.ones(15), "model.coef": np.zeros((1, 14)),
        "model.intercept": np.zeros(1), "model.classes": np.array([0, 1]),
    }
    save_file(arrays, str(tmp_path / "m" / "arrays.safetensors"))
    meta = json.loads((tmp_path / "m" / "classifier.json").read_text())
    assert meta["type"] == "sklearn"
    with pytest.raises(DataError, match=r"array shapes disagree: scaler \(15,\)") as err:
        load_classifier(tmp_path / "m")
    assert err.value.reason == "wrong_weights"


def _header_file(path: Path, header: bytes, body: bytes = b"") -> Path:
    path.write_bytes(len(header).to_bytes(8, "little") + header + body)
    return path


def test_check_safetensors_describes_what_the_file_is(tmp_path: Path):
    """Each refusal says what the file looks like (reason ``unsafe_or_corrupt_file``);
    an unreadable path is ``unreadable``; a valid file with no tensors is accepted."""
    import torch

    from graphbrain.training.estimator import check_safetensors

    cases = {
        "zip": (tmp_path / "z.safetensors", "a zip archive (torch.save format)"),
        "cut": (tmp_path / "c.safetensors", "truncated (the safetensors header is cut off)"),
        "junk": (tmp_path / "j.safetensors", "truncated or not a safetensors file"),
        "offsets": (_header_file(tmp_path / "o.safetensors",
                                 b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": "x"}}'),
                    "not a safetensors file (bad header)"),
    }
    torch.save({"w": torch.zeros(2)}, cases["zip"][0])
    # the length field promises 200 header bytes, the file ends after 20
    cases["cut"][0].write_bytes((200).to_bytes(8, "little") + b'{"a": {"dtype": "F32"')
    cases["junk"][0].write_bytes(b"\x01\x02\x03\x04\x05\x06\x07\x08 not a header at all")
    for path, what in cases.values():
        with pytest.raises(DataError) as err:
            check_safetensors(path)
        assert f"the file is {what};" in str(err.value), (path.name, str(err.value))
        assert err.value.reason == "unsafe_or_corrupt_file"
    with pytest.raises(DataError, match="cannot read the file") as err:
        check_safetensors(tmp_path)  # a folder, not a file
    assert err.value.reason == "unreadable"
    empty = tmp_path / "empty.safetensors"
    save_file({}, str(empty))
    check_safetensors(empty)  # no tensors is still a well-formed file


def test_an_unfitted_classifier_says_so():
    from graphbrain.errors import ConfigError

    cohort = make_synthetic_cohort(n_subjects=10, n_rois=8, n_timepoints=40, n_sites=2, seed=4)
    clf = build_classifier("logreg")
    for call in (lambda: clf.predict_proba(cohort), clf.edge_weights):
        with pytest.raises(ConfigError, match="^classifier is not fitted$"):
            call()
