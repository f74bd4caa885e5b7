"""Content-hash cache for computed arrays (connectomes, extracted time series).

The key is a SHA-256 over the input arrays' bytes, shapes and dtypes plus the JSON of
the parameters and the graphbrain version, so a rerun with the same inputs is a file
read and any changed parameter recomputes. Entries are ``.npy`` files written
atomically (temporary file + rename) so an interrupted run never leaves a torn entry,
and they are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def content_key(arrays: list[np.ndarray] | tuple[np.ndarray, ...], params: dict[str, Any]) -> str:
    """A hex digest identifying ``arrays`` (by content) together with ``params``."""
    from graphbrain._version import __version__

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(__version__.encode())
    return h.hexdigest()


class ArrayCache:
    """A folder of ``<key>.npy`` files; ``None`` folder means caching is off."""

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def get_or_compute(
        self, arrays: list[np.ndarray], params: dict[str, Any], compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """Return the cached result for (arrays, params) or compute, store and return it."""
        if self.directory is None:
            return compute()
        key = content_key(arrays, params)
        path = self.directory / f"{key}.npy"
        if path.exists():
            try:
                out = np.load(path, allow_pickle=False)
                self.hits += 1
                return out
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a corrupt entry is recomputed
        self.misses += 1
        result = np.asarray(compute())
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, result, allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return result
