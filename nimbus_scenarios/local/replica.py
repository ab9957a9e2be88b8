"""One replica of the local fleet through its life: start, readiness, drain, stop, kill, death.

Its place: the `local` stage, under `fleet.Fleet` (which decides how many replicas there should
be) and over `launch` (which starts a consumer process) and `proxy.TcpProxy` (the Service). A
`Replica` plays a pod behind a readiness probe: its process starts, joins the proxy as a pending
backend, enters the rotation once `/ready` answers 200, and leaves it when it is scaled down
(drained: no new connections, open ones continue up to the drain timeout, then the process is
terminated), killed (SIGKILL) or dies on its own.

A replica reports to its fleet through `ReplicaHost`: events to record, count changes to
announce, and a death nobody asked for, after which the fleet decides on a replacement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol
from urllib.parse import urlsplit

import aiohttp

from nimbus_scenarios.local.launch import ConsumerProcess, start_consumer
from nimbus_scenarios.local.proxy import BackendStats, TcpProxy
from nimbus_scenarios.local.scrape import scrape
from nimbus_scenarios.local.series import MetricSample

__all__ = [
    "ACTIVE",
    "LIVE",
    "Replica",
    "ReplicaHost",
    "ReplicaInfo",
    "ReplicaSettings",
    "ReplicaState",
]

_log = logging.getLogger(__name__)

_PROBE_INTERVAL_S: Final = 0.2
_PROCESS_STOP_TIMEOUT_S: Final = 5.0


class ReplicaState(StrEnum):
    """Where one replica (consumer process) is in its life."""

    STARTING = "starting"
    """Created: the process is starting or `/ready` does not answer 200 yet."""
    READY = "ready"
    """In the proxy's rotation."""
    DRAINING = "draining"
    """Scaled down: out of rotation, open connections finishing, then terminated."""
    STOPPED = "stopped"
    """Terminated by a scale-down or by the fleet's stop."""
    KILLED = "killed"
    """SIGKILLed by `kill_pods`."""
    FAILED = "failed"
    """Exited on its own, or never started."""


ACTIVE: Final = frozenset({ReplicaState.STARTING, ReplicaState.READY})
"""Not terminating: what the Deployment's `status.replicas` counts."""
LIVE: Final = frozenset({ReplicaState.STARTING, ReplicaState.READY, ReplicaState.DRAINING})
"""Has (or will have) a process worth scraping and stopping."""

_END_EVENTS: Final = {
    ReplicaState.STOPPED: "replica_stopped",
    ReplicaState.KILLED: "replica_killed",
}


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One replica at one moment (ended replicas stay listed with their last counts)."""

    name: str
    state: ReplicaState
    url: str | None
    pid: int | None
    requests: int
    """POST /process requests the replica counted, as of its last scrape."""
    connections: int
    """Client connections the proxy gave it."""
    created_at: float
    ready_at: float | None
    ended_at: float | None
    started_at: float | None = None
    """When its process was running (announced its URL)."""
    deleting_at: float | None = None
    """When its end began: scale-down (drain), kill, the fleet's stop, or its death."""
    exit_code: int | None = None
    """The process's exit status once reaped, as a container's (128 + N for signal N)."""


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """How the fleet starts and retires its replicas."""

    ready_delay_s: float
    start_timeout_s: float
    drain_timeout_s: float
    cpu_scale: float


class ReplicaHost(Protocol):
    """What a replica needs from the fleet that runs it."""

    @property
    def closing(self) -> bool:
        """The fleet is stopping: a death is no longer a reason to replace anything."""
        ...

    @property
    def closed(self) -> bool:
        """The fleet has stopped: a process that starts now must be killed at once."""
        ...

    def now(self) -> float:
        """The fleet's clock (the event loop's)."""
        ...

    def record(self, kind: str, message: str, replica: str) -> None:
        """Record one replica transition as a fleet event."""
        ...

    def counts_changed(self) -> None:
        """Announce the fleet's counts if they changed."""
        ...

    def lost(self, *, replace_now: bool) -> None:
        """A replica ended without being asked: replace it now, or after a pause."""
        ...


class Replica:
    """The fleet's record of one replica and the tasks that carry it through its life."""

    def __init__(
        self,
        name: str,
        host: ReplicaHost,
        proxy: TcpProxy,
        session: aiohttp.ClientSession,
        settings: ReplicaSettings,
    ) -> None:
        self.name = name
        self.state = ReplicaState.STARTING
        self.created_at = host.now()
        self.ready_at: float | None = None
        self.ended_at: float | None = None
        self.started_at: float | None = None
        self.deleting_at: float | None = None
        self.requests = 0
        self.process: ConsumerProcess | None = None
        self.spawn: asyncio.Task[ConsumerProcess] | None = None
        self.exit_watch: asyncio.Task[int] | None = None
        self._host = host
        self._proxy = proxy
        self._session = session
        self._settings = settings
        self._life: asyncio.Task[None] | None = None
        self._retire: asyncio.Task[None] | None = None
        self._in_proxy = False

    # -- reading ------------------------------------------------------------------------------

    def spawned(self) -> ConsumerProcess | None:
        """The process, if the start finished successfully."""
        spawn = self.spawn
        if spawn is None or not spawn.done() or spawn.cancelled() or spawn.exception() is not None:
            return None
        return spawn.result()

    def info(self, stats: BackendStats | None) -> ReplicaInfo:
        """This replica now, with the proxy's counters for it."""
        process = self.process or self.spawned()
        return ReplicaInfo(
            self.name,
            self.state,
            None if process is None else process.url,
            None if process is None else process.process.pid,
            self.requests,
            0 if stats is None else stats.connections_total,
            self.created_at,
            self.ready_at,
            self.ended_at,
            self.started_at,
            self.deleting_at,
            None if process is None else _exit_status(process.process.returncode),
        )

    def tasks(self) -> list[asyncio.Task[None] | asyncio.Task[int]]:
        """Its running life, retirement and exit watch (the fleet cancels them on stop)."""
        return [task for task in (self._life, self._retire, self.exit_watch) if task is not None]

    async def scrape(self) -> MetricSample | None:
        """Scrape its `/metrics` once (None if it has no process or the scrape fails)."""
        process = self.process
        if process is None:
            return None
        sample = await scrape(self._session, process.url, self.name, self._host.now)
        if sample is not None:
            self.requests = int(sample.requests)
        return sample

    # -- start --------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the process and follow it until `/ready` answers 200."""
        loop = asyncio.get_running_loop()
        self.spawn = loop.create_task(
            start_consumer(
                ready_delay_s=self._settings.ready_delay_s,
                name=self.name,
                timeout_s=self._settings.start_timeout_s,
                cpu_scale=self._settings.cpu_scale,
            ),
            name=f"fleet-spawn-{self.name}",
        )
        self.spawn.add_done_callback(self._spawn_done)
        self._life = loop.create_task(self._follow(), name=f"fleet-life-{self.name}")
        self._host.record("replica_started", f"{self.name} starting", self.name)

    def _spawn_done(self, task: asyncio.Task[ConsumerProcess]) -> None:
        """Note when the process runs; a start that finished after the fleet stopped (its stop
        was cut short): kill the child."""
        if task.cancelled() or task.exception() is not None:
            return
        self.started_at = self._host.now()
        if not self._host.closed:
            return
        with contextlib.suppress(ProcessLookupError):
            task.result().process.kill()

    async def _follow(self) -> None:
        """Wait for the process, put it behind the proxy, probe `/ready` until it answers 200."""
        assert self.spawn is not None
        try:
            process = await asyncio.shield(self.spawn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.state in ACTIVE:
                self.end(ReplicaState.FAILED, f"did not start: {exc}")
                self._host.lost(replace_now=False)
            return
        self.process = process
        if self.state is not ReplicaState.STARTING:
            return  # retired while starting: the retirement stops the process
        parts = urlsplit(process.url)
        assert parts.hostname is not None
        assert parts.port is not None
        self._proxy.add_backend(self.name, parts.hostname, parts.port)
        self._in_proxy = True
        self.exit_watch = asyncio.get_running_loop().create_task(
            process.process.wait(), name=f"fleet-exit-{self.name}"
        )
        self.exit_watch.add_done_callback(lambda _task: self._exited())
        while self.state is ReplicaState.STARTING and process.process.returncode is None:
            if await self._probe_ready(process):
                if self.state is not ReplicaState.STARTING:
                    return
                self.state = ReplicaState.READY
                self.ready_at = self._host.now()
                self._proxy.set_ready(self.name)
                self._host.record("replica_ready", f"{self.name} ready at {process.url}", self.name)
                self._host.counts_changed()
                return
            await asyncio.sleep(_PROBE_INTERVAL_S)

    async def _probe_ready(self, process: ConsumerProcess) -> bool:
        try:
            async with self._session.get(f"{process.url}/ready") as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def _exited(self) -> None:
        """The process ended: if nobody asked for it, the replica failed and is replaced."""
        if self.state not in ACTIVE or self._host.closing:
            return
        process = self.process
        code = None if process is None else process.process.returncode
        if self._in_proxy:
            self._proxy.remove_backend(self.name)
        was_ready = self.state is ReplicaState.READY
        self.end(ReplicaState.FAILED, f"exited unexpectedly (code {code})")
        # A serving replica that died is replaced at once; one that died while starting after a
        # pause, so that a consumer that cannot start does not restart in a tight loop.
        self._host.lost(replace_now=was_ready)

    # -- end ----------------------------------------------------------------------------------

    def retire(self) -> None:
        """Scale-down of this replica: out of rotation now, then drain and terminate."""
        self.state = ReplicaState.DRAINING
        self.deleting_at = self._host.now()
        if self._in_proxy:
            self._proxy.start_draining(self.name)
        self._host.record("replica_draining", f"{self.name} draining (scale-down)", self.name)
        self._retire = asyncio.get_running_loop().create_task(
            self._drain_and_stop(), name=f"fleet-retire-{self.name}"
        )

    async def _drain_and_stop(self) -> None:
        if self._life is not None and not self._life.done():
            self._life.cancel()
        assert self.spawn is not None
        try:
            process = await asyncio.shield(self.spawn)
        except asyncio.CancelledError:
            raise
        except Exception:
            process = None
        if process is not None:
            if self._in_proxy:
                closed = await self._proxy.drain(self.name, self._settings.drain_timeout_s)
                if closed:
                    _log.info("%s: %d connection(s) cut after the drain timeout", self.name, closed)
            await self.scrape()  # its final request count
            await process.stop(_PROCESS_STOP_TIMEOUT_S)
        self.end(ReplicaState.STOPPED, "terminated after draining")

    def kill(self) -> None:
        """SIGKILL the process at once and take it out of the proxy (`kill_pods`)."""
        self._proxy.remove_backend(self.name)
        process = self.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.process.kill()
        self.end(ReplicaState.KILLED, "killed (SIGKILL) by kill_pods")

    async def stop_process(self) -> None:
        """Terminate the process if it started (the fleet's stop)."""
        process = self.spawned()
        if process is not None:
            await process.stop(_PROCESS_STOP_TIMEOUT_S)

    def kill_if_running(self) -> None:
        """SIGKILL the process if it still runs (the last resort when a stop was interrupted)."""
        process = self.spawned()
        if process is not None and process.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.process.kill()

    def end(self, state: ReplicaState, why: str) -> None:
        """Enter a final state, record it and announce the counts."""
        self.state = state
        self.ended_at = self._host.now()
        if self.deleting_at is None:
            self.deleting_at = self.ended_at
        kind = _END_EVENTS.get(state, "replica_failed")
        self._host.record(kind, f"{self.name} {why}", self.name)
        self._host.counts_changed()


def _exit_status(returncode: int | None) -> int | None:
    """A return code as a container's exit code: a signal N (negative here) is 128 + N."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode
