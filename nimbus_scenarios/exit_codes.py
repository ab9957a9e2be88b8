"""Exit codes, as in the language page. Precedence when several apply: 2 if the scenario or the
command line is invalid, else 3 if aborted, else 1 if any expectation failed, else 4 if any could
not be judged, else 0."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What a `nimbus-scenarios` process exits with."""

    OK = 0
    FAILED = 1
    USAGE = 2
    ABORTED = 3
    INFRASTRUCTURE = 4
