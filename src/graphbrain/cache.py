"""Content-hash cache for computed arrays (connectomes, extracted time series).

The key is a SHA-256 over the input arrays' bytes, shapes and dtypes plus the JSON of
the parameters, the graphbrain version and :func:`code_fingerprint` (a hash of the
source files of the code that computes the cached arrays, and the versions of the
numerical libraries it calls), so a rerun with the same inputs is a file read, and any
changed parameter, edited FC function or upgraded nilearn / scikit-learn recomputes. Entries are ``.npy`` files written
atomically (temporary file + rename) so an interrupted run never leaves a torn entry,
and they are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# Modules whose code produces cached arrays (read as files: importing them here would
# invert the layering, since they import this module).
CODE_MODULES: tuple[str, ...] = (
    "graphbrain.cache",
    "graphbrain.connectome.static",
    "graphbrain.connectome.dynamic",
)
LIBRARIES: tuple[str, ...] = ("numpy", "scipy", "scikit-learn", "nilearn", "torch")


@functools.cache
def code_fingerprint(modules: tuple[str, ...] = CODE_MODULES, libraries: tuple[str, ...] = LIBRARIES) -> str:
    """SHA-256 over the source files of ``modules`` and the installed ``libraries``' versions.

    Part of every cache key: editing a connectivity function (or upgrading the library
    that computes it) invalidates old entries instead of silently serving them.
    """
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = None if spec is None else spec.origin
        h.update(name.encode())
        if origin and os.path.isfile(origin):
            h.update(Path(origin).read_bytes())
    for lib in libraries:
        try:
            version = metadata.version(lib)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{lib}=={version}".encode())
    return h.hexdigest()


def content_key(arrays: list[np.ndarray] | tuple[np.ndarray, ...], params: dict[str, Any]) -> str:
    """A hex digest identifying ``arrays`` (by content) together with ``params``.

    Also covers the graphbrain version and :func:`code_fingerprint`.
    """
    from graphbrain._version import __version__

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(__version__.encode())
    h.update(code_fingerprint().encode())
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
