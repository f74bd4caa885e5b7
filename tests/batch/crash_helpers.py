"""A payload that kills the worker process that unpickles it (a real SIGKILL), for the
crashing-worker tests: the driver can pickle it, any worker that receives it dies."""

from __future__ import annotations

import os
import signal
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillOnArrival:
    """Pickles fine; unpickling it (in a pool worker) SIGKILLs that process."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_die, ())
