"""Atomic file writes: a temporary file in the same folder, flushed, then renamed.

``os.replace`` is atomic on POSIX file systems (and on NTFS), so a reader, or a rerun
after a crash or a ``SIGKILL``, sees either the old complete file or the new complete
file, never a torn one. Temporary files carry the suffix :data:`TMP_SUFFIX`; a killed
writer can leave one behind, and :func:`remove_stale_tmp` deletes them on resume.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

TMP_SUFFIX = ".gbtmp"


def _atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None], durable: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if durable:  # on disk before the rename: a power cut cannot leave a torn file
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _atomic(path, lambda fh: fh.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet(path: str | os.PathLike[str], frame: Any) -> Path:
    """A DataFrame (no index) or a pyarrow Table as Parquet, through a temporary file."""
    buf = io.BytesIO()
    if isinstance(frame, pd.DataFrame):
        frame.to_parquet(buf, index=False)
    else:
        import pyarrow.parquet as pq

        pq.write_table(frame, buf)
    return write_bytes(path, buf.getvalue())


def save_npy(path: str | os.PathLike[str], array: np.ndarray, durable: bool = True) -> Path:
    """``np.save`` (no pickle) through a temporary file. ``durable=False`` skips the
    ``fsync`` (still atomic against crashes and kills; after a power cut the file may be
    empty or short, which readers of a cache detect and recompute)."""
    return _atomic(path, lambda fh: np.save(fh, np.asarray(array), allow_pickle=False), durable)


def remove_stale_tmp(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files left by a killed writer under ``folder``; returns the count."""
    n = 0
    root = Path(folder)
    if not root.is_dir():
        return 0
    for p in root.rglob(f"*{TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    # ArrayCache (graphbrain.cache) writes "<random>.tmp" next to its entries.
    for p in root.rglob("*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
