"""Per-subject embedding tables from external imaging encoders (never pickle).

An :class:`EmbeddingTable` is ``ids`` (subject ids, unique) plus a float32 matrix
``(N, D)``. It is read from:

* a folder of ``<subject_id>.npy`` / ``<subject_id>.npz`` files (one vector each; an
  ``.npz`` holds one array, or the array named ``key``);
* a Parquet or CSV table keyed by a subject-id column (``id_column``, default the first
  of ``subject_id``, ``id``, ``FILE_ID``, ``SUB_ID``), with one numeric column per
  dimension, or one list-valued column (Parquet);
* a safetensors file: one tensor per subject (the key is the subject id), or a single
  ``(N, D)`` tensor named ``embeddings`` with the ids in the file's metadata
  (``{"ids": "<json list>"}``).

``np.load`` runs with ``allow_pickle=False`` and safetensors cannot hold code, so a
malicious embedding file cannot execute anything. Subjects absent from a table are
*missing* for that modality (a mask downstream), never imputed silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graphbrain.errors import DataError

ID_COLUMNS = ("subject_id", "id", "FILE_ID", "SUB_ID", "participant_id")


@dataclass
class EmbeddingTable:
    """Subject ids and their embedding vectors (float32, finite)."""

    ids: list[str]
    values: np.ndarray
    source: str = "in-memory"

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        v = np.asarray(self.values, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] != len(self.ids):
            raise DataError(
                f"embeddings must be (subjects, dims) with one row per id; got {v.shape} for "
                f"{len(self.ids)} ids",
                source=self.source,
                reason="wrong_shape",
            )
        if len(set(self.ids)) != len(self.ids):
            dup = pd.Series(self.ids)[pd.Series(self.ids).duplicated()].tolist()[:5]
            raise DataError(f"duplicate subject ids in the embedding table: {dup}", source=self.source, reason="duplicate_id")
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            first = [self.ids[i] for i in np.flatnonzero(bad)[:5]]
            raise DataError(
                f"{int(bad.sum())} embedding(s) hold NaN/Inf (first: {first}); remove those rows "
                "(a subject without an embedding is treated as missing, which is supported)",
                source=self.source,
                reason="nan",
            )
        self.values = np.ascontiguousarray(v)
        self._index = {s: i for i, s in enumerate(self.ids)}

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, subject_id: object) -> bool:
        return str(subject_id) in self._index

    def align(self, subject_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(values (N, D), present (N,) bool)`` in the order of ``subject_ids``; absent rows are 0."""
        out = np.zeros((len(subject_ids), self.dim), dtype=np.float32)
        present = np.zeros(len(subject_ids), dtype=bool)
        for k, s in enumerate(subject_ids):
            i = self._index.get(str(s))
            if i is not None:
                out[k] = self.values[i]
                present[k] = True
        return out, present

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.values, columns=[f"e{i}" for i in range(self.dim)])
        df.insert(0, "subject_id", self.ids)
        return df

    def save(self, path: str | Path) -> Path:
        """Write a Parquet table (``subject_id`` + ``e0..eD``), readable by :func:`read_embeddings`."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(p, index=False)
        return p


def _from_frame(df: pd.DataFrame, source: str, id_column: str | None) -> EmbeddingTable:
    col = id_column or next((c for c in ID_COLUMNS if c in df.columns), None)
    if col is None or col not in df.columns:
        raise DataError(
            f"no subject-id column (looked for {id_column or list(ID_COLUMNS)}; found {list(df.columns)[:8]})",
            source=source,
            reason="no_id_column",
        )
    rest = df.drop(columns=[col])
    if rest.shape[1] == 1 and rest.iloc[:, 0].map(lambda v: isinstance(v, list | np.ndarray)).all():
        values = np.stack([np.asarray(v, dtype=np.float32) for v in rest.iloc[:, 0]])
    else:
        non_num = [c for c in rest.columns if not pd.api.types.is_numeric_dtype(rest[c])]
        if non_num:
            raise DataError(
                f"embedding columns must be numeric; non-numeric: {non_num[:5]} (use id_column= "
                "to name the id column, and drop other text columns)",
                source=source,
                reason="non_numeric",
            )
        values = rest.to_numpy(dtype=np.float32)
    return EmbeddingTable(df[col].astype(str).tolist(), values, source=source)


def _load_npy(path: Path, key: str | None) -> np.ndarray:
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as err:  # pickled object arrays are refused by allow_pickle=False
        raise DataError(f"cannot read without unpickling ({err}); save plain numeric arrays", source=str(path), reason="pickle") from err
    except Exception as err:
        raise DataError(f"unreadable array file: {err}", source=str(path), reason="unreadable") from err
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            names = list(obj.files)
            if key is None and len(names) != 1:
                raise DataError(f".npz holds {names}; name the array with key=", source=str(path), reason="ambiguous")
            arr = obj[key or names[0]]
    else:
        arr = obj
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(f"a per-subject embedding must be one vector, got shape {arr.shape}", source=str(path), reason="wrong_shape")
    return arr


def read_embeddings(
    path: str | Path, *, id_column: str | None = None, key: str | None = None
) -> EmbeddingTable:
    """Read an embedding table from a folder of ``.npy``/``.npz``, Parquet, CSV or safetensors."""
    p = Path(path)
    if not p.exists():
        raise DataError("embedding file or folder not found", source=str(p), reason="missing_file")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in (".npy", ".npz"))
        if not files:
            raise DataError("folder holds no .npy/.npz embedding files", source=str(p), reason="empty")
        vecs = [_load_npy(f, key) for f in files]
        dims = {v.shape[0] for v in vecs}
        if len(dims) != 1:
            raise DataError(f"embeddings have different lengths {sorted(dims)}", source=str(p), reason="wrong_shape")
        return EmbeddingTable([f.stem for f in files], np.stack(vecs), source=str(p))
    suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
    if suffix == ".parquet":
        return _from_frame(pd.read_parquet(p), str(p), id_column)
    if suffix in (".csv", ".tsv", ".csv.gz", ".tsv.gz"):
        sep = "\t" if ".tsv" in suffix else ","
        return _from_frame(pd.read_csv(p, sep=sep), str(p), id_column)
    if suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="numpy") as fh:
                keys = list(fh.keys())
                meta = fh.metadata() or {}
                if "embeddings" in keys and "ids" in meta:
                    ids = json.loads(meta["ids"])
                    return EmbeddingTable(ids, fh.get_tensor("embeddings"), source=str(p))
                vecs = [np.asarray(fh.get_tensor(k), dtype=np.float32).ravel() for k in keys]
        except DataError:
            raise
        except Exception as err:
            raise DataError(f"not a readable safetensors file: {err}", source=str(p), reason="unreadable") from err
        return EmbeddingTable(keys, np.stack(vecs) if vecs else np.zeros((0, 0)), source=str(p))
    if suffix in (".npy", ".npz"):
        raise DataError(
            "a single .npy/.npz has no subject ids; give a folder of <subject_id>.npy files, a "
            "Parquet/CSV table or a safetensors file",
            source=str(p),
            reason="no_ids",
        )
    if suffix in (".pkl", ".pickle", ".pt", ".pth", ".joblib"):
        raise DataError("pickle-based files are refused (they can run code); convert to Parquet or safetensors",
                        source=str(p), reason="pickle")
    raise DataError(f"unknown embedding format {suffix!r} (npy/npz folder, parquet, csv, safetensors)",
                    source=str(p), reason="unknown_format")


def save_safetensors(table: EmbeddingTable, path: str | Path) -> Path:
    """Write ``table`` as safetensors (``embeddings`` tensor + ids in the metadata)."""
    from safetensors.numpy import save_file

    p = Path(path)
    save_file({"embeddings": table.values}, str(p), metadata={"ids": json.dumps(table.ids)})
    return p
