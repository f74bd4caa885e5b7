"""Executors: run one function over many items with a bounded number in flight.

* ``serial``: in this process (debugging, tiny cohorts);
* ``process``: a local :class:`concurrent.futures.ProcessPoolExecutor`;
* ``dask``: Dask distributed: a :class:`distributed.LocalCluster` by default, or an
  existing scheduler given by ``address="tcp://host:8786"`` (a cluster started by
  ``dask-jobqueue`` on SLURM, ``dask scheduler`` / ``dask worker`` by hand, Kubernetes ...).

All yield results as they complete (unordered) and keep at most ``max_in_flight`` items
submitted, so the driver never holds the whole cohort: memory is bounded by the batch.
The batch runner sorts the results by task index, so every executor writes identical
tables.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import Any

from graphbrain.errors import ConfigError, MissingDependencyError

EXECUTORS = ("serial", "process", "dask")
_END = object()


def _worker_init() -> None:
    # One BLAS / torch thread per worker process: the pool provides the parallelism. torch
    # reads OMP_NUM_THREADS when first imported; importing it here only to set the thread
    # count would add seconds to every worker start (the batch work does not need torch).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


class Executor:
    """Base class: ``map_unordered(fn, items, *args)`` and ``close()``; a context manager."""

    name = "base"
    n_workers = 1

    def map_unordered(
        self, fn: Callable[..., Any], items: Iterable[Any], *args: Any, max_in_flight: int = 64,
        on_error: Callable[[Any, BaseException], Any] | None = None,
        split: Callable[[Any], list[Any] | None] | None = None,
    ) -> Iterator[Any]:
        """Yield ``fn(item, *args)`` for every item, in completion order.

        When running an item fails in the executor itself (its worker process died:
        OOM killer, a segfault, ``os._exit``), ``split(item)`` may cut it into smaller
        items (a micro-batch into its subjects), which are then run on their own, so
        only the item at fault is lost; an item that cannot be split (``split`` is
        ``None`` or returns ``None``) gives ``on_error(item, error)`` (re-raised when
        ``on_error`` is ``None``).
        """
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "n_workers": self.n_workers}


class SerialExecutor(Executor):
    name = "serial"

    def map_unordered(self, fn, items, *args, max_in_flight=64, on_error=None, split=None):  # type: ignore[override]
        for item in items:
            try:
                yield fn(item, *args)
            except Exception as err:  # noqa: BLE001
                if on_error is None:
                    raise
                yield on_error(item, err)


class ProcessExecutor(Executor):
    """A local process pool (``mp_context``: ``spawn``, ``forkserver`` or ``fork``).

    A worker process that dies (killed by a signal, ``os._exit``, a crash in native
    code) breaks a :class:`~concurrent.futures.ProcessPoolExecutor` for good, and every
    item in flight fails with it without saying which one killed the worker. So the pool
    is rebuilt and the items in flight are run again one at a time ("isolation"): the
    innocent ones complete, the guilty one kills its worker again and is split (a
    micro-batch into its subjects, each again on its own) or reported through
    ``on_error``; then the run goes on at full width.
    """

    name = "process"

    def __init__(self, n_workers: int | None = None, mp_context: str = "spawn") -> None:
        import multiprocessing as mp

        self.n_workers = int(n_workers or os.cpu_count() or 1)
        try:
            self._ctx = mp.get_context(mp_context)
        except ValueError as err:
            raise ConfigError(f"executor.mp_context must be spawn, forkserver or fork, got {mp_context!r}") from err
        if mp_context == "forkserver":  # workers fork from a server that imported the batch code once
            self._ctx.set_forkserver_preload(["graphbrain.batch.worker"])
        self.restarts = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.n_workers, mp_context=self._ctx, initializer=_worker_init)

    def _restart(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()
        self.restarts += 1

    def _isolated(self, fn, item, args, on_error, split):  # type: ignore[no-untyped-def]
        """Run one suspect item alone; split it or report it if it kills its worker again."""
        try:
            yield self._pool.submit(fn, item, *args).result()
            return
        except BrokenProcessPool as err:
            self._restart()
            parts = split(item) if split is not None else None
            if parts is not None and len(parts) > 1:
                for part in parts:
                    yield from self._isolated(fn, part, args, on_error, split)
                return
            if on_error is None:
                raise
            yield on_error(item, err)
        except Exception as err:  # noqa: BLE001 - e.g. an item that cannot be pickled
            if on_error is None:
                raise
            yield on_error(item, err)

    def map_unordered(self, fn, items, *args, max_in_flight=64, on_error=None, split=None):  # type: ignore[override]
        it = iter(items)
        pending: dict[Future[Any], Any] = {}
        backlog: deque[Any] = deque()  # refused by a pool that broke before they were submitted

        def refill() -> None:
            while len(pending) < max_in_flight:
                nxt = backlog.popleft() if backlog else next(it, _END)
                if nxt is _END:
                    return
                try:
                    pending[self._pool.submit(fn, nxt, *args)] = nxt
                except BrokenProcessPool:
                    backlog.appendleft(nxt)
                    return

        refill()
        while pending or backlog:
            if not pending:  # broken while nothing of ours was in flight
                self._restart()
                refill()
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            suspects: list[Any] = []
            for fut in done:
                item = pending.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    suspects.append(item)
                    continue
                except Exception as err:  # noqa: BLE001
                    if on_error is None:
                        raise
                    res = on_error(item, err)
                yield res
            if suspects:
                # The pool is broken: the other items in flight fail too (or finished first).
                wait(pending)
                for fut, item in list(pending.items()):
                    if fut.exception() is None:
                        yield fut.result()
                    else:
                        suspects.append(item)
                pending.clear()
                self._restart()
                for item in suspects:
                    yield from self._isolated(fn, item, args, on_error, split)
            refill()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Dask distributed: a LocalCluster (``n_workers`` processes, one thread each) unless
    ``address`` names a running scheduler."""

    name = "dask"

    def __init__(self, n_workers: int | None = None, address: str | None = None, threads_per_worker: int = 1,
                 memory_limit: str | None = "auto", processes: bool = True) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise MissingDependencyError("distributed", "dask", "the Dask executor") from err
        self.address = address
        self._cluster = None
        if address:
            self._client = Client(address)
            self.n_workers = len(self._client.scheduler_info().get("workers", {})) or 1
        else:
            self.n_workers = int(n_workers or os.cpu_count() or 1)
            self._cluster = LocalCluster(
                n_workers=self.n_workers, threads_per_worker=int(threads_per_worker), processes=bool(processes),
                dashboard_address=None, silence_logs=logging.ERROR, memory_limit=memory_limit,
            )
            self._client = Client(self._cluster)
        self._client.run(_worker_init)

    def map_unordered(self, fn, items, *args, max_in_flight=64, on_error=None, split=None):  # type: ignore[override]
        from distributed import as_completed

        it = iter(items)
        keyed: dict[str, Any] = {}
        ac = as_completed()
        for item in islice(it, max_in_flight):
            fut = self._client.submit(fn, item, *args, pure=False)
            keyed[fut.key] = item
            ac.add(fut)
        for fut in ac:
            item = keyed.pop(fut.key)
            try:
                res = fut.result()
            except Exception as err:  # noqa: BLE001 - a lost worker (KilledWorker), a killed process
                parts = split(item) if split is not None else None
                if parts is not None and len(parts) > 1:
                    fut.release()
                    for part in parts:  # each part on its own: only the guilty one is lost
                        f2 = self._client.submit(fn, part, *args, pure=False)
                        keyed[f2.key] = part
                        ac.add(f2)
                    continue
                if on_error is None:
                    raise
                res = on_error(item, err)
            fut.release()
            yield res
            nxt = next(it, None)
            if nxt is not None:
                f2 = self._client.submit(fn, nxt, *args, pure=False)
                keyed[f2.key] = nxt
                ac.add(f2)

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "n_workers": self.n_workers, "address": self.address or "LocalCluster"}

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(spec: str | Mapping[str, Any] | Executor | None = "serial") -> Executor:
    """An executor from a name or a dict ``{"name": "dask", "n_workers": 4, "address": ...}``."""
    if isinstance(spec, Executor):
        return spec
    cfg: dict[str, Any] = {"name": spec} if isinstance(spec, str) or spec is None else dict(spec)
    name = cfg.pop("name", None) or "serial"
    if cfg.get("address") and name == "serial":
        name = "dask"
    if name == "serial":
        cfg.pop("n_workers", None)
        if cfg:
            raise ConfigError(f"unknown executor key(s) {sorted(cfg)} for executor=serial")
        return SerialExecutor()
    allowed = {"process": {"n_workers", "mp_context"}, "dask": {"n_workers", "address", "threads_per_worker", "memory_limit", "processes"}}
    if name not in allowed:
        raise ConfigError(f"unknown executor {name!r}; use one of {EXECUTORS}")
    unknown = sorted(set(cfg) - allowed[name])
    if unknown:
        raise ConfigError(f"unknown executor key(s) {unknown} for executor={name}; valid: {sorted(allowed[name])}")
    return ProcessExecutor(**cfg) if name == "process" else DaskExecutor(**cfg)
