"""Leakage audit of a cohort: duplicates, split overlap, label-site confounding.

1. **Duplicates** (medical datasets are known to hold several per cent of them: the
   same scan shared by two sites, re-uploads under a new id, a participant scanned twice):

   * exact duplicates: subjects whose ROI time series have the same SHA-256 content hash;
   * near duplicates: pairs whose vectorised static connectomes correlate at
     ``r >= fc_threshold`` over the edges. Each FC vector is standardised over its edges,
     so ``r = z_a . z_b / E``; the ``N x N`` products are computed in row blocks (one
     BLAS matrix product per block, memory ``block x N``), never as Python pair loops.
     A rescaled, noisier, shifted or cropped copy of a scan keeps an almost identical FC,
     so this also catches time series that were altered before being shared.

   Pairs from two sites and pairs split across train and test are flagged.
2. **Split overlap** of a saved split: the same subject id, or the same participant,
   in both train and test of a fold, and duplicate pairs straddling train and test.
   Accepted split files: a table (Parquet / CSV / TSV) with ``subject_id`` and ``split``
   (``train`` / ``test``) and optionally ``fold``; a run's ``predictions.parquet``
   (``subject_id``, ``fold``: the test fold; train = every other subject of the file);
   or JSON ``{"train": [...], "test": [...]}`` or ``{fold: {"train": [...], "test": [...]}}``.
3. **Label-site confounding**: the cross-validated AUROC of a classifier that sees only
   the site (one-hot logistic regression, stratified folds). Near 0.5 the label is not
   predictable from the site; a high value (``>= site_auroc_warn``, default 0.7) means a
   model can score well by recognising scanners: evaluate leave-site-out and harmonise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.batch import atomic
from graphbrain.errors import ConfigError, DataError

PAIR_COLUMNS = ["subject_a", "subject_b", "site_a", "site_b", "kind", "similarity", "cross_site", "same_participant"]


@dataclass
class AuditReport:
    duplicates: pd.DataFrame
    split_overlap: pd.DataFrame
    site_labels: pd.DataFrame
    site_auroc: float | None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_subjects": self.info.get("n_subjects"),
            "n_duplicate_pairs": int(len(self.duplicates)),
            "n_exact_duplicate_pairs": int((self.duplicates["kind"] == "identical_timeseries").sum()),
            "n_cross_site_pairs": int(self.duplicates["cross_site"].sum()) if len(self.duplicates) else 0,
            "n_split_overlaps": int(len(self.split_overlap)),
            "site_auroc": self.site_auroc,
            "warnings": self.warnings,
            **{k: v for k, v in self.info.items() if k != "n_subjects"},
        }

    def text(self) -> str:
        d = self.as_dict()
        lines = [
            f"leakage audit of {d['n_subjects']} subjects",
            f"  duplicate pairs: {d['n_duplicate_pairs']} ({d['n_exact_duplicate_pairs']} identical time series, "
            f"{d['n_cross_site_pairs']} across sites; FC r >= {self.info.get('fc_threshold')})",
            f"  split overlaps: {d['n_split_overlaps']}" + ("" if self.info.get("split") else " (no split given)"),
            "  label-site confounding: "
            + ("n/a (needs labels and >= 2 sites)" if self.site_auroc is None
               else f"site-only classifier AUROC {self.site_auroc:.3f} (cross-validated)"),
        ]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    def save(self, output_dir: str | Path) -> Path:
        d = Path(output_dir)
        atomic.write_parquet(d / "duplicates.parquet", self.duplicates)
        atomic.write_parquet(d / "split_overlap.parquet", self.split_overlap)
        atomic.write_parquet(d / "site_labels.parquet", self.site_labels)
        atomic.write_json(d / "audit.json", self.as_dict())
        atomic.write_text(d / "audit.txt", self.text() + "\n")
        return d


def exact_duplicates(ids: list[str], hashes: list[str | None]) -> list[tuple[str, str]]:
    """Pairs of ids with equal content hashes (each group of k gives its k(k-1)/2 pairs)."""
    groups: dict[str, list[str]] = {}
    for i, h in zip(ids, hashes, strict=True):
        if h:
            groups.setdefault(h, []).append(i)
    return [(g[a], g[b]) for g in groups.values() if len(g) > 1 for a in range(len(g)) for b in range(a + 1, len(g))]


def correlated_pairs(x: np.ndarray, threshold: float, block: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, r)`` for every pair ``i < j`` of rows of ``x`` whose Pearson correlation over
    columns is ``>= threshold``; blocked matrix products, memory ``O(block * N)``."""
    x = np.asarray(x, dtype=np.float32)
    n, e = x.shape
    if n < 2:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)
    z = x - x.mean(axis=1, keepdims=True)
    sd = z.std(axis=1, keepdims=True)
    sd[sd == 0] = np.inf  # a constant vector correlates with nothing
    z = z / sd
    block = block or max(1, int(2**26 // max(n, 1)))
    ii, jj, rr = [], [], []
    for s in range(0, n, block):
        r = (z[s : s + block] @ z.T) / e  # (b, N)
        rows, cols = np.nonzero(r >= threshold)
        keep = cols > rows + s
        ii.append(rows[keep] + s)
        jj.append(cols[keep])
        rr.append(r[rows[keep], cols[keep]])
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(rr).astype(np.float32)


def site_confounding(labels: np.ndarray, sites: np.ndarray, n_splits: int = 5, seed: int = 0) -> tuple[float | None, pd.DataFrame]:
    """Cross-validated AUROC of a site-only logistic regression, and the label rate per site."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.preprocessing import OneHotEncoder

    y = np.asarray(labels)
    s = np.asarray(sites).astype(str).reshape(-1, 1)
    table = (pd.DataFrame({"site": s[:, 0], "label": y}).groupby("site")["label"]
             .agg(n="size", positive_rate="mean").reset_index())
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) != 2 or len(np.unique(s)) < 2 or counts.min() < 2:
        return None, table
    k = int(min(n_splits, counts.min()))
    x = OneHotEncoder(handle_unknown="ignore").fit_transform(s)
    proba = cross_val_predict(LogisticRegression(max_iter=1000), x, y,
                              cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba)), table


def read_split(path: str | Path, known: set[str] | None = None) -> pd.DataFrame:
    """A saved split as rows ``(fold, subject_id, split)`` with split in {train, test}."""
    p = Path(path)
    if p.is_dir() and (p / "predictions.parquet").is_file():
        p = p / "predictions.parquet"
    if not p.is_file():
        raise DataError("split file not found", source=str(p), reason="missing_file")
    rows: list[tuple[str, str, str]] = []
    if p.suffix.lower() == ".json":
        obj = json.loads(p.read_text())
        folds = obj if all(isinstance(v, Mapping) for v in obj.values()) else {"0": obj}
        for fold, parts in folds.items():
            for part in ("train", "test"):
                rows += [(str(fold), str(i), part) for i in parts.get(part, [])]
        return pd.DataFrame(rows, columns=["fold", "subject_id", "split"])
    if p.suffix.lower() == ".parquet":
        table = pd.read_parquet(p)
    else:
        table = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", dtype={"subject_id": str})
    if "subject_id" not in table.columns:
        raise DataError(f"split table needs a subject_id column (has {list(table.columns)})", source=str(p), reason="missing_column")
    table["subject_id"] = table["subject_id"].astype(str)
    if "split" in table.columns:
        fold = table["fold"].astype(str) if "fold" in table.columns else pd.Series("0", index=table.index)
        out = pd.DataFrame({"fold": fold, "subject_id": table["subject_id"], "split": table["split"].astype(str).str.lower()})
        bad = sorted(set(out["split"]) - {"train", "test"})
        if bad:
            raise DataError(f"split column holds {bad}; expected train / test", source=str(p), reason="wrong_split")
        return out
    if "fold" in table.columns:  # predictions.parquet: the fold a subject was tested in
        ids = table["subject_id"].unique()
        for fold, grp in table.groupby(table["fold"].astype(str)):
            test = set(grp["subject_id"])
            rows += [(fold, i, "test") for i in sorted(test)]
            rows += [(fold, i, "train") for i in ids if i not in test]
        return pd.DataFrame(rows, columns=["fold", "subject_id", "split"])
    raise DataError("split table needs a 'split' (train/test) or a 'fold' column", source=str(p), reason="missing_column")


def _split_overlap(split: pd.DataFrame, status: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    part = dict(zip(status["subject_id"], status["participant"], strict=True)) if "participant" in status else {}
    out = []
    for fold, grp in split.groupby("fold"):
        train = set(grp.loc[grp["split"] == "train", "subject_id"])
        test = set(grp.loc[grp["split"] == "test", "subject_id"])
        for sid in sorted(train & test):
            out.append({"fold": fold, "kind": "same_subject", "subject_train": sid, "subject_test": sid, "similarity": 1.0})
        ptrain: dict[str, str] = {}
        for s in train:
            if part.get(s):
                ptrain[part[s]] = s
        for s in sorted(test):
            p = part.get(s)
            if p and p in ptrain and ptrain[p] != s:
                out.append({"fold": fold, "kind": "same_participant", "subject_train": ptrain[p], "subject_test": s, "similarity": None})
        for r in pairs.itertuples():
            a, b = r.subject_a, r.subject_b
            if (a in train and b in test) or (b in train and a in test):
                tr, te = (a, b) if a in train else (b, a)
                out.append({"fold": fold, "kind": f"duplicate:{r.kind}", "subject_train": tr, "subject_test": te, "similarity": r.similarity})
    return pd.DataFrame(out, columns=["fold", "kind", "subject_train", "subject_test", "similarity"])


def audit_run(
    run_dir: str | Path,
    *,
    split: str | Path | pd.DataFrame | None = None,
    fc_threshold: float = 0.98,
    site_auroc_warn: float = 0.7,
    n_splits: int = 5,
    seed: int = 0,
) -> AuditReport:
    """Audit a folder written by :func:`~graphbrain.batch.runner.process_cohort`."""
    from graphbrain.batch.runner import read_features

    if not -1.0 <= fc_threshold <= 1.0:
        raise ConfigError(f"audit.fc_threshold must be in [-1, 1], got {fc_threshold}")
    d = Path(run_dir)
    if not (d / "status.parquet").is_file():
        raise ConfigError(f"{d}: no status.parquet; run `graphbrain cohort process` first or pass data=...")
    status = pd.read_parquet(d / "status.parquet")
    status = status[status["status"].isin(["ok", "excluded"])]
    site = dict(zip(status["subject_id"], status["site"], strict=True))
    participant = dict(zip(status["subject_id"], status.get("participant", pd.Series(None, index=status.index)), strict=True))
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for a, b in exact_duplicates(status["subject_id"].tolist(), status["ts_sha256"].tolist()):
        rows[tuple(sorted((a, b)))] = {"kind": "identical_timeseries", "similarity": 1.0}
    ids, x = read_features(d / "features.parquet")
    if len(ids) > 1:
        ii, jj, rr = correlated_pairs(x, fc_threshold)
        for i, j, r in zip(ii, jj, rr, strict=True):
            key = tuple(sorted((ids[i], ids[j])))
            rows.setdefault(key, {"kind": "correlated_fc", "similarity": float(r)})
    dup = pd.DataFrame(
        [{"subject_a": a, "subject_b": b, "site_a": site.get(a), "site_b": site.get(b), **v,
          "cross_site": site.get(a) != site.get(b),
          "same_participant": bool(participant.get(a)) and participant.get(a) == participant.get(b)}
         for (a, b), v in sorted(rows.items())],
        columns=PAIR_COLUMNS,
    )
    ok = status[(status["status"] == "ok") & status["label"].notna()]
    auroc, site_table = site_confounding(ok["label"].astype(int).to_numpy(), ok["site"].fillna("unknown").to_numpy(),
                                         n_splits=n_splits, seed=seed)
    overlap = pd.DataFrame(columns=["fold", "kind", "subject_train", "subject_test", "similarity"])
    if split is not None:
        sp = split if isinstance(split, pd.DataFrame) else read_split(split)
        overlap = _split_overlap(sp, status, dup)
    warnings = []
    n = len(status)
    if len(dup):
        n_sub = len(set(dup["subject_a"]) | set(dup["subject_b"]))
        warnings.append(f"{len(dup)} duplicate / near-duplicate pair(s) involving {n_sub} of {n} subjects "
                        f"({100 * n_sub / max(n, 1):.1f} %), {int(dup['cross_site'].sum())} across sites: see duplicates.parquet; "
                        "keep one scan per pair or group them in the same fold")
    if len(overlap):
        warnings.append(f"{len(overlap)} train/test overlap(s) in the saved split ({', '.join(sorted(set(overlap['kind'])))}): "
                        "see split_overlap.parquet")
    if auroc is not None and auroc >= site_auroc_warn:
        warnings.append(f"the label is predictable from site alone (site-only classifier AUROC {auroc:.3f} >= "
                        f"{site_auroc_warn}): evaluate leave-site-out and consider harmonisation")
    info = {"n_subjects": n, "fc_threshold": fc_threshold, "site_auroc_warn": site_auroc_warn,
            "split": None if split is None else str(split) if not isinstance(split, pd.DataFrame) else "<DataFrame>",
            "run_dir": str(d)}
    return AuditReport(dup, overlap, site_table, auroc, warnings, info)
