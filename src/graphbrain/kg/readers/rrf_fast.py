"""Streaming RRF batches with pyarrow's CSV reader (``|``-delimited, no quoting, chunked).

:func:`iter_rrf_batches` yields :class:`pyarrow.RecordBatch` objects of string columns for one
RRF file, checking the column count of every row (the trailing ``|`` makes one extra, empty
column; a row with all fields but no trailing ``|`` is accepted and counted as
``FILE:no_trailing_pipe``, as in :func:`~graphbrain.kg.readers.rrf.read_rrf`) and the UTF-8
encoding. With ``on_error="raise"`` a bad row raises
:class:`~graphbrain.errors.DataError` naming the file and row; with ``"skip"`` it is skipped
and counted in ``stats["<FILE>:malformed"]``. This is what lets
:mod:`graphbrain.kg.store` read a full Metathesaurus release at hundreds of thousands of rows
per second where the line-by-line reader in :mod:`graphbrain.kg.readers.rrf` reaches tens of
thousands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphbrain.errors import DataError, MissingDependencyError

BLOCK_SIZE = 4 << 20
#: bytes of RRF parsed at a time (bounds the reader's memory whatever the file size)
CHUNK_SIZE = 32 << 20


def _line_chunks(path: Path, size: int) -> Iterator[Any]:
    """The bytes of ``path`` in pieces of about ``size`` bytes, each ending at a line end
    (memoryviews of the bytes read: the partial last line is read again with the next piece
    instead of copying every piece)."""
    size = max(size, 1)
    with open(path, "rb") as fh:
        pos = 0
        while True:
            data = fh.read(size)
            if not data:
                return
            if len(data) < size:  # the end of the file
                yield memoryview(data)
                return
            cut = data.rfind(b"\n") + 1
            while cut == 0:  # a line longer than ``size``: read on to its end
                more = fh.read(size)
                if not more:
                    yield memoryview(data)
                    return
                base = len(data)
                data += more
                nl = more.rfind(b"\n")
                cut = base + nl + 1 if nl >= 0 else 0
            yield memoryview(data)[:cut]
            pos += cut
            fh.seek(pos)


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise MissingDependencyError("pyarrow", "kg", "Streaming RRF into an on-disk store") from exc
    return pa, pacsv


def _first_bad_utf8_line(path: Path) -> tuple[int, int] | None:
    """(line, byte column) of the first invalid UTF-8 sequence, or None."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return lineno, exc.start + 1
    return None


def _first_malformed_line(path: Path, ncols: int) -> int | None:
    """Line number of the first row without ``ncols`` fields (trailing '|' optional), or None.

    Used only to name the row in an error: pyarrow's message carries the row number in
    some versions and not in others.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            n = raw.rstrip(b"\r\n").count(b"|")
            if n not in (ncols, ncols - 1):
                return lineno
    return None


def iter_rrf_batches(
    path: str | Path,
    columns: list[str],
    keep: list[str],
    *,
    on_error: str = "raise",
    stats: Counter[str] | None = None,
    block_size: int = BLOCK_SIZE,
    use_threads: bool = True,
    chunk_size: int = CHUNK_SIZE,
    dictionary: tuple[str, ...] = (),
) -> Iterator[Any]:
    """String columns ``keep`` of the RRF file ``path`` laid out as ``columns``, in batches.

    Columns named in ``dictionary`` come dictionary-encoded (``dictionary<int32, string>``, one
    dictionary per batch), encoded by the parser's threads: cheaper than encoding afterwards
    for columns with few distinct values (relation names, sources)."""
    pa, pacsv = _pyarrow()
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError("RRF file not found", source=str(path), reason="missing")
    stats = stats if stats is not None else Counter()
    names = [*columns, "_trailing_"]
    malformed = f"{path.name}:malformed"

    pending: list[str] = []

    def on_bad_row(row: Any) -> str:
        if row.actual_columns == len(columns) and row.text is not None:
            # all fields but no trailing '|': accepted and counted, as read_rrf does
            stats[f"{path.name}:no_trailing_pipe"] += 1
            pending.append(row.text)
            return "skip"
        if on_error == "skip":
            stats[malformed] += 1
            return "skip"
        return "error"

    def flush() -> Any:
        rows = [t.rstrip("\r\n").split("|") for t in pending]
        pending.clear()
        pos = {c: i for i, c in enumerate(columns)}
        cols = [pa.array([r[pos[c]] for r in rows], pa.string()) for c in keep]
        cols = [a.dictionary_encode() if c in dictionary else a for a, c in zip(cols, keep)]
        return pa.record_batch(cols, names=keep)

    read_options = pacsv.ReadOptions(column_names=names, block_size=block_size, use_threads=use_threads)
    parse_options = pacsv.ParseOptions(
        delimiter="|", quote_char=False, escape_char=False, newlines_in_values=False,
        invalid_row_handler=on_bad_row,
    )
    convert_options = pacsv.ConvertOptions(
        column_types={c: pa.dictionary(pa.int32(), pa.string()) if c in dictionary else pa.string() for c in names},
        include_columns=keep,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        # The file is cut at line ends into pieces of about ``chunk_size`` bytes, each parsed
        # by pyarrow (in parallel blocks when use_threads): pyarrow's own streaming reader reads
        # ahead without bound when the consumer is slower than the parser, which made memory
        # grow with the file size.
        for piece in _line_chunks(path, chunk_size):
            table = pacsv.read_csv(pa.py_buffer(piece), read_options=read_options,
                                   parse_options=parse_options, convert_options=convert_options)
            del piece
            for batch in table.to_batches():
                stats[f"{path.name}:rows"] += batch.num_rows
                yield batch
            del table
            if pending:
                extra = flush()
                stats[f"{path.name}:rows"] += extra.num_rows
                yield extra
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "utf8" in msg.lower():
            where = _first_bad_utf8_line(path)
            src = f"{path}:{where[0]}:{where[1]}" if where else str(path)
            raise DataError("invalid UTF-8 (RRF files are UTF-8)", source=src, reason="encoding") from exc
        bad = _first_malformed_line(path, len(columns))
        row = f":{bad}:1" if bad is not None else ""
        raise DataError(
            f"expected {len(columns)} '|'-separated fields and a trailing '|' ({msg.splitlines()[0]}); "
            "pass on_error='skip' (CLI --skip-malformed) to skip and count malformed rows",
            source=f"{path}{row}",
            reason="malformed",
        ) from exc
