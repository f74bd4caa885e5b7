"""Safe SPARQL by default: what a user query may do, and how long it may run.

Every query given to :meth:`KnowledgeGraph.sparql` (all three backends) goes through
:func:`check_query` and :func:`run_bounded`:

* **read forms only** — ``SELECT``, ``ASK``, ``CONSTRUCT``, ``DESCRIBE``; any update keyword
  (``INSERT``, ``DELETE``, ``DROP``, ``LOAD`` ...) raises :class:`SparqlUpdateError`;
* **no federation** — ``SERVICE`` raises :class:`SparqlServiceError` unless the caller passes
  ``allow_service=True`` for that call (the stores would otherwise make HTTP requests);
* **bound parameters by name** — a binding name must be a SPARQL variable name that occurs
  in the query (and, for ``SELECT``, is returned by it: Oxigraph's substitution rule, applied
  on every backend); anything else raises :class:`SparqlBindingError`;
* **a time limit and a row limit** — the query runs in a forked child process that is killed
  when the time is up (:class:`SparqlTimeoutError`); more than ``max_rows`` answers raise
  :class:`SparqlRowLimitError`. Where ``fork`` is unavailable the query runs in a worker
  thread that stops at the next answer row and is otherwise abandoned.

The checks work on tokens (strings, IRIs and comments removed), after the codepoint escapes
``\\uXXXX`` that SPARQL processes before parsing, on both the raw and the unescaped text, so a
keyword cannot hide in a string or behind an escape. They refuse rather than guess.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphbrain.errors import GraphbrainError

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ROWS = 100_000


class SparqlError(GraphbrainError, ValueError):
    """A SPARQL query was refused or stopped; the message says why and what to do."""


class SparqlRefusedError(SparqlError):
    """The query was refused before it ran."""


class SparqlUpdateError(SparqlRefusedError):
    """An update form (``INSERT``, ``DELETE``, ``DROP``, ``LOAD`` ...): stores are read-only."""


class SparqlServiceError(SparqlRefusedError):
    """``SERVICE`` (federated query) without ``allow_service=True``."""


class SparqlBindingError(SparqlRefusedError):
    """A binding name that is not a variable of the query, or a value that cannot be bound."""


class SparqlSyntaxError(SparqlRefusedError):
    """The store could not parse the query."""


class SparqlTimeoutError(SparqlError, TimeoutError):
    """The query ran longer than its time limit and was stopped."""


class SparqlRowLimitError(SparqlError):
    """The query has more answers than the row limit."""


UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
)
READ_FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
VARNAME = re.compile(r"^[A-Za-z0-9_\u00B7\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u037D\u037F-\u1FFF"
                     r"\u200C-\u200D\u203F-\u2040\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF"
                     r"\uF900-\uFDCF\uFDF0-\uFFFD]+$")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<lstring>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*''')
  | (?P<string>"(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][\w\u00B7]+)
  | (?P<pname>(?:[A-Za-z_][\w\-.]*)?:[\w\-.:%\\]*|_:[\w\-.]+)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def _unescape(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        try:
            return chr(int(m.group(1) or m.group(2), 16))
        except (ValueError, OverflowError):
            return m.group(0)

    return _ESCAPE.sub(sub, text)


def tokens(query: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens without whitespace and comments."""
    out = []
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup or "other"
        if kind not in ("ws", "comment"):
            out.append((kind, m.group()))
    return out


@dataclass(frozen=True)
class QueryInfo:
    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE
    variables: frozenset[str]
    projected: frozenset[str] | None  # None: SELECT * or not a SELECT


def _refuse(toks: list[tuple[str, str]], allow_service: bool) -> list[str]:
    words = [t.upper() for k, t in toks if k == "word"]
    upd = sorted(UPDATE_KEYWORDS.intersection(words))
    if upd:
        raise SparqlUpdateError(
            f"update operations are refused ({', '.join(upd)}): SPARQL queries on a graphbrain "
            "knowledge graph are read-only; change a graph in Python and save it"
        )
    if "SERVICE" in words and not allow_service:
        raise SparqlServiceError(
            "SERVICE (federated query) is refused: it makes network requests from this "
            "machine; pass allow_service=True for this call (CLI: --allow-service) if you "
            "trust the endpoint"
        )
    return words


def _analyse(query: str, allow_service: bool) -> QueryInfo:
    toks = tokens(query)
    words = _refuse(toks, allow_service)
    form = next((w for w in words if w in READ_FORMS), None)
    if form is None:
        raise SparqlSyntaxError(
            "not a SPARQL query: expected SELECT, ASK, CONSTRUCT or DESCRIBE"
        )
    variables = frozenset(t[1:] for k, t in toks if k == "var")
    projected: frozenset[str] | None = None
    if form == "SELECT":
        start = next(i for i, (k, t) in enumerate(toks) if k == "word" and t.upper() == "SELECT")
        proj: set[str] = set()
        depth, star, prev = 0, False, ""
        for k, t in toks[start + 1 :]:
            if depth == 0 and (t == "{" or (k == "word" and t.upper() in ("WHERE", "FROM"))):
                break
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            elif t == "*" and depth == 0:
                star = True
            elif k == "var" and (depth == 0 or prev == "AS"):
                proj.add(t[1:])
            prev = t.upper() if k == "word" else t
        projected = None if star else frozenset(proj)
    return QueryInfo(form, variables, projected)


def check_query(
    query: str, bindings: Mapping[str, Any] | None = None, *, allow_service: bool = False
) -> QueryInfo:
    """Refuse update forms, ``SERVICE`` (unless allowed) and bad binding names; see module doc."""
    if not isinstance(query, str) or not query.strip():
        raise SparqlSyntaxError("the SPARQL query is empty")
    unescaped = _unescape(query)
    if unescaped != query:  # refusals first, on both readings of the text
        _refuse(tokens(query), allow_service)
    info = _analyse(unescaped, allow_service)
    for name in bindings or {}:
        if not isinstance(name, str) or not VARNAME.match(name):
            raise SparqlBindingError(
                f"invalid binding name {name!r}: use a SPARQL variable name without '?' "
                "(letters, digits, '_')"
            )
        if name not in info.variables:
            raise SparqlBindingError(
                f"binding name {name!r} is not a variable of the query (variables: "
                f"{', '.join(sorted('?' + v for v in info.variables)) or 'none'})"
            )
        if info.projected is not None and name not in info.projected:
            raise SparqlBindingError(
                f"binding name {name!r} is not returned by the SELECT: add ?{name} to the "
                "SELECT list (or use SELECT *)"
            )
    return info


def check_limits(timeout: float | None, max_rows: int | None) -> tuple[float, int]:
    t = DEFAULT_TIMEOUT if timeout is None else timeout
    n = DEFAULT_MAX_ROWS if max_rows is None else max_rows
    if isinstance(t, bool) or not isinstance(t, int | float) or not t > 0 or t != t:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}")
    return float(t), n


def row_limit_error(max_rows: int) -> SparqlRowLimitError:
    return SparqlRowLimitError(
        f"the query returns more than {max_rows} rows; add LIMIT to the query or raise "
        "max_rows (CLI: --max-rows)"
    )


def timeout_error(timeout: float) -> SparqlTimeoutError:
    return SparqlTimeoutError(
        f"the query ran longer than {timeout:g} s and was stopped; make it more selective "
        "(bind variables, add LIMIT) or raise timeout (CLI: --timeout)"
    )


_ERRORS: dict[str, type[SparqlError]] = {
    c.__name__: c
    for c in (
        SparqlError,
        SparqlRefusedError,
        SparqlUpdateError,
        SparqlServiceError,
        SparqlBindingError,
        SparqlSyntaxError,
        SparqlTimeoutError,
        SparqlRowLimitError,
    )
}


def _error_payload(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, SparqlError):
        return {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SyntaxError) or type(exc).__name__ in ("ParseException", "ParseSyntaxException"):
        return {"error": "SparqlSyntaxError", "message": f"invalid SPARQL: {exc}"}
    return {"error": "SparqlError", "message": f"the query failed: {type(exc).__name__}: {exc}"}


def _raise(payload: dict[str, str]) -> None:
    raise _ERRORS.get(payload.get("error", ""), SparqlError)(payload.get("message", "query failed"))


def fork_available() -> bool:
    return hasattr(os, "fork") and os.name == "posix"


def run_bounded(fn: Callable[[], Any], timeout: float, *, isolation: str = "auto") -> Any:
    """Run ``fn`` (returns a JSON-able value) with a hard time limit.

    ``isolation``: ``"process"`` (fork; the child is killed at the deadline, so the work
    really stops), ``"thread"`` (the caller is released at the deadline; ``fn`` should check
    :func:`cancelled` between rows) or ``"auto"`` (process where ``fork`` exists).
    """
    if isolation == "auto":
        isolation = "process" if fork_available() else "thread"
    if isolation == "process":
        return _run_forked(fn, timeout)
    if isolation == "thread":
        return _run_thread(fn, timeout)
    raise ValueError(f"isolation must be 'auto', 'process' or 'thread', got {isolation!r}")


def _run_forked(fn: Callable[[], Any], timeout: float) -> Any:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute, write JSON, exit without running the parent's cleanup
        code = 0
        try:
            os.close(r)
            try:
                payload: dict[str, Any] = {"ok": fn()}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = _error_payload(exc)
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            view = memoryview(data)
            while view:
                n = os.write(w, view)
                view = view[n:]
            os.close(w)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    timed_out = False
    done = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                timed_out = True
                break
            b = os.read(r, 1 << 20)
            if not b:
                done = True
                break
            chunks.append(b)
    finally:
        os.close(r)
        if not done:  # time is up, or the caller was interrupted: the worker must not live on
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    if timed_out:
        raise timeout_error(timeout)
    try:
        payload = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise SparqlError("the query process ended without an answer (out of memory?)") from exc
    if "ok" in payload:
        return payload["ok"]
    _raise(payload)


_local = threading.local()


def cancelled() -> bool:
    """True inside a thread-isolated query whose time is up (stop producing rows)."""
    ev = getattr(_local, "cancel", None)
    return bool(ev is not None and ev.is_set())


def _run_thread(fn: Callable[[], Any], timeout: float) -> Any:
    box: dict[str, Any] = {}
    cancel = threading.Event()

    def work() -> None:
        _local.cancel = cancel
        try:
            box["payload"] = {"ok": fn()}
        except BaseException as exc:  # noqa: BLE001
            box["payload"] = _error_payload(exc)

    th = threading.Thread(target=work, name="graphbrain-sparql", daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        cancel.set()
        raise timeout_error(timeout)
    payload = box["payload"]
    if "ok" in payload:
        return payload["ok"]
    _raise(payload)
