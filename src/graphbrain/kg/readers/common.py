"""Shared pieces of the readers: located errors, UTF-8 line decoding, skip counts.

Every reader error is a :class:`ReadError` (a :class:`~graphbrain.errors.DataError`) whose
message starts with ``FILE:LINE:COLUMN:`` (1-based; the column counts characters) and whose
``reason`` is a short code (``"encoding"``, ``"fields"``, ``"cui"``, ``"syntax"`` ...). With
``on_error="skip"`` the readers count skipped rows per ``FILE:reason`` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from graphbrain.errors import DataError


class ReadError(DataError):
    """A malformed record in an input file, located by file, line and column."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        line: int | None = None,
        column: int | None = None,
        reason: str = "malformed",
    ) -> None:
        self.file = str(file)
        self.line = line
        self.column = column
        where = self.file
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(message, source=where, reason=reason)


class EmptyGraphError(DataError):
    """The input gave a graph without concepts (pass ``allow_empty=True`` if that is intended)."""


def check_not_empty(n_concepts: int, source: str, detail: str = "", *, allow_empty: bool = False) -> None:
    if n_concepts == 0 and not allow_empty:
        raise EmptyGraphError(
            "no concept was read" + (f" ({detail})" if detail else "")
            + "; check the file, or pass allow_empty=True (CLI: --allow-empty) if an empty graph "
            "is intended",
            source=source,
            reason="empty",
        )


def decode_lines(
    path: Path, *, on_error: str = "raise", stats: Counter[str] | None = None
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 file split on ``\\n`` (a final ``\\r`` is removed).

    A line that is not valid UTF-8 raises :class:`ReadError` (reason ``"encoding"``) naming the
    line and the column of the first bad byte, or with ``on_error="skip"`` is counted in
    ``stats["NAME:malformed"]`` and ``stats["NAME:malformed:encoding"]`` and skipped.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if on_error == "skip":
                    if stats is not None:
                        stats[f"{path.name}:malformed"] += 1
                        stats[f"{path.name}:malformed:encoding"] += 1
                    continue
                col = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
                raise ReadError(
                    f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded ({exc.reason}); "
                    "convert the file to UTF-8 or skip malformed rows",
                    file=path,
                    line=lineno,
                    column=col,
                    reason="encoding",
                ) from None
            yield lineno, text


def skip(stats: Counter[str], name: str, reason: str) -> None:
    """Count one skipped row of file ``name`` for ``reason``."""
    stats[f"{name}:malformed"] += 1
    stats[f"{name}:malformed:{reason}"] += 1


def skipped_by_reason(stats: Counter[str] | dict[str, int]) -> dict[str, int]:
    """Skipped rows per ``FILE:reason`` (from reader ``stats`` keys ``FILE:malformed:REASON``)."""
    out = {}
    for k, v in sorted(stats.items()):
        name, sep, reason = k.partition(":malformed:")
        if sep and v:
            out[f"{name}:{reason}"] = int(v)
    return out


def format_skipped(by_reason: dict[str, int]) -> str:
    """``'3 rows skipped: MRCONSO.RRF fields 2, MRREL.RRF encoding 1'`` from ``FILE:reason``
    counts (empty when none)."""
    by = {k: v for k, v in sorted(by_reason.items()) if v}
    if not by:
        return ""
    total = sum(by.values())
    parts = [f"{k.rsplit(':', 1)[0]} {k.rsplit(':', 1)[1]} {v}" for k, v in by.items()]
    return f"{total} row{'s' if total != 1 else ''} skipped: " + ", ".join(parts)


def describe_skipped(stats: Counter[str] | dict[str, int]) -> str:
    """:func:`format_skipped` of reader ``stats``."""
    return format_skipped(skipped_by_reason(stats))
