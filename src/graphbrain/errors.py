"""Exception types shared by every room.

Each error names the file (or subject) and the problem, so that a user can act on it.
"""

from __future__ import annotations


class GraphbrainError(Exception):
    """Base class of graphbrain's own errors."""


class DataError(GraphbrainError, ValueError):
    """Bad input data: unreadable file, wrong shape, NaN, constant ROI, too short ...

    ``source`` is the file (or subject id) the problem was found in and ``reason`` a
    short machine-friendly code (``"nan"``, ``"constant_roi"``, ``"too_short"`` ...).
    """

    def __init__(self, message: str, *, source: str | None = None, reason: str = "invalid") -> None:
        self.source = source
        self.reason = reason
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class ConfigError(GraphbrainError, ValueError):
    """An invalid configuration value or an unknown configuration key."""


class MissingDependencyError(GraphbrainError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}; install it with "
            f"`pip install 'graphbrain-connectome[{extra}]'`."
        )
