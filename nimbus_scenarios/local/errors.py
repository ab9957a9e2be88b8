"""The local stage's own error: the local fleet, or one of its consumers, could not be started.

Its place: the `local` stage, under `nimbus_scenarios.errors.InfrastructureError` (exit 4): what
a `run --local` needs, a running consumer, is not there. Bad settings stay `ValueError`s at the
constructors, which `cli_run` turns into usage errors.
"""

from __future__ import annotations

from nimbus_scenarios.errors import InfrastructureError

__all__ = ["LocalFleetError"]


class LocalFleetError(InfrastructureError):
    """A reference consumer did not start, or the fleet did not get its replicas ready in time."""
