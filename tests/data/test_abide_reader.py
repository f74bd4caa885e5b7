"""ABIDE-PCP reader: a fake PCP tree for every bad-input case, plus the real release."""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbrain.data import ABIDE_SITE_TR, read_1d, read_abide_pcp
from graphbrain.errors import ConfigError, DataError

N_ROIS = 5
NAMES = ["10", "11", "12", "2001", "3455"]


def _write_1d(path: Path, ts: np.ndarray, names: list[str] | None = NAMES) -> Path:
    lines = []
    if names is not None:
        lines.append("\t".join("#" + n for n in names))
    lines += ["\t".join(f"{v:.6f}" for v in row) for row in ts]
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _pheno_row(file_id: str, sub_id: int, site: str, dx: int) -> dict:
    return {
        "SUB_ID": sub_id,
        "SITE_ID": site,
        "FILE_ID": file_id,
        "DX_GROUP": dx,
        "AGE_AT_SCAN": 12.5,
        "SEX": 1,
        "FIQ": -9999,
        "func_mean_fd": 0.1,
        "ADOS_TOTAL": 12,
    }


def make_pcp(root: Path, n: int = 6, t: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """A PCP tree with ``n`` subjects (alternating autism/control, two sites).

    Returns ``(ts_dir, phenotypic_csv)``."""
    rng = np.random.default_rng(seed)
    ts_dir = root / "ABIDE_pcp" / "cpac" / "filt_noglobal"
    ts_dir.mkdir(parents=True)
    rows = []
    for i in range(n):
        site = "PITT" if i < n // 2 else "KKI"
        fid = f"{site.title()}_{50000 + i:07d}"
        ext = ".1D.gz" if i % 2 == 0 else ".1D"
        _write_1d(ts_dir / f"{fid}_rois_ho{ext}", rng.standard_normal((t, N_ROIS)))
        rows.append(_pheno_row(fid, 50000 + i, site, 1 if i % 2 == 0 else 2))
    pheno = root / "ABIDE_pcp" / "Phenotypic_V1_0b_preprocessed1.csv"
    pd.DataFrame(rows).to_csv(pheno, index=False)
    return ts_dir, pheno


def test_reads_fake_tree(tmp_path: Path) -> None:
    ts_dir, pheno = make_pcp(tmp_path)
    cohort = read_abide_pcp(tmp_path, on_invalid="raise", constant_roi="raise")
    assert len(cohort) == 6 and cohort.excluded == []
    table = pd.read_csv(pheno).set_index("FILE_ID")
    for s in cohort:
        assert s.label == (1 if table.loc[s.id, "DX_GROUP"] == 1 else 0)
        assert s.site == table.loc[s.id, "SITE_ID"]
        assert s.tr == ABIDE_SITE_TR[s.site]
        assert s.timeseries.shape == (40, N_ROIS) and s.timeseries.dtype == np.float32
        assert s.covariates["age"] == 12.5 and s.covariates["sex"] == 1
        assert s.covariates["fiq"] is None  # -9999 is "missing", never a number
        assert "ados_total" not in s.covariates  # diagnosis-derived: would leak the label
    assert cohort.roi_names == NAMES
    # values equal the text file
    first = sorted(ts_dir.iterdir())[0]
    ref = np.loadtxt(gzip.open(first, "rt") if first.suffix == ".gz" else first)
    sid = first.name.split("_rois_")[0]
    np.testing.assert_allclose(cohort[cohort.ids.index(sid)].timeseries, ref, rtol=1e-6)


def test_root_variants_sites_and_sub_id(tmp_path: Path) -> None:
    _, pheno = make_pcp(tmp_path)
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(pheno, moved)
    pheno.unlink()
    with pytest.raises(DataError, match="phenotypic CSV not found"):
        read_abide_pcp(tmp_path)
    direct = read_abide_pcp(
        tmp_path / "ABIDE_pcp", phenotypic=moved, sites=["KKI"], subject_id="SUB_ID"
    )
    assert len(direct) == 3 and set(direct.sites) == {"KKI"}
    assert all(s.id.isdigit() for s in direct)
    with pytest.raises(ConfigError, match="on_invalid"):
        read_abide_pcp(tmp_path, phenotypic=moved, on_invalid="ignore")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no '\\*_rois_aal"):
        read_abide_pcp(tmp_path, phenotypic=moved, atlas="aal")


def test_drop_rois_keeps_subjects_with_that_constant_roi(tmp_path: Path) -> None:
    ts_dir, _ = make_pcp(tmp_path)
    path = sorted(ts_dir.glob("*.1D"))[0]
    ts, _ = read_1d(path)
    ts[:, 4] = 0.0
    _write_1d(path, ts)
    assert len(read_abide_pcp(tmp_path)) == 5
    kept = read_abide_pcp(tmp_path, drop_rois=["3455"], on_invalid="raise", constant_roi="raise")
    assert len(kept) == 6 and kept.n_rois == 4 and "3455" not in kept.roi_names


# --- every bad input: an error naming the file under "raise", an exclusion under "exclude" ---


def _corrupt_gzip(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D.gz"))[0]
    p.write_bytes(b"\x1f\x8b this is not a gzip stream")
    return p


def _truncated_gzip(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D.gz"))[0]
    p.write_bytes(p.read_bytes()[:60])
    return p


def _text_cells(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[0]
    p.write_text("#10\t#11\t#12\t#2001\t#3455\n1\t2\tabc\t4\t5\n")
    return p


def _nan(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[0]
    ts, _ = read_1d(p)
    ts[7, 2] = np.nan
    _write_1d(p, ts)
    return p


def _inf(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[1]
    ts, _ = read_1d(p)
    ts[3, 0] = np.inf
    _write_1d(p, ts)
    return p


def _short(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[0]
    ts, _ = read_1d(p)
    _write_1d(p, ts[:5])
    return p


def _roi_mismatch(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[0]
    ts, _ = read_1d(p)
    _write_1d(p, ts[:, :3], NAMES[:3])
    return p


def _header_mismatch(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D"))[0]
    ts, _ = read_1d(p)
    _write_1d(p, ts, NAMES[:4])
    return p


def _constant(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D.gz"))[1]
    ts, _ = read_1d(p)
    ts[:, 3] = 0.0
    _write_1d(p, ts)
    return p


def _orphan_file(ts_dir: Path) -> Path:
    p = ts_dir / "Pitt_0059999_rois_ho.1D"
    _write_1d(p, np.random.default_rng(1).standard_normal((40, N_ROIS)))
    return p


def _bad_dx(ts_dir: Path) -> Path:
    pheno = ts_dir.parents[1] / "Phenotypic_V1_0b_preprocessed1.csv"
    table = pd.read_csv(pheno)
    table.loc[0, "DX_GROUP"] = -9999
    table.to_csv(pheno, index=False)
    return next(ts_dir.glob(f"{table.loc[0, 'FILE_ID']}_*"))


def _missing_file(ts_dir: Path) -> Path:
    p = sorted(ts_dir.glob("*.1D.gz"))[0]
    p.unlink()
    return Path(p.name.split("_rois_")[0])


CASES: list[tuple[str, Callable[[Path], Path], str, str]] = [
    ("corrupt gzip", _corrupt_gzip, "unreadable", "cannot read ROI time series"),
    ("truncated gzip", _truncated_gzip, "unreadable", "cannot read ROI time series"),
    ("text cells", _text_cells, "unreadable", "cannot read ROI time series"),
    ("nan", _nan, "non_finite", "non-finite"),
    ("inf", _inf, "non_finite", "non-finite"),
    ("too short", _short, "too_short", "too short: 5 time points"),
    ("roi count", _roi_mismatch, "roi_mismatch", "ROI count mismatch: 3 ROIs"),
    ("header/rows", _header_mismatch, "wrong_shape", "header names 4 ROIs"),
    (
        "constant roi",
        _constant,
        "constant_roi",
        "constant \\(zero-variance\\) ROI\\(s\\): \\['2001'\\]",
    ),
    ("file without label", _orphan_file, "missing_label", "no row in the phenotypic CSV"),
    ("DX_GROUP missing", _bad_dx, "missing_label", "DX_GROUP is -9999"),
    ("label without file", _missing_file, "missing_file", "has no '_rois_ho' time-series file"),
]


@pytest.mark.parametrize(("case", "spoil", "reason", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_or_is_excluded(
    tmp_path: Path, case: str, spoil: Callable[[Path], Path], reason: str, message: str
) -> None:
    ts_dir, _ = make_pcp(tmp_path)
    bad = spoil(ts_dir)
    policy = {"constant_roi": "raise"} if reason == "constant_roi" else {"on_invalid": "raise"}
    with pytest.raises(DataError, match=message) as info:
        read_abide_pcp(tmp_path, min_timepoints=10, **policy)
    assert info.value.reason == reason
    assert bad.name.split("_rois_")[0] in str(info.value)  # the message names the file

    cohort = read_abide_pcp(
        tmp_path, min_timepoints=10, on_invalid="exclude", constant_roi="exclude"
    )
    assert [e.reason for e in cohort.excluded] == [reason]
    assert bad.name.split("_rois_")[0] in (cohort.excluded[0].source or "")
    expected = 6 if case == "file without label" else 5
    assert len(cohort) == expected
    for s in cohort:
        assert np.isfinite(s.timeseries).all() and s.timeseries.shape[1] == N_ROIS


def test_constant_roi_keep_flags(tmp_path: Path) -> None:
    ts_dir, _ = make_pcp(tmp_path)
    bad = _constant(ts_dir)
    cohort = read_abide_pcp(tmp_path, constant_roi="keep")
    assert len(cohort) == 6 and cohort.excluded == []
    sid = bad.name.split("_rois_")[0]
    assert cohort.meta["flags"] == {sid: ["constant_roi:3"]}


# --- the real PCP release in ../shared/data ---


@pytest.fixture(scope="module")
def abide_root() -> Path:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "abide_pcp"
    if not (root / "ABIDE_pcp" / "Phenotypic_V1_0b_preprocessed1.csv").is_file():
        pytest.skip("ABIDE-PCP data not available in ../shared/data")
    return root


@pytest.mark.realdata
def test_real_abide(abide_root: Path) -> None:
    pheno = pd.read_csv(abide_root / "ABIDE_pcp" / "Phenotypic_V1_0b_preprocessed1.csv")
    kept = read_abide_pcp(abide_root, constant_roi="keep")
    assert len(kept) == 323 and kept.excluded == []
    assert sorted(set(kept.sites)) == ["KKI", "OHSU", "OLIN", "PITT", "UM_1", "UM_2", "USM"]
    assert kept.n_rois == 111 and len(kept.roi_names) == 111 and kept.roi_names[0] == "10"
    dx = pheno.set_index("FILE_ID")["DX_GROUP"]
    labels = dict(zip(kept.ids, kept.labels, strict=True))
    assert all(labels[f] == (1 if g == 1 else 0) for f, g in dx.items())
    assert int(kept.labels.sum()) == int((pheno.DX_GROUP == 1).sum()) == 152
    # the participant id (used to group cross-validation) is the phenotypic SUB_ID
    sub = pheno.set_index("FILE_ID")["SUB_ID"].astype(str)
    assert kept.participants.tolist() == [sub[f] for f in kept.ids]
    assert all(s.tr == ABIDE_SITE_TR[s.site] for s in kept)
    lengths = {s.site: s.n_timepoints for s in kept}
    assert lengths["UM_1"] == 296 and lengths["OHSU"] == 78

    # expected exclusions derived from the raw files: subjects with an exactly constant column
    constant: dict[str, set[str]] = {}
    for f in sorted((abide_root / "ABIDE_pcp" / "cpac" / "filt_noglobal").glob("*_rois_ho.1D.gz")):
        with gzip.open(f, "rt") as fh:
            names = [n.lstrip("#") for n in fh.readline().split()]
        cols = np.flatnonzero(np.ptp(np.loadtxt(f), axis=0) == 0)
        if cols.size:
            constant[f.name[: -len("_rois_ho.1D.gz")]] = {names[c] for c in cols}
    default = read_abide_pcp(abide_root)
    reasons = Counter(e.reason for e in default.excluded)
    assert reasons == {"constant_roi": len(constant)} and len(default) == 323 - len(constant)
    assert {e.subject_id for e in default.excluded} == set(constant)
    for e in default.excluded:
        assert all(name in e.message for name in constant[e.subject_id])
    assert set().union(*constant.values()) == {"3455"}  # one ROI outside the field of view
    dropped = read_abide_pcp(abide_root, drop_rois=["3455"])
    assert len(dropped) == 323 and dropped.n_rois == 110


@pytest.mark.realdata
def test_real_abide_1d_and_gz_identical(abide_root: Path, tmp_path: Path) -> None:
    src = sorted((abide_root / "ABIDE_pcp" / "cpac" / "filt_noglobal").glob("*.1D.gz"))[0]
    plain = tmp_path / src.name[: -len(".gz")]
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    a, names_a = read_1d(src)
    b, names_b = read_1d(plain)
    assert a.shape[1] == 111 and names_a == names_b
    np.testing.assert_array_equal(a, b)
