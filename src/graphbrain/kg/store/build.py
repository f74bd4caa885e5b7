"""Build an on-disk knowledge-graph store from a UMLS ``META`` folder (streaming RRF).

Same filters and the same resulting graph as :func:`graphbrain.kg.readers.rrf.read_rrf`
(tests compare them), but columnar and in bounded memory: pyarrow reads RRF in blocks
(:func:`~graphbrain.kg.readers.rrf_fast.iter_rrf_batches`), every filter and mapping is a
vectorised operation, and every table that grows with the release is *spilled to bucket
files on disk and finished one bucket at a time*:

1. MRCONSO and MRDEF: kept rows are spilled to CUI-range buckets (Arrow IPC streams); a
   systematic sample of the kept strings fixes the key ranges of the string tables;
2. per CUI bucket (ascending, so concept numbers are contiguous): preferred names,
   synonyms, cross-references and definitions are computed and appended to the output;
   label and code rows are spilled to key-range buckets (first three UTF-8 bytes of the key,
   ranges from the sample quantiles: the concatenation of the sorted buckets is the sorted
   table);
3. per label bucket: sort, append, fold the labels into whole-word tokens (spilled to
   token-range buckets); per code / token bucket: sort, append;
4. MRREL: filtered and mapped per block, spilled to head-range buckets; per head bucket:
   sort, de-duplicate, append the edge columns, and spill the in-edge and diagnosis records
   to tail- and finding-range buckets, sorted in turn.

So peak memory is set by the bucket size (``bucket_rows``), not by the release size; the
arrays that stay in memory are O(concepts) integers (CUI numbers, CSR counts). Every phase's
wall time, CPU time and peak resident memory is recorded in ``meta.json`` (``phases``).

Layout of the store folder (all memory-mapped when opened; see
:class:`graphbrain.kg.store.backend.StoreBackend`)::

    meta.json               format, counts, vocabularies, reader stats, phases
    cui.npy                 int32 CUI numbers, sorted (concept i = "C%07d" % cui[i])
    concepts.arrow          name, definition (Arrow IPC, one row per concept)
    synonyms.arrow + syn_ptr.npy       per-concept synonyms (CSR)
    xrefs.arrow + xref_ptr.npy         per-concept cross-references (CSR)
    sty_ptr.npy, sty.npy               per-concept semantic-type codes (CSR)
    head.npy rel.npy tail.npy src.npy  edges sorted by (head, relation, tail, source)
    out_ptr.npy, in_ptr.npy, in_edges.npy   CSR adjacency
    labels.arrow            (norm, label, concept, kind) sorted by norm: exact / ci look-up
    codes.arrow, bare.arrow (key, concept, xref) sorted by key: code look-up
    tokens.arrow            (token, label row) sorted: whole-word fuzzy look-up
    diag/*.npy              the diagnosis index for the built-in finding relations

Arrow files hold one record batch per ~``bucket_rows`` rows (the reader maps them without
copying and indexes across batches).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from graphbrain.errors import DataError
from graphbrain.kg.model import IS_A, normalise_source, relation_name
from graphbrain.kg.readers.rrf import _REL_NAMES, SUPPRESSED, read_mrfiles
from graphbrain.kg.readers.rrf_fast import iter_rrf_batches

STORE_FORMAT = "graphbrain-kg-store"
STORE_VERSION = 1
_EDGE = np.dtype([("h", "<i4"), ("r", "<i2"), ("s", "<i2"), ("t", "<i4")])
_IN = np.dtype([("t", "<i4"), ("r", "<i2"), ("h", "<i4"), ("e", "<i8")])
_FIND = np.dtype([("f", "<i4"), ("d", "<i4"), ("e", "<i4"), ("g", "<i1")])
_CUI_RE = r"^C\d{7}$"
#: default rows per spill bucket: memory per bucket phase is a few hundred bytes per row
BUCKET_ROWS = 150_000
#: rows per record batch of the output Arrow files (fixed: the store's bytes do not depend on
#: the bucket size)
BATCH_ROWS = 250_000
_MAX_BUCKETS = 256
_SAMPLE = 100_000


def _pa() -> tuple[Any, Any, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.feather as feather

    return pa, pc, feather


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


# ---- bounded-memory building blocks ---------------------------------------------------------


class _NpyAppender:
    """A 1-D ``.npy`` file written in pieces (header fixed at 128 bytes, shape set on close)."""

    HEADER = 128

    def __init__(self, path: Path, dtype: Any) -> None:
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.fh = open(path, "wb")
        self.fh.write(b"\0" * self.HEADER)

    def append(self, arr: Any) -> None:
        a = np.ascontiguousarray(arr, dtype=self.dtype)
        a.tofile(self.fh)
        self.n += len(a)

    def close(self) -> None:
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.n,)}
        body = repr(d).encode("latin1")
        pad = self.HEADER - 10 - len(body) - 1
        hdr = b"\x93NUMPY\x01\x00" + (self.HEADER - 10).to_bytes(2, "little") + body + b" " * pad + b"\n"
        self.fh.seek(0)
        self.fh.write(hdr)
        self.fh.close()


class _ArrowAppender:
    """An Arrow IPC file written in record batches of exactly ``rows`` rows (the last one
    shorter): the file's bytes depend on its rows, not on how they were appended."""

    def __init__(self, path: Path, schema: Any, rows: int) -> None:
        pa, _, _ = _pa()
        self.pa, self.rows, self.schema = pa, max(int(rows), 1), schema
        self.writer = pa.ipc.new_file(str(path), schema)
        self.buf: list[Any] = []
        self.nbuf = 0
        self.n = 0

    def append(self, table: Any) -> None:
        if not table.num_rows:
            return
        self.buf.append(table)
        self.nbuf += table.num_rows
        self.n += table.num_rows
        if self.nbuf >= self.rows:
            self._flush(final=False)

    def _flush(self, final: bool = True) -> None:
        if not self.buf:
            return
        t = self.pa.concat_tables(self.buf).combine_chunks()
        full = t.num_rows if final else (t.num_rows // self.rows) * self.rows
        for s in range(0, full, self.rows):
            piece = t.slice(s, min(self.rows, full - s)).combine_chunks()
            self.writer.write_batch(piece.to_batches(max_chunksize=piece.num_rows)[0])
        rest = t.slice(full)
        self.buf, self.nbuf = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def close(self) -> None:
        self._flush()
        if not self.n:
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


def _take(rec: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``rec[idx]`` for a structured record array, gathered as opaque fixed-size items (numpy
    copies structured items field by field: ~7x slower)."""
    return np.take(rec.view(f"V{rec.dtype.itemsize}"), idx).view(rec.dtype)


def _find_order(fr: np.ndarray, hb: int) -> np.ndarray:
    """The order of diagnosis records by (finding, disease, end, edge): the records are first
    put in edge order (a stable sort of a few ascending runs), then (finding, disease, end,
    rank in that order) packed into one integer and sorted (~4x faster than a 4-key lexsort)."""
    n = len(fr)
    if not n:
        return np.zeros(0, dtype=np.int64)
    f0 = int(fr["f"].min())
    fb = max(int(fr["f"].max()) - f0, 1).bit_length()
    lb = max(n - 1, 1).bit_length()
    if fb + hb + 1 + lb > 63:
        return np.lexsort((fr["e"], fr["g"], fr["d"], fr["f"]))
    o1 = np.argsort(fr["e"], kind="stable")
    s = _take(fr, o1)
    key = ((s["f"].astype(np.int64) - f0) << (hb + 1)) | (s["d"].astype(np.int64) << 1) | s["g"].astype(np.int64)
    return o1[np.sort((key << lb) | np.arange(n, dtype=np.int64)) & ((1 << lb) - 1)]


def _dict_encoded(col: Any) -> Any:
    """A string column as a DictionaryArray (as the CSV reader already gives it, or encoded)."""
    pa, pc, _ = _pa()
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)


def _bucket_order(bucket: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable order grouping rows by bucket number (< ``k`` <= 256) and the group bounds: the
    bucket numbers as uint8 make numpy's stable sort a radix sort (O(n), ~6x faster than on
    int64)."""
    b = bucket.astype(np.uint8 if k <= 256 else np.uint16)
    order = np.argsort(b, kind="stable")
    cuts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(b, minlength=k), out=cuts[1:])
    return order, cuts


class _Spill:
    """``k`` bucket files of Arrow record batches (IPC streams), read back one at a time."""

    def __init__(self, folder: Path, name: str, schema: Any, k: int) -> None:
        pa, _, _ = _pa()
        self.pa, self.schema, self.k = pa, schema, k
        self.paths = [folder / f"{name}{i:03d}.arrows" for i in range(k)]
        self.writers: list[Any] = [None] * k
        self.rows = 0

    def write(self, i: int, table: Any) -> None:
        if not table.num_rows:
            return
        if self.writers[i] is None:
            self.writers[i] = self.pa.ipc.new_stream(str(self.paths[i]), self.schema)
        self.writers[i].write_table(table)
        self.rows += table.num_rows

    def write_split(self, bucket: np.ndarray, table: Any) -> None:
        """Rows of ``table`` to the buckets ``bucket`` (keeping their order within a bucket)."""
        if not table.num_rows:
            return
        if self.k == 1:
            self.write(0, table)
            return
        order, cuts = _bucket_order(bucket, self.k)
        t = table.take(_np_to_arrow(order))
        for i in range(self.k):
            if cuts[i + 1] > cuts[i]:
                self.write(i, t.slice(int(cuts[i]), int(cuts[i + 1] - cuts[i])))

    def close_writers(self) -> None:
        for w in self.writers:
            if w is not None:
                w.close()
        self.writers = [None] * self.k

    def read(self, i: int) -> Any:
        p = self.paths[i]
        if not p.is_file():
            return self.schema.empty_table()
        with self.pa.OSFile(str(p), "rb") as fh:
            t = self.pa.ipc.open_stream(fh).read_all()
        p.unlink()
        return t.combine_chunks()


class _RecSpill:
    """``k`` bucket files of fixed-size numpy records."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, k: int) -> None:
        self.dtype, self.k = dtype, k
        self.paths = [folder / f"{name}{i:03d}.bin" for i in range(k)]
        self.handles = [open(p, "wb") for p in self.paths]

    def write_split(self, bucket: np.ndarray, rec: np.ndarray) -> None:
        if not len(rec):
            return
        if self.k == 1:
            rec.tofile(self.handles[0])
            return
        order, cuts = _bucket_order(bucket, self.k)
        rec = _take(rec, order)
        for i in range(self.k):
            if cuts[i + 1] > cuts[i]:
                rec[cuts[i] : cuts[i + 1]].tofile(self.handles[i])

    def close_writers(self) -> None:
        for h in self.handles:
            h.close()

    def sizes(self) -> list[int]:
        """Records in each bucket file (after :meth:`close_writers`)."""
        return [p.stat().st_size // self.dtype.itemsize if p.is_file() else 0 for p in self.paths]

    def read(self, i: int) -> np.ndarray:
        rec = np.fromfile(self.paths[i], dtype=self.dtype)
        self.paths[i].unlink()
        return rec


def _splitters(sample_keys: Any, k: int) -> np.ndarray:
    """``k - 1`` (or fewer, distinct) key splitters at the sample quantiles: the first eight
    bytes of the keys (:func:`_prefix64`, monotone in the string order, so a bucket is a key
    range and the sorted buckets concatenated are the sorted table; eight bytes rather than
    three keep buckets near their target size when many keys share a first word)."""
    if k <= 1:
        return np.zeros(0, np.uint64)
    p = np.sort(_prefix64(sample_keys))
    if not len(p):
        return np.zeros(0, np.uint64)
    q = p[(np.arange(1, k) * len(p)) // k]
    return np.unique(q)


def _range_bucket(keys: Any, splits: np.ndarray) -> np.ndarray:
    return np.searchsorted(splits, _prefix64(keys), side="right")


def _groups(sizes: list[int], target: int) -> list[list[int]]:
    """Consecutive bucket numbers grouped to about ``target`` rows each (``target <= 0``: one
    bucket per group)."""
    groups: list[list[int]] = []
    acc = 0
    for i, n in enumerate(sizes):
        if not groups or target <= 0 or (acc + n > target and acc > 0):
            groups.append([i])
            acc = n
        else:
            groups[-1].append(i)
            acc += n
    return groups


def _n_buckets(rows: float, bucket_rows: int, forced: int | None) -> int:
    if forced is not None:
        return int(forced)
    return int(min(_MAX_BUCKETS, max(1, math.ceil(rows / max(bucket_rows, 1)))))


class _Phases:
    """Wall time, CPU time and peak resident memory of each build phase, per thread ("track":
    the concept side and the relation side run concurrently)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._open: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._statm = Path("/proc/self/statm")
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._t0 = time.perf_counter()
        self._thread: threading.Thread | None = None
        if self._statm.is_file():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _rss(self) -> int:
        try:
            with open(self._statm, "rb") as fh:
                return int(fh.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):  # pragma: no cover
            return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            r = self._rss()
            with self._lock:
                for o in self._open.values():
                    o["peak"] = max(o["peak"], r)

    def start(self, name: str, track: str = "concepts") -> None:
        self.end()
        o = {"phase": name, "track": track, "t": time.perf_counter(), "c": time.thread_time(),
             "p": time.process_time(), "peak": self._rss()}
        with self._lock:
            self._open[threading.get_ident()] = o

    def end(self) -> None:
        """Close the calling thread's open phase."""
        with self._lock:
            o = self._open.pop(threading.get_ident(), None)
        if o is None:
            return
        now = time.perf_counter()
        self.rows.append({
            "phase": o["phase"], "track": o["track"], "start_s": round(o["t"] - self._t0, 3),
            "wall_s": round(now - o["t"], 3),
            # CPU of the thread running the phase (pyarrow's CSV worker threads not included)
            "thread_cpu_s": round(time.thread_time() - o["c"], 3),
            # CPU of the whole process meanwhile (includes the other track when they overlap)
            "process_cpu_s": round(time.process_time() - o["p"], 3),
            "peak_rss_mb": round(max(o["peak"], self._rss()) / 2**20, 1),
        })

    def close(self) -> list[dict[str, Any]]:
        self.end()
        self._stop.set()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = sorted(self.rows, key=lambda r: r["start_s"])
        rows.append({"phase": "process max RSS so far (ru_maxrss)", "peak_rss_mb": round(maxrss, 1),
                     "process_cpu_s": round(time.process_time(), 3)})
        return rows


class _Worker(threading.Thread):
    """Runs ``fn`` in a thread; :meth:`result` joins and returns its value or raises its error."""

    def __init__(self, fn: Any, ph: _Phases) -> None:
        super().__init__(name="graphbrain-store-relations", daemon=True)
        self.fn, self.ph = fn, ph
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # re-raised in the calling thread by result()
            self.error = exc
        finally:
            self.ph.end()

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


# ---- vectorised helpers -----------------------------------------------------------------------


def _map_unique(values: Any, fn: Any, cache: dict[str, Any]) -> Any:
    """``fn`` applied to each distinct string of an Arrow array (vectorised through a dictionary)."""
    pa, pc, _ = _pa()
    enc = pc.dictionary_encode(values)
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    out = []
    for v in enc.dictionary.to_pylist():
        if v not in cache:
            cache[v] = fn(v)
        out.append(cache[v])
    return _str_array(out).take(enc.indices)


def _str_bytes(arr: Any) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, ``n + 1``, starting at 0) and the UTF-8 bytes of a string array, as
    numpy views where possible."""
    pa, _, _ = _pa()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    bufs = arr.buffers()
    odt = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=odt, count=n + 1, offset=arr.offset * np.dtype(odt).itemsize) if n else np.zeros(1, odt)
    lo, hi = int(off[0]), int(off[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=hi - lo, offset=lo) if hi > lo else np.zeros(0, np.uint8)
    return off.astype(np.int64) - lo, data


# byte classes for the string fast paths: 1 = not ASCII, 2 = apostrophe, 4 = white space that
# is not ' ' (RE2's \s is [\t\n\f\r ]), 8 = any byte a punctuation regex could change
_BYTE = np.zeros(256, dtype=np.uint8)
_BYTE[128:] = 1 | 8
_BYTE[ord("'")] = 2
_BYTE[[9, 10, 12, 13]] = 4
_BYTE[[i for i in range(128) if not (chr(i).isalnum() or chr(i) in "_ \t\n\f\r")]] |= 8


def _rows_where(off: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Distinct rows holding at least one ``True`` byte of ``hit`` (byte positions -> rows)."""
    pos = np.flatnonzero(hit)
    if not len(pos):
        return pos
    return np.unique(np.searchsorted(off, pos, side="right") - 1)


def _on_rows(arr: Any, rows: np.ndarray, fn: Any) -> Any:
    """``fn`` (an element-wise string transform) applied to the rows ``rows`` of ``arr`` only
    (the others are left as they are, which ``fn`` would not change)."""
    pa, pc, _ = _pa()
    if not len(rows):
        return arr
    if 4 * len(rows) >= len(arr):
        return fn(arr)
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(arr, _np_to_arrow(mask), fn(arr.take(_np_to_arrow(rows))))


def _np_to_arrow(a: np.ndarray) -> Any:
    """A 1-D numpy array (numbers or booleans, no nulls) as an Arrow array, without copying
    numbers (``pa.array`` would import pandas, ~0.6 s, to check the argument)."""
    pa, _, _ = _pa()
    a = np.ascontiguousarray(a)
    if a.dtype == bool:
        return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(np.packbits(a, bitorder="little"))])
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


_NP_DT = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
          "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "float": np.float32,
          "double": np.float64}


def _np(arr: Any) -> np.ndarray:
    """An Arrow array of numbers or booleans without nulls as numpy (a view where possible),
    without ``to_numpy`` (which imports pandas on first use: ~0.6 s of CPU per build)."""
    pa, _, _ = _pa()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n, t = len(arr), arr.type
    if arr.null_count == 0:
        if pa.types.is_boolean(t):
            if not n:
                return np.zeros(0, dtype=bool)
            bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
            return np.unpackbits(bits, count=arr.offset + n, bitorder="little")[arr.offset:].astype(bool)
        dt = _NP_DT.get(str(t))
        if dt is not None:
            if not n:
                return np.zeros(0, dtype=dt)
            return np.frombuffer(arr.buffers()[1], dtype=dt, count=n, offset=arr.offset * np.dtype(dt).itemsize)
    return arr.to_numpy(zero_copy_only=False)  # pragma: no cover - not used for such columns


def _str_array(strs: list[str]) -> Any:
    """A short Python list of strings as an Arrow string array (no pandas import)."""
    pa, _, _ = _pa()
    enc = [v.encode("utf-8") for v in strs]
    off = np.zeros(len(enc) + 1, dtype=np.int32)
    if enc:
        np.cumsum([len(e) for e in enc], out=off[1:])
    return pa.Array.from_buffers(pa.string(), len(enc), [None, pa.py_buffer(off), pa.py_buffer(b"".join(enc))])


def _empty_strings(n: int) -> Any:
    pa, _, _ = _pa()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)), pa.py_buffer(b"")])


_SCALARS: dict[Any, Any] = {}


def _S(v: str | int) -> Any:
    """An Arrow scalar for a compute-function argument (a Python literal there would be
    converted through ``pa.scalar``, which imports pandas)."""
    if v not in _SCALARS:
        a = _str_array([v]) if isinstance(v, str) else _np_to_arrow(np.array([v], dtype=np.int32))
        _SCALARS[v] = a[0]
    return _SCALARS[v]


def _lower(arr: Any) -> tuple[Any, bool]:
    """``utf8_lower`` of a string array (``ascii_lower``, ~30x faster, when every byte is ASCII:
    the same result there) and whether it was all ASCII."""
    _, pc, _ = _pa()
    _, data = _str_bytes(arr)
    ascii_ = not len(data) or int(data.max()) < 128
    return (pc.ascii_lower(arr) if ascii_ else pc.utf8_lower(arr)), ascii_


def _normalise_labels(arr: Any) -> Any:
    """Vectorised :func:`graphbrain.kg.lookup.normalise_text` (lower case, spaces collapsed).

    The white-space regex runs only on the rows that hold a tab, line break, form feed or two
    adjacent spaces (the only rows it can change)."""
    pa, pc, _ = _pa()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    low, _ = _lower(arr)
    off, data = _str_bytes(low)
    if len(data):
        sp = data == 32
        hit = (_BYTE[data] & 4) != 0
        hit[1:] |= sp[1:] & sp[:-1]  # a pair spanning two rows only costs a needless check
        low = _on_rows(low, _rows_where(off, hit),
                       lambda a: pc.replace_substring_regex(a, pattern=r"\s+", replacement=" "))
    return pc.utf8_trim(low, characters=" ")


def _singular_words(words: Any) -> Any:
    """:func:`graphbrain.kg.lookup._singular` of each word, vectorised."""
    _, pc, _ = _pa()
    ln = pc.utf8_length(words)
    ies = pc.and_(pc.ends_with(words, "ies"), pc.greater(ln, _S(4)))
    plural = pc.and_(
        pc.and_(pc.ends_with(words, "s"), pc.greater(ln, _S(3))),
        pc.invert(pc.or_(pc.or_(pc.ends_with(words, "ss"), pc.ends_with(words, "us")), pc.ends_with(words, "is"))),
    )
    return pc.if_else(
        ies,
        pc.binary_join_element_wise(pc.utf8_slice_codeunits(words, 0, -3), _S("y"), _S("")),
        pc.if_else(plural, pc.utf8_slice_codeunits(words, 0, -1), words),
    )


def _fold_tokens(labels: Any, with_dictionary: bool = False) -> Any:
    """Folded whole words of each label and the label row of each word: the same rules as
    :func:`graphbrain.kg.lookup.fold_words`, vectorised (tests compare the look-ups).

    Fast paths with the same result: the possessive and punctuation rewrites run only on the
    rows holding a byte they could change; the singular rules run once per distinct word.
    ``with_dictionary``: instead of the words, the folded distinct raw words (two may fold to
    the same word) and each word's index among them, so that per-word work (a key-range
    bucket) is done once per distinct word and the words are spilled dictionary-encoded."""
    pa, pc, _ = _pa()
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    toks, ascii_ = _lower(labels)
    off, data = _str_bytes(toks)
    cls = _BYTE[data]

    def possessive(a: Any) -> Any:
        a = pc.replace_substring(a, pattern="'s ", replacement=" ")
        a = pc.replace_substring(a, pattern="\u2019s ", replacement=" ")
        return pc.replace_substring_regex(a, pattern="('|\u2019)s$", replacement="")

    toks = _on_rows(toks, _rows_where(off, (cls & 3) != 0), possessive)
    off, data = _str_bytes(toks)
    toks = _on_rows(toks, _rows_where(off, (_BYTE[data] & 8) != 0),
                    lambda a: pc.replace_substring_regex(a, pattern=r"[^\pL\pN\pM_\s]+", replacement=" "))
    # after the punctuation rewrite an ASCII row holds only letters, digits, '_' and \t\n\f\r
    # or ' ', which both splitters treat alike
    sp = pc.ascii_split_whitespace(toks) if ascii_ else pc.utf8_split_whitespace(toks)
    flat = pc.list_flatten(sp)
    rows = _np(pc.list_parent_indices(sp))
    off, _ = _str_bytes(flat)
    empty = off[1:] == off[:-1]
    if empty.any():  # the splitter's empty words at leading / trailing white space (str.split has none)
        keep = np.flatnonzero(~empty)
        flat, rows = flat.take(_np_to_arrow(keep)), rows[keep]
    enc = pc.dictionary_encode(flat)
    words = _singular_words(enc.dictionary)
    if with_dictionary:
        return words, enc.indices, rows
    return words.take(enc.indices), rows


def _cui_parse(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """CUI numbers and validity (``C`` followed by seven ASCII digits) of an Arrow string
    column, read straight from its bytes when every value has 8 bytes (the normal case);
    invalid rows get the number 0."""
    pa, pc, _ = _pa()
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n:
        bufs = col.buffers()
        off = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=col.offset * 4)
        if bufs[2] is not None and int(off[-1] - off[0]) == 8 * n and (np.diff(off) == 8).all():
            # each value as one little-endian 64-bit word, checked and parsed eight bytes at a
            # time (SWAR): byte 0 is 'C'; bytes 1-7 are digits when their high nibble is 3 both
            # before and after adding 6 (no carry crosses a byte: valid UTF-8 has no byte >= 0xFA)
            x = np.frombuffer(bufs[2], dtype="<u8", count=n, offset=int(off[0]))
            hi = np.uint64(0xF0F0F0F0F0F0F000)
            d3 = np.uint64(0x3030303030303000)
            ok = ((x & np.uint64(0xFF)) == np.uint64(67)) & ((x & hi) == d3) \
                & (((x + np.uint64(0x0606060606060600)) & hi) == d3)
            v = x & np.uint64(0x0F0F0F0F0F0F0F00)  # digits 0, d1 .. d7, most significant first
            v = (v * np.uint64(10) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
            v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
            v = (v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
            return np.where(ok, v, 0).astype(np.int32), ok
    ok = _np(pc.match_substring_regex(col, _CUI_RE))
    val = np.zeros(n, dtype=np.int32)
    if ok.any():
        val[ok] = _np(pc.cast(pc.utf8_slice_codeunits(col.filter(_np_to_arrow(ok)), 1), pa.int32()))
    return val, ok


def _str_rank(col: Any) -> tuple[np.ndarray, Any]:
    """Rank of each string among the distinct strings of ``col`` (byte order, as Arrow and
    Python sort) and the sorted distinct strings: strings are hashed once, then sorted and
    de-duplicated as integers."""
    pa, pc, _ = _pa()
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):  # rank the dictionary's distinct values
        enc = pc.dictionary_encode(col.dictionary)
        idx = _np(enc.indices)[_np(col.indices)]
    else:
        enc = pc.dictionary_encode(col)
        idx = _np(enc.indices)
    d = enc.dictionary
    o = _np(pc.sort_indices(d))
    r = np.empty(len(d), dtype=np.int64)
    r[o] = np.arange(len(d), dtype=np.int64)
    return r[idx], d.take(_np_to_arrow(o))


_LOW40 = (1 << 40) - 1


def _unique_pairs(a: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, rank) pairs sorted by a then rank (a < 2**23, rank < 2**40)."""
    u = np.unique((a.astype(np.int64) << 40) | rank)
    return u >> 40, u & _LOW40


def _prefix64(arr: Any) -> np.ndarray:
    """The first eight UTF-8 bytes of each string as a big-endian unsigned integer (zero
    padded): one unaligned word per string from a strided view of the bytes. Monotone in the
    byte order of the strings."""
    return _words64(arr, 1)[0]


def _words64(arr: Any, k: int) -> list[np.ndarray]:
    """Bytes ``8j .. 8j + 7`` of each string as big-endian unsigned integers (zero padded),
    ``j < k``: sorting by them in turn orders the strings by their first ``8k`` bytes."""
    off, data = _str_bytes(arr)
    n = len(off) - 1
    if n <= 0:
        return [np.zeros(0, np.uint64) for _ in range(k)]
    buf = np.zeros(len(data) + 8, dtype=np.uint8)
    buf[: len(data)] = data
    win = np.ndarray((len(data) + 1,), dtype=">u8", buffer=buf, strides=(1,))
    st, ln = off[:-1], off[1:] - off[:-1]
    return [win[np.minimum(st + 8 * j, len(data))].astype(np.uint64) & _MASK64[np.clip(ln - 8 * j, 0, 8)]
            for j in range(k)]


_MASK64 = np.array([0] + [((1 << 64) - 1) ^ ((1 << (8 * (8 - k))) - 1) for k in range(1, 9)], dtype=np.uint64)


def _order(table: Any, columns: list[str]) -> Any:
    """Stable sort order of ``table`` by ``columns`` (strings by byte order).

    When the first key is a string column, its first 16 (24 for longer strings) bytes as two
    (three) integers are sorted on first (the order is the same: together they are a monotone
    function of the string): Arrow then compares strings only within runs of equal prefixes
    (1.6-1.9x faster on 200k-row label and code buckets)."""
    pa, pc, _ = _pa()
    if table.num_rows > 1 and pa.types.is_string(table.schema.field(columns[0]).type):
        col = table.column(columns[0])
        k = 2 if col.nbytes <= 16 * table.num_rows else 3
        words = _words64(col, k)
        for j, w in enumerate(words):
            table = table.append_column(f"_prefix64_{j}_", _np_to_arrow(w))
        columns = [*(f"_prefix64_{j}_" for j in range(k)), *columns]
    return pc.sort_indices(table, [(c, "ascending") for c in columns])


def _sorted_distinct(i: np.ndarray, strs: Any) -> tuple[np.ndarray, Any]:
    """Distinct (i, string) pairs sorted by i then string: one sort, then adjacent
    duplicates dropped (no hash table)."""
    pa, pc, _ = _pa()
    t = pa.table({"i": _np_to_arrow(np.ascontiguousarray(i)), "s": strs})
    t = t.take(_order(t, ["i", "s"]))
    si, ss = _np(t.column("i")), t.column("s").combine_chunks()
    if len(si) > 1:
        dup = np.zeros(len(si), dtype=bool)
        dup[1:] = (si[1:] == si[:-1]) & _np(pc.equal(ss.slice(1), ss.slice(0, len(ss) - 1)))
        if dup.any():
            keep = ~dup
            si, ss = si[keep], ss.filter(_np_to_arrow(keep))
    return si, ss


_LIBC: Any = None


def _release(pool: Any) -> None:
    """Give freed memory back to the system between buckets: Arrow's pool and glibc's heap
    (whose freed middle-sized blocks otherwise stay resident, so peak RSS crept up with the
    number of buckets)."""
    global _LIBC
    pool.release_unused()
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def _ptr_from_counts(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _ptr(keys: np.ndarray, n: int) -> np.ndarray:
    ptr = np.zeros(n + 1, dtype=np.int64)
    if len(keys):
        np.cumsum(np.bincount(np.asarray(keys), minlength=n), out=ptr[1:])
    return ptr


def build_store(
    meta_dir: str | Path,
    out_dir: str | Path,
    *,
    languages: Iterable[str] | None = ("ENG",),
    sources: Iterable[str] | None = None,
    include_suppressed: bool = False,
    on_error: str = "raise",
    buckets: int | None = None,
    bucket_rows: int = BUCKET_ROWS,
    progress: bool = False,
    overwrite: bool = False,
    concurrent: bool = True,
) -> dict[str, Any]:
    """Stream the RRF files of ``meta_dir`` into a store folder ``out_dir``; returns the stats.

    Filters as in :func:`~graphbrain.kg.readers.rrf.read_rrf`. ``bucket_rows``: rows per
    spill bucket, which sets peak memory (default 150k: about 0.6 GB peak whatever the
    release size); ``buckets``: force this number of buckets in every spilled phase (tests use it to
    check that bucketing neither loses nor duplicates a row). The result does not depend on
    either. ``concurrent``: run the relation side (MRREL, MRSTY, edge / in-edge / diagnosis
    tables) in a second thread alongside the concept side (MRCONSO, MRDEF, label / code / token
    tables); ``False`` runs them one after the other (same store, byte for byte).
    """
    pa, pc, _ = _pa()
    if buckets is not None and not 1 <= int(buckets) <= _MAX_BUCKETS:
        raise ValueError(f"buckets must be between 1 and {_MAX_BUCKETS}, got {buckets!r}")
    if bucket_rows < 1:
        raise ValueError(f"bucket_rows must be positive, got {bucket_rows!r}")
    t0 = time.perf_counter()
    ph = _Phases()
    meta_dir, out = Path(meta_dir), Path(out_dir)
    if not meta_dir.is_dir():
        raise DataError("not a folder", source=str(meta_dir), reason="missing")
    conso_path = meta_dir / "MRCONSO.RRF"
    if not conso_path.is_file():
        raise DataError("MRCONSO.RRF not found", source=str(conso_path), reason="missing")
    if out.exists():
        if not overwrite and any(out.iterdir()):
            raise DataError("the store folder exists and is not empty (pass overwrite=True)", source=str(out), reason="exists")
        if overwrite and (out / "meta.json").is_file():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diag").mkdir(exist_ok=True)
    tmp = out / "_spill"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        meta = _build(
            meta_dir, out, tmp, ph, languages=languages, sources=sources,
            include_suppressed=include_suppressed, on_error=on_error, buckets=buckets,
            bucket_rows=bucket_rows, progress=progress, concurrent=concurrent,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta["phases"] = ph.close()
    meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def _build(
    meta_dir: Path, out: Path, tmp: Path, ph: _Phases, *, languages: Iterable[str] | None,
    sources: Iterable[str] | None, include_suppressed: bool, on_error: str, buckets: int | None,
    bucket_rows: int, progress: bool, concurrent: bool,
) -> dict[str, Any]:
    pa, pc, _ = _pa()
    conso_path = meta_dir / "MRCONSO.RRF"
    layout = read_mrfiles(meta_dir)
    langs = None if languages is None else _str_array(sorted({x.upper() for x in languages}))
    sabs = None if sources is None else {s.upper() for s in sources}
    sab_set = None if sabs is None else _str_array(sorted(sabs))
    supp = _str_array(sorted(SUPPRESSED))
    stats: Counter[str] = Counter()
    # the two sides already keep two cores busy while the RRF files are read: parsing each file
    # in parallel blocks as well only holds more blocks in memory (60-120 MB at 5M rows)
    csv_threads = not concurrent
    bar = _bar(progress)
    pool = pa.default_memory_pool()


    # The relation side (MRREL, then MRSTY and the edge / in-edge / diagnosis tables) runs in a
    # second thread alongside the concept side (MRCONSO, MRDEF, label / code / token tables):
    # MRREL is read, filtered, mapped and spilled by *CUI* range while MRCONSO is still being
    # read (pyarrow and numpy release the GIL in their kernels, so both cores work); it waits
    # for the concept numbering only when it maps CUIs to concepts, per head bucket.
    rstats: Counter[str] = Counter()
    concepts_ready = threading.Event()
    abort = threading.Event()
    shared: dict[str, Any] = {}

    def relations() -> dict[str, Any]:
        stats = rstats
        src_cache: dict[str, str] = {}
        # ---- 4. MRREL: filter + map per block, spill to head-CUI-range buckets -----------------------
        ph.start("MRREL read + filter + map + spill by head CUI range", track="relations")
        rel_path = meta_dir / "MRREL.RRF"
        rel_names: dict[str, int] = {}
        src_names: dict[str, int] = {}
        size = rel_path.stat().st_size if rel_path.is_file() else 0
        k_rel = _n_buckets(size / 80, 8 * bucket_rows, buckets)
        # CUI ranges are spilled finer than the target (CUIs are not uniform over 0..10^7) and
        # consecutive ranges are merged back into k_rel groups of at most the mean size when read
        k_cui = k_rel if buckets is not None else min(_MAX_BUCKETS, 4 * k_rel)
        edge_spill = _RecSpill(tmp, "edge", _EDGE, k_cui)
        try:
            if rel_path.is_file():
                rkeep = ["CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"]
                name_cache: dict[tuple[str, str], tuple[str, bool, bool]] = {}
                rseq = 0
                nb = 0
                isa_code = None
                for b in iter_rrf_batches(rel_path, layout["MRREL.RRF"], rkeep, on_error=on_error, stats=stats, use_threads=csv_threads,
                                          dictionary=("REL", "RELA", "SAB")):
                    n = b.num_rows
                    c1s, c2s = b.column("CUI1"), b.column("CUI2")
                    c1, ok1 = _cui_parse(c1s)
                    c2, ok2 = _cui_parse(c2s)
                    mask = ok1 & ok2
                    bad = n - int(mask.sum())
                    if bad:
                        if on_error != "skip":
                            first = int(np.flatnonzero(~mask)[0])
                            raise DataError(
                                f"invalid CUI1/CUI2 {c1s[first].as_py()!r}/{c2s[first].as_py()!r} (expected C followed by 7 digits)",
                                source=f"{rel_path}:{rseq + first + 1}:1", reason="malformed",
                            )
                        stats["MRREL.RRF:malformed"] += bad
                    rseq += n
                    if sab_set is not None:
                        m2 = _np(pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=sab_set))
                        stats["MRREL.RRF:filtered_source"] += int((mask & ~m2).sum())
                        mask &= m2
                    if not include_suppressed:
                        m2 = ~_np(pc.is_in(b.column("SUPPRESS"), value_set=supp))
                        stats["MRREL.RRF:filtered_suppressed"] += int((mask & ~m2).sum())
                        mask &= m2
                    loop = c1 == c2
                    stats["MRREL.RRF:self_loop"] += int((mask & loop).sum())
                    mask &= ~loop
                    bar.update(n)
                    sel = np.flatnonzero(mask)
                    if not len(sel):
                        continue
                    i1, i2 = c1[sel], c2[sel]  # CUI numbers: mapped to concepts per bucket (phase 5)
                    # REL and RELA dictionary-encoded by the CSV reader: one Python step per distinct
                    # pair present in the block, then a look-up table
                    erel, erela = _dict_encoded(b.column("REL")), _dict_encoded(b.column("RELA"))
                    nrela = len(erela.dictionary)
                    pair = _np(erel.indices)[sel].astype(np.int64) * nrela + _np(erela.indices)[sel]
                    rels, relas = erel.dictionary.to_pylist(), erela.dictionary.to_pylist()
                    if isa_code is None:
                        isa_code = rel_names.setdefault("is_a", len(rel_names))
                    lut_r = np.zeros(max(len(rels) * nrela, 1), dtype=np.int16)
                    lut_p = np.zeros(max(len(rels) * nrela, 1), dtype=bool)
                    for pcode in np.flatnonzero(np.bincount(pair, minlength=len(lut_r))).tolist():
                        rl, ra = rels[pcode // nrela], relas[pcode % nrela]
                        key = (rl, ra)
                        if key not in name_cache:
                            nm = relation_name(ra) if ra != "" else _REL_NAMES.get(rl, relation_name(rl))
                            p_ = rl == "PAR" or ra == "inverse_isa"
                            c_ = (rl == "CHD" or ra == "isa") and not p_
                            name_cache[key] = (nm, p_, p_ or c_)
                        nm, p_, isa_ = name_cache[key]
                        code_ = rel_names.setdefault(nm, len(rel_names))
                        lut_r[pcode] = isa_code if isa_ else code_
                        lut_p[pcode] = p_
                    if len(rel_names) > np.iinfo(np.int16).max:
                        raise DataError(f"more than {np.iinfo(np.int16).max} distinct relation types", reason="too_many")
                    rcode, par = lut_r[pair], lut_p[pair]
                    esab = _dict_encoded(b.column("SAB"))
                    sidx = _np(esab.indices)[sel]
                    sabs_d = esab.dictionary.to_pylist()
                    lut_s = np.zeros(len(sabs_d), dtype=np.int16)
                    for j in np.flatnonzero(np.bincount(sidx, minlength=len(sabs_d))).tolist():
                        v = sabs_d[j]
                        if v not in src_cache:
                            src_cache[v] = normalise_source(v)
                        lut_s[j] = src_names.setdefault(src_cache[v], len(src_names))
                    if len(src_names) > np.iinfo(np.int16).max:
                        raise DataError(f"more than {np.iinfo(np.int16).max} distinct sources", reason="too_many")
                    scode = lut_s[sidx]
                    rec = np.empty(len(i1), dtype=_EDGE)
                    rec["h"] = np.where(par, i1, i2)
                    rec["t"] = np.where(par, i2, i1)
                    rec["r"], rec["s"] = rcode, scode
                    nb += 1
                    if nb % 16 == 0:
                        _release(pool)
                    edge_spill.write_split((rec["h"].astype(np.int64) * k_cui) // 10_000_000, rec)
        finally:
            edge_spill.close_writers()
            _release(pool)
        bar.close()


        # ---- the concept numbering (from the concept side) ----------------------------------------
        ph.start("wait for the concept numbering", track="relations")
        while not concepts_ready.wait(0.05):
            if abort.is_set():
                return {}
        if abort.is_set():
            return {}
        ucui, n_con = shared["ucui"], shared["n_con"]

        # ---- MRSTY -------------------------------------------------------------------------------
        ph.start("MRSTY", track="relations")
        sty_path = meta_dir / "MRSTY.RRF"
        sty_list: list[tuple[str, str, str]] = []
        sty_ptr = np.zeros(n_con + 1, dtype=np.int64)
        sty_codes = np.zeros(0, dtype=np.int16)
        if sty_path.is_file():
            pi, pt = [], []
            sty_index: dict[tuple[str, str, str], int] = {}
            for b in iter_rrf_batches(sty_path, layout["MRSTY.RRF"], ["CUI", "TUI", "STN", "STY"], on_error=on_error, stats=stats, use_threads=csv_threads):
                snum, sok = _cui_parse(b.column("CUI"))
                b = b.filter(_np_to_arrow(sok))
                if not b.num_rows:
                    continue
                c = snum[sok]
                j = np.minimum(np.searchsorted(ucui, c), n_con - 1)
                rows = np.flatnonzero(ucui[j] == c)
                if not len(rows):
                    continue
                sel = b.take(_np_to_arrow(rows))
                key = pc.binary_join_element_wise(sel.column("TUI"), sel.column("STY"), sel.column("STN"), _S("\x1f"))
                enc = pc.dictionary_encode(key)
                lut = []
                for v in enc.dictionary.to_pylist():
                    tui, sty, stn = v.split("\x1f")
                    lut.append(sty_index.setdefault((tui, sty, stn), len(sty_index)))
                pi.append(j[rows].astype(np.int32))
                pt.append(np.asarray(lut, dtype=np.int16)[_np(enc.indices)])
            sty_list = list(sty_index)
            if pi:
                si, sc = np.concatenate(pi), np.concatenate(pt)
                tuirank = np.argsort(np.argsort([s[0] for s in sty_list], kind="stable"), kind="stable")
                # distinct (concept, TUI rank, type) triples in that order, packed into one integer
                pairs = np.unique((si.astype(np.int64) << 32) | (tuirank[sc].astype(np.int64) << 16) | sc.astype(np.int64))
                sty_ptr = _ptr(pairs >> 32, n_con)
                sty_codes = (pairs & 0xFFFF).astype(np.int16)
                del pairs, si, sc
        _save(out / "sty_ptr.npy", sty_ptr)
        _save(out / "sty.npy", sty_codes)

        # ---- 5. per head bucket: sort + de-duplicate, write edges; spill in-edges and findings ------
        ph.start("edges sorted + de-duplicated per head bucket", track="relations")
        rtypes_all = sorted(rel_names)
        sources_sorted = sorted(src_names)
        rmap = np.zeros(max(len(rel_names), 1), dtype=np.int16)
        for nme, c in rel_names.items():
            rmap[c] = rtypes_all.index(nme)
        smap = np.zeros(max(len(src_names), 1), dtype=np.int16)
        for nme, c in src_names.items():
            smap[c] = sources_sorted.index(nme)
        rtypes = rtypes_all
        from graphbrain.kg.store.backend import finding_relation_codes, semantic_disease_mask

        is_disease = semantic_disease_mask(sty_list, sty_ptr, sty_codes)
        try:
            from graphbrain.kg.diagnose import detect_finding_relations

            spec = tuple(sorted(detect_finding_relations(rtypes).items()))
        except ImportError:  # pragma: no cover
            spec = ()
        code = {r: i for i, r in enumerate(rtypes)}
        ends, fallback = finding_relation_codes(spec, rtypes)
        end_codes = {e: np.array(c, dtype=np.int16) for e, c in ends.items()}
        mark_disease = not is_disease.any()
        isa = code.get(IS_A, -1)
        hb = max(int(n_con - 1).bit_length(), 1)
        rb = max(int(len(rtypes) - 1).bit_length(), 1)
        sb = max(int(len(sources_sorted) - 1).bit_length(), 1)
        packed = 2 * hb + rb + sb <= 63
        cols_out = {k: _NpyAppender(out / f"{final}.npy", dt) for k, final, dt in (
            ("h", "head", np.int32), ("r", "rel", np.int16), ("t", "tail", np.int32), ("s", "src", np.int16))}
        in_spill = _RecSpill(tmp, "in", _IN, k_rel)
        find_spill = _RecSpill(tmp, "find", _FIND, k_rel)
        w_par_e = _NpyAppender(out / "diag" / "par_edges.npy", np.int32)
        w_par = _NpyAppender(out / "diag" / "par.npy", np.int64)
        out_cnt = np.zeros(n_con, dtype=np.int64)
        par_cnt = np.zeros(n_con, dtype=np.int64)
        used = np.zeros(len(rtypes) + 1, dtype=bool)
        n_edges = 0
        top = int(ucui[-1]) + 2
        lut_c = np.full(top, -1, dtype=np.int32)
        lut_c[ucui] = np.arange(n_con, dtype=np.int32)
        sizes = edge_spill.sizes()
        for grp in _groups(sizes, -(-sum(sizes) // k_rel) if buckets is None else 0):
            rec = edge_spill.read(grp[0]) if len(grp) == 1 else np.concatenate([edge_spill.read(k) for k in grp])
            if not len(rec):
                continue
            # CUI numbers -> concept numbers (ascending together, so head buckets stay ordered)
            ih = lut_c[np.minimum(rec["h"], top - 1)]
            it = lut_c[np.minimum(rec["t"], top - 1)]
            inside = (ih >= 0) & (it >= 0)
            n_in = int(inside.sum())
            stats["MRREL.RRF:dangling"] += len(rec) - n_in
            rec["h"], rec["t"] = ih, it
            del ih, it
            if n_in < len(rec):
                rec = _take(rec, np.flatnonzero(inside))
            del inside
            if not len(rec):
                continue
            rec["r"], rec["s"] = rmap[rec["r"]], smap[rec["s"]]
            if packed:
                # (head, relation, tail, source) packed into one integer: sort + de-duplicate at once
                key = (rec["h"].astype(np.int64) << (rb + hb + sb)) | (rec["r"].astype(np.int64) << (hb + sb)) \
                    | (rec["t"].astype(np.int64) << sb) | rec["s"].astype(np.int64)
                u = np.unique(key)
                del key
                stats["MRREL.RRF:duplicate"] += len(rec) - len(u)
                rec = np.empty(len(u), dtype=_EDGE)
                rec["h"] = u >> (rb + hb + sb)
                rec["r"] = (u >> (hb + sb)) & ((1 << rb) - 1)
                rec["t"] = (u >> sb) & ((1 << hb) - 1)
                rec["s"] = u & ((1 << sb) - 1)
                del u
            else:  # pragma: no cover - more than 63 bits of keys
                rec = _take(rec, np.lexsort((rec["s"], rec["t"], rec["r"], rec["h"])))
                dup = np.zeros(len(rec), dtype=bool)
                dup[1:] = (
                    (rec["h"][1:] == rec["h"][:-1]) & (rec["r"][1:] == rec["r"][:-1])
                    & (rec["t"][1:] == rec["t"][:-1]) & (rec["s"][1:] == rec["s"][:-1])
                )
                stats["MRREL.RRF:duplicate"] += int(dup.sum())
                rec = _take(rec, np.flatnonzero(~dup))
                del dup
            h, r, t = rec["h"], rec["r"], rec["t"]
            for f_ in ("h", "r", "t", "s"):
                cols_out[f_].append(rec[f_])
            e = np.arange(n_edges, n_edges + len(rec), dtype=np.int64)
            out_cnt += np.bincount(h, minlength=n_con)
            used[np.unique(r)] = True
            ir = np.empty(len(rec), dtype=_IN)
            ir["t"], ir["r"], ir["h"], ir["e"] = t, r, h, e
            in_spill.write_split((t.astype(np.int64) * k_rel) // n_con, ir)
            del ir
            if spec:
                if mark_disease:
                    for c, end in fallback:
                        sel = r == c
                        is_disease[(h if end == "head" else t)[sel]] = True
                parts = []
                for g, (end, dis, fnd) in enumerate((("head", h, t), ("tail", t, h))):
                    sel = np.flatnonzero(np.isin(r, end_codes[end]))
                    if len(sel):
                        fr = np.empty(len(sel), dtype=_FIND)
                        fr["f"], fr["d"], fr["e"], fr["g"] = fnd[sel], dis[sel], e[sel], g
                        parts.append(fr)
                if parts:
                    fr = np.concatenate(parts)
                    find_spill.write_split((fr["f"].astype(np.int64) * k_rel) // n_con, fr)
                if isa >= 0:
                    sel = np.flatnonzero(r == isa)
                    w_par_e.append(e[sel])
                    w_par.append(t[sel])
                    par_cnt += np.bincount(h[sel], minlength=n_con)
            n_edges += len(rec)
            del rec, h, r, t, e
            _release(pool)
        for w in cols_out.values():
            w.close()
        w_par_e.close()
        w_par.close()
        in_spill.close_writers()
        find_spill.close_writers()
        stats["MRREL.RRF:kept"] += n_edges
        _save(out / "out_ptr.npy", _ptr_from_counts(out_cnt))
        del out_cnt

        # ---- 6. in-edges by (tail, relation, head), as the in-memory backend orders them ------------
        ph.start("in-edge CSR per tail bucket", track="relations")
        w_in = _NpyAppender(out / "in_edges.npy", np.int64)
        w_chi_e = _NpyAppender(out / "diag" / "chi_edges.npy", np.int32)
        w_chi = _NpyAppender(out / "diag" / "chi.npy", np.int64)
        in_cnt = np.zeros(n_con, dtype=np.int64)
        chi_cnt = np.zeros(n_con, dtype=np.int64)
        for k in range(k_rel):
            ir = in_spill.read(k)
            if not len(ir):
                continue
            if packed:  # stable: ties (same tail, relation, head; other sources) keep edge order
                t0_ = int(ir["t"].min())
                tb = max(int(ir["t"].max()) - t0_, 1).bit_length()
                key = ((ir["t"].astype(np.int64) - t0_) << (rb + hb)) | (ir["r"].astype(np.int64) << hb) | ir["h"].astype(np.int64)
                lb = max(len(ir) - 1, 1).bit_length()
                if tb + rb + hb + lb <= 63:  # the record's position as the last key: a plain sort is stable
                    ir = _take(ir, np.sort((key << lb) | np.arange(len(ir), dtype=np.int64)) & ((1 << lb) - 1))
                else:
                    ir = _take(ir, np.argsort(key, kind="stable"))
                del key
            else:  # pragma: no cover
                ir = _take(ir, np.lexsort((ir["h"], ir["r"], ir["t"])))
            w_in.append(ir["e"])
            in_cnt += np.bincount(ir["t"], minlength=n_con)
            if spec and isa >= 0:
                sel = ir["r"] == isa
                w_chi_e.append(ir["e"][sel])
                w_chi.append(ir["h"][sel])
                chi_cnt += np.bincount(ir["t"][sel], minlength=n_con)
            del ir
            _release(pool)
        w_in.close()
        w_chi_e.close()
        w_chi.close()
        _save(out / "in_ptr.npy", _ptr_from_counts(in_cnt))
        del in_cnt

        # ---- 7. diagnosis index for the built-in finding relations (per finding bucket) -------------
        ph.start("diagnosis index per finding bucket", track="relations")
        meta_diag: list[list[str]] = []
        if spec:
            w_fe = _NpyAppender(out / "diag" / "f_edges.npy", np.int32)
            w_fd = _NpyAppender(out / "diag" / "f_dis.npy", np.int64)
            f_cnt = np.zeros(n_con, dtype=np.int64)
            for k in range(k_rel):
                fr = find_spill.read(k)
                if not len(fr):
                    continue
                fr = _take(fr, np.flatnonzero(is_disease[fr["d"]]))
                fr = _take(fr, _find_order(fr, hb))
                w_fe.append(fr["e"])
                w_fd.append(fr["d"])
                f_cnt += np.bincount(fr["f"], minlength=n_con)
                del fr
                _release(pool)
            w_fe.close()
            w_fd.close()
            d = out / "diag"
            f_ptr = _ptr_from_counts(f_cnt)
            chi_ptr = _ptr_from_counts(chi_cnt)
            _save(d / "is_disease.npy", is_disease)
            _save(d / "f_ptr.npy", f_ptr)
            _save(d / "par_ptr.npy", _ptr_from_counts(par_cnt))
            _save(d / "chi_ptr.npy", chi_ptr)
            _save(d / "n_children.npy", np.diff(chi_ptr))
            n_dis = max(int(is_disease.sum()), 1)
            _save(d / "idf.npy", np.log1p(n_dis / (1.0 + np.diff(f_ptr))))
            from graphbrain.kg.store.backend import _spec_key

            (d / "spec.json").write_text(json.dumps({"spec": _spec_key(spec), "isa_code": int(isa)}), encoding="utf-8")
            meta_diag = [list(p) for p in spec]
        else:
            for p in (out / "diag").glob("*.npy"):
                p.unlink()

        return {
            "n_edges": n_edges, "rtypes": rtypes, "used": used, "sources_sorted": sources_sorted,
            "sty_list": sty_list, "meta_diag": meta_diag, "k_rel": k_rel,
        }

    worker = _Worker(relations, ph)
    if concurrent:
        worker.start()

    try:
        # ---- 1. MRCONSO + MRDEF -> CUI-range buckets --------------------------------------------
        ph.start("MRCONSO read + filter + spill by CUI range")
        k_con = _n_buckets(conso_path.stat().st_size / 110, bucket_rows, buckets)
        conso_schema = pa.schema([("cui", pa.int32()), ("rank", pa.int8()), ("str", pa.string()),
                                  ("sab", pa.string()), ("code", pa.string())])
        conso_spill = _Spill(tmp, "conso", conso_schema, k_con)
        step = max(1, int(conso_path.stat().st_size / 110) // _SAMPLE)
        sample: list[Any] = []
        cols = layout["MRCONSO.RRF"]
        keep = ["CUI", "LAT", "TS", "STT", "ISPREF", "SAB", "CODE", "STR", "SUPPRESS"]
        seq = 0
        for b in iter_rrf_batches(conso_path, cols, keep, on_error=on_error, stats=stats, use_threads=csv_threads):
            n = b.num_rows
            cui = b.column("CUI")
            cnum, okn = _cui_parse(cui)
            ok = _np_to_arrow(okn)
            bad = n - int(okn.sum())
            if bad:
                if on_error != "skip":
                    first = int(np.flatnonzero(~okn)[0])
                    raise DataError(
                        f"invalid CUI {cui[first].as_py()!r} (expected C followed by 7 digits)",
                        source=f"{conso_path}:{seq + first + 1}:1", reason="malformed",
                    )
                stats["MRCONSO.RRF:malformed"] += bad
            mask = ok
            if langs is not None:
                m2 = pc.is_in(b.column("LAT"), value_set=langs)
                stats["MRCONSO.RRF:filtered_language"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                mask = pc.and_(mask, m2)
            if sab_set is not None:
                m2 = pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=sab_set)
                stats["MRCONSO.RRF:filtered_source"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                mask = pc.and_(mask, m2)
            if not include_suppressed:
                m2 = pc.invert(pc.is_in(b.column("SUPPRESS"), value_set=supp))
                stats["MRCONSO.RRF:filtered_suppressed"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                mask = pc.and_(mask, m2)
            f = b.filter(mask)
            stats["MRCONSO.RRF:kept"] += f.num_rows
            seq += n
            bar.update(n)
            if not f.num_rows:
                continue
            c = cnum[_np(mask)]
            rank = (
                _np(pc.equal(f.column("TS"), _S("P"))).astype(np.int8) * 4
                + _np(pc.equal(f.column("STT"), _S("PF"))).astype(np.int8) * 2
                + _np(pc.equal(f.column("ISPREF"), _S("Y"))).astype(np.int8)
            )
            t = pa.table([_np_to_arrow(c), _np_to_arrow(rank), f.column("STR"), f.column("SAB"), f.column("CODE")], schema=conso_schema)
            conso_spill.write_split((c.astype(np.int64) * k_con) // 10_000_000, t)
            sample.append(t.select(["str", "sab", "code"]).take(_np_to_arrow(np.arange(0, t.num_rows, step))))
        conso_spill.close_writers()
        n_kept = stats["MRCONSO.RRF:kept"]
        if not n_kept:
            raise DataError(
                "no MRCONSO row was kept: check the language and source filters (languages=None keeps all)",
                source=str(conso_path), reason="empty",
            )
        def_schema = pa.schema([("cui", pa.int32()), ("def", pa.string())])
        def_spill = _Spill(tmp, "def", def_schema, k_con)
        def_path = meta_dir / "MRDEF.RRF"
        if def_path.is_file():
            ph.start("MRDEF read + spill by CUI range")
            for b in iter_rrf_batches(def_path, layout["MRDEF.RRF"], ["CUI", "SAB", "DEF", "SUPPRESS"], on_error=on_error, stats=stats, use_threads=csv_threads):
                dnum, dok = _cui_parse(b.column("CUI"))
                m = _np_to_arrow(dok)
                if sab_set is not None:
                    m = pc.and_(m, pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=sab_set))
                if not include_suppressed:
                    m = pc.and_(m, pc.invert(pc.is_in(b.column("SUPPRESS"), value_set=supp)))
                b = b.filter(m)
                if not b.num_rows:
                    continue
                c = dnum[_np(m)]
                def_spill.write_split((c.astype(np.int64) * k_con) // 10_000_000, pa.table([_np_to_arrow(c), b.column("DEF")], schema=def_schema))
        def_spill.close_writers()

        # key ranges of the string tables from the sample of kept rows
        smp = pa.concat_tables(sample).combine_chunks()
        del sample
        k_lab = _n_buckets(n_kept, bucket_rows, buckets)
        k_tok = _n_buckets(4 * n_kept, 4 * bucket_rows, buckets)
        s_nsab = _map_unique(smp.column("sab"), normalise_source, {})
        s_x = pc.utf8_lower(pc.binary_join_element_wise(s_nsab, smp.column("code"), _S(":")))
        split_lab = _splitters(_normalise_labels(smp.column("str")), k_lab)
        split_tok = _splitters(_fold_tokens(smp.column("str"))[0], k_tok)
        split_code = _splitters(s_x, k_lab)
        split_bare = _splitters(pc.utf8_lower(smp.column("code")), k_lab)
        del smp, s_nsab, s_x
        lab_schema = pa.schema([("norm", pa.string()), ("label", pa.string()), ("concept", pa.int32()), ("kind", pa.int8())])
        code_schema = pa.schema([("key", pa.string()), ("concept", pa.int32()), ("xref", pa.string())])
        lab_spill = _Spill(tmp, "lab", lab_schema, len(split_lab) + 1)
        code_spill = _Spill(tmp, "code", code_schema, len(split_code) + 1)
        bare_spill = _Spill(tmp, "bare", code_schema, len(split_bare) + 1)

        # ---- 2. per CUI bucket: concepts, synonyms, xrefs, definitions -----------------------------
        ph.start("concepts, synonyms, xrefs per CUI bucket; spill labels and codes by key range")
        chunk_rows = BATCH_ROWS
        w_con = _ArrowAppender(out / "concepts.arrow", pa.schema([("name", pa.string()), ("definition", pa.string())]), chunk_rows)
        w_syn = _ArrowAppender(out / "synonyms.arrow", pa.schema([("s", pa.string())]), chunk_rows)
        w_xref = _ArrowAppender(out / "xrefs.arrow", pa.schema([("x", pa.string())]), chunk_rows)
        ucui_parts: list[np.ndarray] = []
        syn_cnt: list[np.ndarray] = []
        x_cnt: list[np.ndarray] = []
        src_cache: dict[str, str] = {}
        n_con = 0
        for k in range(k_con):
            t = conso_spill.read(k)
            d = def_spill.read(k)
            if not t.num_rows:
                continue
            cui = _np(t.column("cui"))
            ucui = np.unique(cui)
            nk = len(ucui)
            idx = np.searchsorted(ucui, cui).astype(np.int32)
            rank = _np(t.column("rank"))
            strs = t.column("str").combine_chunks()
            # preferred name: best (TS=P, STT=PF, ISPREF=Y), first row among equals
            order = np.lexsort((np.arange(len(idx)), -rank.astype(np.int16), idx))
            first = np.ones(len(order), dtype=bool)
            first[1:] = idx[order][1:] != idx[order][:-1]
            names = strs.take(_np_to_arrow(order[first]))
            del order, first, rank, cui
            # synonyms: distinct strings per concept, minus the name and the empty string
            gi, gs = _sorted_distinct(idx, strs)  # distinct (concept, string), sorted
            keep_syn = pc.and_(pc.not_equal(gs, names.take(_np_to_arrow(gi))), pc.not_equal(gs, _S("")))
            syn = pa.table({"i": _np_to_arrow(gi.astype(np.int32)), "s": gs}).filter(keep_syn)
            del gi, gs
            syn_i = _np(syn.column("i"))
            syn_cnt.append(np.bincount(syn_i, minlength=nk))
            w_syn.append(pa.table({"s": syn.column("s")}))
            # cross-references SAB:CODE (code neither empty nor NOCODE)
            code = t.column("code").combine_chunks()
            hidx = _np_to_arrow(np.flatnonzero(_np(pc.and_(pc.not_equal(code, _S("")), pc.not_equal(code, _S("NOCODE"))))))
            nsab = _map_unique(t.column("sab").take(hidx), normalise_source, src_cache)
            xref = pc.binary_join_element_wise(nsab, code.take(hidx), _S(":"))
            xi, xs_ = _sorted_distinct(idx[_np(hidx)], xref)
            xt = pa.table({"i": _np_to_arrow(xi.astype(np.int32)), "x": xs_})
            del xi, xs_
            x_i = _np(xt.column("i"))
            x_cnt.append(np.bincount(x_i, minlength=nk))
            w_xref.append(pa.table({"x": xt.column("x")}))
            # definitions: first kept MRDEF row per concept
            defs = _empty_strings(nk)
            if d.num_rows:
                dc = _np(d.column("cui"))
                j = np.minimum(np.searchsorted(ucui, dc), nk - 1)
                inside = np.flatnonzero(ucui[j] == dc)
                if len(inside):
                    uj, pos = np.unique(j[inside], return_index=True)
                    src_rows = np.full(nk, len(inside), dtype=np.int64)
                    src_rows[uj] = pos
                    cand = pa.concat_arrays([d.column("def").take(_np_to_arrow(inside)).combine_chunks(), _empty_strings(1)])
                    defs = cand.take(_np_to_arrow(src_rows))
            w_con.append(pa.table({"name": names, "definition": defs}))
            # label rows (names and synonyms) and code rows, spilled by key range
            label = pa.concat_arrays([names, syn.column("s").combine_chunks()])
            concept = np.concatenate([np.arange(nk, dtype=np.int32), syn_i.astype(np.int32)]) + np.int32(n_con)
            kind = np.concatenate([np.zeros(nk, np.int8), np.ones(len(syn_i), np.int8)])
            norm = _normalise_labels(label)
            lab_spill.write_split(_range_bucket(norm, split_lab), pa.table([norm, label, _np_to_arrow(concept), _np_to_arrow(kind)], schema=lab_schema))
            xs = xt.column("x").combine_chunks()
            xl = pc.utf8_lower(xs)
            xc = _np_to_arrow(x_i.astype(np.int32) + np.int32(n_con))
            code_spill.write_split(_range_bucket(xl, split_code), pa.table([xl, xc, xs], schema=code_schema))
            bare = pc.replace_substring_regex(xl, pattern=r"^[^:]*:", replacement="", max_replacements=1)
            bare_spill.write_split(_range_bucket(bare, split_bare), pa.table([bare, xc, xs], schema=code_schema))
            ucui_parts.append(ucui.astype(np.int32))
            n_con += nk
            del t, d, syn, xt, strs, names, label, norm, xl, bare, defs
            _release(pool)
        for w in (w_con, w_syn, w_xref):
            w.close()
        lab_spill.close_writers()
        code_spill.close_writers()
        bare_spill.close_writers()
        ucui = np.concatenate(ucui_parts) if ucui_parts else np.zeros(0, np.int32)
        del ucui_parts
        _save(out / "cui.npy", ucui)
        shared["ucui"], shared["n_con"] = ucui, n_con
        concepts_ready.set()
        _save(out / "syn_ptr.npy", _ptr_from_counts(np.concatenate(syn_cnt)))
        _save(out / "xref_ptr.npy", _ptr_from_counts(np.concatenate(x_cnt)))
        del syn_cnt, x_cnt

        # ---- 3. look-up tables: sorted label / code buckets; tokens of the sorted labels ------------
        ph.start("labels and tokens sorted by key-range bucket")
        w_lab = _ArrowAppender(out / "labels.arrow", lab_schema, chunk_rows)
        tok_schema = pa.schema([("token", pa.string()), ("row", pa.int64())])
        # folded words spilled dictionary-encoded (one dictionary per label bucket): no string
        # copy per token, and the token buckets rank the (small) dictionaries instead of hashing
        tok_spill_schema = pa.schema([("token", pa.dictionary(pa.int32(), pa.string())), ("row", pa.int64())])
        tok_spill = _Spill(tmp, "tok", tok_spill_schema, len(split_tok) + 1)
        r0 = 0
        for k in range(lab_spill.k):
            t = lab_spill.read(k)
            if not t.num_rows:
                continue
            t = t.take(_order(t, ["norm", "concept", "kind", "label"]))
            w_lab.append(t)
            words, widx, rows = _fold_tokens(t.column("label"), with_dictionary=True)
            tok = pa.DictionaryArray.from_arrays(widx, words)
            tt = pa.table([tok, _np_to_arrow(rows.astype(np.int64) + r0)], schema=tok_spill_schema)  # de-duplicated when sorted
            tok_spill.write_split(_range_bucket(words, split_tok)[_np(widx)], tt)  # bucket per distinct word
            r0 += t.num_rows
            del t, tt, tok, words, widx, rows
            _release(pool)
        w_lab.close()
        tok_spill.close_writers()
        w_tok = _ArrowAppender(out / "tokens.arrow", tok_schema, 4 * chunk_rows)
        for k in range(tok_spill.k):
            t = tok_spill.read(k)
            if t.num_rows:
                trank, tdict = _str_rank(t.column("token"))
                tr, row = _unique_pairs(trank, _np(t.column("row")))
                w_tok.append(pa.table([tdict.take(_np_to_arrow(tr)), _np_to_arrow(row)], schema=tok_schema))
                del trank, tdict, tr, row
            del t
            _release(pool)
        w_tok.close()
        ph.start("code tables sorted by key-range bucket")
        for name, spill in (("codes", code_spill), ("bare", bare_spill)):
            w = _ArrowAppender(out / f"{name}.arrow", code_schema, chunk_rows)
            for k in range(spill.k):
                t = spill.read(k)
                if t.num_rows:
                    w.append(t.take(_order(t, ["key", "concept", "xref"])))
                del t
            w.close()
            _release(pool)

    except BaseException:
        abort.set()
        if worker.ident is not None:
            worker.join()
        raise
    if not concurrent:
        worker.start()
    ph.start("wait for the relation side")
    r = worker.result()
    ph.end()
    stats.update(rstats)
    n_edges, rtypes, used = r["n_edges"], r["rtypes"], r["used"]
    sources_sorted, sty_list, meta_diag, k_rel = r["sources_sorted"], r["sty_list"], r["meta_diag"], r["k_rel"]

    return {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "concepts": int(n_con),
        "relations": int(n_edges),
        "relation_types": rtypes,
        "relation_types_used": sorted(rtypes[i] for i in np.flatnonzero(used[: len(rtypes)])),
        "sources": sources_sorted,
        "semantic_types": [list(s) for s in sty_list],
        "stats": dict(sorted(stats.items())),
        "metadata": {"source": "UMLS Metathesaurus (user-supplied)", "rrf_stats": dict(sorted(stats.items()))},
        "diagnosis": meta_diag,
        "buckets": {"concepts": k_con, "labels": lab_spill.k, "tokens": tok_spill.k, "codes": code_spill.k,
                    "relations": k_rel, "bucket_rows": bucket_rows},
        "build_seconds": None,
    }


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress: bool) -> Any:
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="RRF -> store")
