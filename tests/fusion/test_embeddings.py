"""Embedding tables: every format round-trips exactly; pickles and bad tables are refused."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from graphbrain.errors import DataError
from graphbrain.fusion.embeddings import EmbeddingTable, read_embeddings, save_safetensors


@pytest.fixture
def table() -> EmbeddingTable:
    rng = np.random.default_rng(0)
    return EmbeddingTable([f"sub-{i}" for i in range(5)], rng.standard_normal((5, 7)).astype(np.float32))


def test_every_format_round_trips_exactly(tmp_path, table):
    folder = tmp_path / "npy"
    folder.mkdir()
    for i, sid in enumerate(table.ids):
        if i % 2:
            np.save(folder / f"{sid}.npy", table.values[i])
        else:
            np.savez(folder / f"{sid}.npz", emb=table.values[i])
    table.save(tmp_path / "t.parquet")
    table.to_frame().to_csv(tmp_path / "t.csv", index=False)
    save_safetensors(table, tmp_path / "t.safetensors")
    from safetensors.numpy import save_file

    save_file({sid: table.values[i] for i, sid in enumerate(table.ids)}, str(tmp_path / "per_subject.safetensors"))
    for path in (folder, tmp_path / "t.parquet", tmp_path / "t.csv", tmp_path / "t.safetensors",
                 tmp_path / "per_subject.safetensors"):
        got = read_embeddings(path)
        order = [got.ids.index(s) for s in table.ids]
        assert sorted(got.ids) == sorted(table.ids), path
        np.testing.assert_allclose(got.values[order], table.values, rtol=0, atol=1e-6 if path.suffix == ".csv" else 0)


def test_align_marks_missing_subjects_and_never_imputes(table):
    vals, present = table.align(["sub-3", "nobody", "sub-0"])
    assert present.tolist() == [True, False, True]
    np.testing.assert_array_equal(vals[0], table.values[3])
    assert not vals[1].any()


def test_pickles_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "emb"
    folder.mkdir()
    np.save(folder / "sub-0.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="unpickling"):
        read_embeddings(folder)
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"sub-0": [1.0]}))
    with pytest.raises(DataError, match="pickle"):
        read_embeddings(tmp_path / "x.pkl")
    assert not marker.exists()


def test_bad_tables_are_named(tmp_path):
    pd.DataFrame({"subject_id": ["a", "a"], "e0": [1.0, 2.0]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match="duplicate"):
        read_embeddings(tmp_path / "dup.csv")
    pd.DataFrame({"subject_id": ["a", "b"], "e0": [1.0, np.nan]}).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(DataError, match="NaN") as err:
        read_embeddings(tmp_path / "nan.csv")
    assert "nan.csv" in str(err.value)
    pd.DataFrame({"who": ["a"], "e0": [1.0]}).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(DataError, match="subject-id column"):
        read_embeddings(tmp_path / "noid.csv")
    assert read_embeddings(tmp_path / "noid.csv", id_column="who").ids == ["a"]
