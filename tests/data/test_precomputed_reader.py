"""Reader for precomputed .npy/.csv time series and FC matrices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbrain.data import read_matrix, read_precomputed
from graphbrain.errors import ConfigError, DataError

R = 6


def make_folder(root: Path, kind: str = "timeseries", n: int = 4, t: int = 30) -> Path:
    """``n`` subjects ``s0..``: even ones as .npy, odd ones as .csv with an ROI header;
    plus labels.csv (in the same folder, so it must not be read as a subject)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"roi{j}" for j in range(R)]
    for i in range(n):
        x = rng.standard_normal((t, R))
        arr = x if kind == "timeseries" else np.corrcoef(x.T)
        if i % 2 == 0:
            np.save(root / f"s{i}.npy", arr)
        else:
            frame = pd.DataFrame(arr, columns=names)
            if kind == "fc":
                frame.index = names
            frame.to_csv(root / f"s{i}.csv", index=kind == "fc")
    pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "label": [i % 2 for i in range(n)],
            "site": ["A", "A", "B", "B"][:n],
            "age": [20.0 + i for i in range(n)],
        }
    ).to_csv(root / "labels.csv", index=False)
    return root


@pytest.mark.parametrize("kind", ["timeseries", "fc"])
def test_reads_folder(tmp_path: Path, kind: str) -> None:
    root = make_folder(tmp_path / "d", kind)
    cohort = read_precomputed(root, root / "labels.csv", kind=kind, on_invalid="raise")
    assert cohort.ids == ["s0", "s1", "s2", "s3"] and cohort.labels.tolist() == [0, 1, 0, 1]
    assert list(cohort.sites) == ["A", "A", "B", "B"]
    assert cohort[2].covariates == {"age": 22}
    assert cohort.n_rois == R
    if kind == "timeseries":
        np.testing.assert_allclose(cohort[0].timeseries, np.load(root / "s0.npy"), rtol=1e-6)
        np.testing.assert_allclose(
            cohort[1].timeseries, pd.read_csv(root / "s1.csv").to_numpy(), rtol=1e-6
        )
        assert cohort[1].roi_names == [f"roi{j}" for j in range(R)]
    else:
        assert all(s.timeseries is None and s.fc.shape == (R, R) for s in cohort)
        np.testing.assert_allclose(
            cohort[1].fc, pd.read_csv(root / "s1.csv", index_col=0).to_numpy(), rtol=1e-6
        )
        with pytest.raises(DataError, match="only has a precomputed connectivity matrix"):
            cohort.timeseries()


def test_text_labels_mapping_files_list_and_tsv(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "d")
    table = pd.DataFrame({"id": ["s0", "s1"], "dx": ["ASD", "TD"]})
    table.to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    cohort = read_precomputed(
        [root / "s0.npy", root / "s1.csv"],
        tmp_path / "labels.tsv",
        id_column="id",
        label_column="dx",
        label_map={"ASD": 1, "TD": 0},
        tr=2.0,
    )
    assert cohort.labels.tolist() == [1, 0] and cohort[0].site is None and cohort[0].tr == 2.0
    with pytest.raises(DataError, match="'ASD' in column 'dx' is missing or not an integer"):
        read_precomputed(
            [root / "s0.npy"],
            tmp_path / "labels.tsv",
            id_column="id",
            label_column="dx",
            on_invalid="raise",
        )
    unlabeled = read_precomputed({"x": root / "s0.npy"})
    assert unlabeled.ids == ["x"] and unlabeled[0].label is None
    with pytest.raises(ConfigError, match="kind must be"):
        read_precomputed(root, kind="graph")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no id column 'subject'"):
        read_precomputed(root, root / "labels.csv", id_column="subject")


# --- every bad input: an error naming the file under "raise", an exclusion under "exclude" ---


def _npy(root: Path, name: str, arr: np.ndarray) -> None:
    for old in root.glob(name + ".*"):
        old.unlink()
    np.save(root / f"{name}.npy", arr)


def _nan(root: Path) -> None:
    x = np.load(root / "s2.npy")
    x[4, 1] = np.nan
    _npy(root, "s2", x)


def _inf(root: Path) -> None:
    x = np.load(root / "s2.npy")
    x[0, 0] = -np.inf
    _npy(root, "s2", x)


def _constant(root: Path) -> None:
    x = np.load(root / "s2.npy")
    x[:, 5] = 3.0
    _npy(root, "s2", x)


def _short(root: Path) -> None:
    _npy(root, "s2", np.load(root / "s2.npy")[:3])


def _roi_mismatch(root: Path) -> None:
    _npy(root, "s2", np.load(root / "s2.npy")[:, :4])


def _three_d(root: Path) -> None:
    _npy(root, "s2", np.zeros((3, 4, 5)))


def _garbage_npy(root: Path) -> None:
    (root / "s2.npy").write_bytes(b"\x93NUMPY garbage")


def _truncated_npy(root: Path) -> None:
    p = root / "s2.npy"
    p.write_bytes(p.read_bytes()[:200])


def _pickled(root: Path) -> None:
    np.save(root / "s2.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _text_cells(root: Path) -> None:
    (root / "s2.npy").unlink()
    (root / "s2.csv").write_text("a,b\n1,2\n3,oops\n")


def _no_row(root: Path) -> None:
    np.save(root / "s9.npy", np.random.default_rng(1).standard_normal((30, R)))


def _no_label(root: Path) -> None:
    table = pd.read_csv(root / "labels.csv")
    table.loc[2, "label"] = np.nan
    table.to_csv(root / "labels.csv", index=False)


def _no_file(root: Path) -> None:
    (root / "s2.npy").unlink()


TS_CASES: list[tuple[str, Callable[[Path], None], str, str, str]] = [
    ("nan", _nan, "non_finite", "non-finite", "s2.npy"),
    ("inf", _inf, "non_finite", "non-finite", "s2.npy"),
    ("constant roi", _constant, "constant_roi", "constant \\(zero-variance\\)", "s2.npy"),
    ("too short", _short, "too_short", "too short: 3 time points", "s2.npy"),
    ("roi mismatch", _roi_mismatch, "roi_mismatch", "ROI count mismatch: 4 ROIs", "s2.npy"),
    ("3-D array", _three_d, "wrong_shape", "expected a 2-D \\(T, R\\) time series", "s2.npy"),
    ("garbage npy", _garbage_npy, "unreadable", "cannot read matrix file", "s2.npy"),
    ("truncated npy", _truncated_npy, "unreadable", "cannot read matrix file", "s2.npy"),
    ("pickled npy", _pickled, "unreadable", "cannot read matrix file", "s2.npy"),
    ("text cells", _text_cells, "unreadable", "cannot read matrix file", "s2.csv"),
    ("file without row", _no_row, "missing_label", "'s9' has no row in the labels table", "s9.npy"),
    ("empty label", _no_label, "missing_label", "is missing or not an integer", "s2.npy"),
    (
        "row without file",
        _no_file,
        "missing_file",
        "'s2' is in the labels table but has no",
        "labels.csv",
    ),
]


@pytest.mark.parametrize(
    ("case", "spoil", "reason", "message", "fname"), TS_CASES, ids=[c[0] for c in TS_CASES]
)
def test_bad_timeseries(tmp_path: Path, case, spoil, reason, message, fname) -> None:
    root = make_folder(tmp_path / "d")
    spoil(root)
    policy = {"constant_roi": "raise"} if reason == "constant_roi" else {"on_invalid": "raise"}
    with pytest.raises(DataError, match=message) as info:
        read_precomputed(root, root / "labels.csv", min_timepoints=10, **policy)
    assert info.value.reason == reason and fname in str(info.value)

    cohort = read_precomputed(root, root / "labels.csv", min_timepoints=10)
    assert [e.reason for e in cohort.excluded] == [reason]
    assert fname in (cohort.excluded[0].source or "")
    assert set(cohort.ids) == {"s0", "s1", "s3"} | ({"s2"} if case == "file without row" else set())


def _asymmetric(root: Path) -> None:
    x = np.load(root / "s2.npy")
    x[0, 1] += 0.5
    _npy(root, "s2", x)


def _non_square(root: Path) -> None:
    _npy(root, "s2", np.load(root / "s2.npy")[:, :4])


def _fc_nan(root: Path) -> None:
    x = np.load(root / "s2.npy")
    x[1, 2] = x[2, 1] = np.nan
    _npy(root, "s2", x)


def _fc_small(root: Path) -> None:
    _npy(root, "s2", np.eye(4))


FC_CASES = [
    ("non-square", _non_square, "wrong_shape", "must be square \\(R x R\\), got shape \\(6, 4\\)"),
    ("asymmetric", _asymmetric, "not_symmetric", "not symmetric"),
    ("nan", _fc_nan, "non_finite", "2 non-finite value"),
    ("roi mismatch", _fc_small, "roi_mismatch", "ROI count mismatch: 4 ROIs"),
]


@pytest.mark.parametrize(
    ("case", "spoil", "reason", "message"), FC_CASES, ids=[c[0] for c in FC_CASES]
)
def test_bad_fc(tmp_path: Path, case, spoil, reason, message) -> None:
    root = make_folder(tmp_path / "d", kind="fc")
    spoil(root)
    with pytest.raises(DataError, match=message) as info:
        read_precomputed(root, root / "labels.csv", kind="fc", on_invalid="raise")
    assert info.value.reason == reason and "s2.npy" in str(info.value)
    cohort = read_precomputed(root, root / "labels.csv", kind="fc")
    assert cohort.ids == ["s0", "s1", "s3"] and [e.reason for e in cohort.excluded] == [reason]


def test_read_matrix_header_and_index(tmp_path: Path) -> None:
    p = tmp_path / "m.tsv"
    p.write_text("\ta\tb\na\t1\t0.5\nb\t0.5\t1\n")
    arr, names = read_matrix(p)
    assert names == ["a", "b"]
    np.testing.assert_array_equal(arr, [[1, 0.5], [0.5, 1]])
    q = tmp_path / "plain.csv"
    q.write_text("1,2\n3,4\n")
    arr, names = read_matrix(q)
    assert names is None and arr.tolist() == [[1, 2], [3, 4]]
