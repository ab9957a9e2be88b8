"""The wait for a common start that is not known when the process starts (`run --start-at-from`).

`submit` starts a sharded run's pods first and writes their common start only once every pod
runs, so no pod's image pull or scheduling makes it late. Each runner waits for it after its
pre-flight (so a target that does not answer, or a missing permission, is reported at once and
not after the wait) and before the `before` hypotheses (so they check the system just before the
load, not minutes before it): it reads a `StartSource` every `START_POLL_S` until it holds a
time, on the run's clock. The wait ends early on a stop (SIGTERM: the run is aborted, exit 3)
and gives up at `--start-wait` (an infrastructure failure, exit 4). A source that refuses access
(`ClusterForbidden`) ends it at once; any other error is retried until the deadline, and named
if the deadline passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from nimbus_scenarios.clock import parse_wall_time, within
from nimbus_scenarios.errors import ClusterForbidden, InfrastructureError, NimbusError
from nimbus_scenarios.runner.context import Interrupted, RunContext, unless

__all__ = ["START_POLL_S", "FileStart", "StartSource", "await_start"]

START_POLL_S = 1.0
"""How often the source is read while no start is written."""


class StartSource(Protocol):
    """Where the common start will be written (the ConfigMap's `data["start-at"]`)."""

    @property
    def description(self) -> str:
        """What it is, for messages: `configmap nimbusguard/run-abc`."""
        ...

    async def read(self) -> str | None:
        """The start as written (Unix seconds or ISO 8601), or None while nothing is.

        Raises `ClusterForbidden` when it may not be read (the wait ends at once), another
        `NimbusError` for a failure worth retrying (the API unreachable)."""
        ...

    def close(self) -> None:
        """Let go of what reading needed (a connection pool); called once the run is over."""
        ...


class FileStart:
    """A local file holding the start (`--start-at-from file/PATH`): shards on one machine."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        """`file PATH`."""
        return f"file {self.path}"

    async def read(self) -> str | None:
        """The file's text, None while it is missing or empty."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")[:200].strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InfrastructureError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return text or None

    def close(self) -> None:
        """Nothing to let go of: the file is opened per read."""


async def await_start(ctx: RunContext, source: StartSource, wait_s: float) -> str | None:
    """Wait for `source` to hold the common start and set `ctx.start_at`; None when it did (or
    the run was stopped meanwhile), else the infrastructure problem that ended the wait."""
    clock = ctx.clock
    deadline = clock.now() + wait_s
    last_error: str | None = None
    while True:
        text: str | None = None
        try:
            text = await unless(ctx.state.stop, within(clock, source.read(), deadline))
        except Interrupted:
            return None
        except TimeoutError:
            pass
        except ClusterForbidden as exc:
            return f"{source.description}: {exc}"
        except NimbusError as exc:
            last_error = str(exc)
        if text is not None:
            try:
                ctx.start_at = parse_wall_time(text)
            except ValueError as exc:
                return f"{source.description}: the common start is not a time: {exc}"
            return None
        if clock.now() >= deadline:
            why = f" (last error: {last_error})" if last_error else ""
            return f"no common start in {source.description} within --start-wait {wait_s:g}s{why}"
        if not await ctx.sleep_until(min(clock.now() + START_POLL_S, deadline)):
            return None
