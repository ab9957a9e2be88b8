"""A local stand-in for the autoscaled consumer Deployment: processes, a proxy, an autoscaler.

Its place: the `local` stage. In the cluster, the consumer runs as a Deployment whose pods sit
behind a Service (kube-proxy balances per connection) and whose replica count a KEDA ScaledObject
drives through the HPA. For `run --local` and `make demo`, `Fleet` plays all of that on loopback:

- replicas are reference consumer child processes, each carried through its life by a
  `replica.Replica` (start, readiness, drain, stop, death), like pods behind a readiness probe;
- a `proxy.TcpProxy` in front is the Service: `Fleet.url` is what the load generator targets;
- every poll interval the fleet scrapes each replica's `/metrics` directly (as Prometheus does),
  feeds an `autoscaler.Autoscaler` (KEDA/HPA arithmetic) and applies its `Decision`: that is the
  `desired` count (the Deployment's `spec.replicas`);
- a reconcile step plays the ReplicaSet: it starts replicas while fewer than `desired` are
  starting or ready and retires the newest (not-ready first) while more are, so replicas that
  die or are killed (`kill_pods`, SIGKILL) are replaced.

This module is the control loop; `replica` is the lifecycle of one replica. Counts follow the
Deployment's status: `current` is replicas not terminating (starting or ready), `ready` those in
the proxy's rotation. `events` record every scale decision (with each trigger's value) and every
replica transition; `watch` tells a follower (`source.LocalReplicaSource`) of each decision
and event as it happens. `stop()` ends every child process, also when start-up fails or the
caller is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from nimbus_scenarios.local.autoscaler import Autoscaler, AutoscalerConfig, Decision
from nimbus_scenarios.local.errors import LocalFleetError
from nimbus_scenarios.local.proxy import Balance, TcpProxy
from nimbus_scenarios.local.replica import (
    ACTIVE,
    LIVE,
    Replica,
    ReplicaInfo,
    ReplicaSettings,
    ReplicaState,
)
from nimbus_scenarios.local.series import MetricSample

# ReplicaInfo and ReplicaState are re-exported: `replicas()` answers in them.
__all__ = [
    "Fleet",
    "FleetCounts",
    "FleetEvent",
    "ReplicaInfo",
    "ReplicaState",
]

_log = logging.getLogger(__name__)

_RETRY_AFTER_FAILURE_S: Final = 1.0
_KILL_REAP_TIMEOUT_S: Final = 5.0
_PROMETHEUS_SCRAPE_TIMEOUT_S: Final = 10.0  # Prometheus's default scrape_timeout


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """The fleet's replica counts at one moment (`at` on the event loop's clock)."""

    at: float
    ready: int
    desired: int
    current: int


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something that happened to the fleet: a scale decision or a replica transition.

    Kinds: `scale_up`, `scale_down` (with the `Decision`), `replica_started`, `replica_ready`,
    `replica_draining`, `replica_stopped`, `replica_killed`, `replica_failed`.
    """

    at: float
    kind: str
    message: str
    replica: str | None = None
    decision: Decision | None = None


class Fleet:
    """Reference consumer processes behind a per-connection proxy, scaled by KEDA/HPA arithmetic.

    `await start()` (or `async with`) starts `config.min_replicas` replicas and the proxy and
    returns once they are ready; `url` is then the proxy's URL. `cpu_scale` < 1 makes each
    consumer spin only that fraction of a request's `duration` (see `consumer.work.cpu_work`):
    1.0 is faithful; use less on a small machine, where a saturated consumer (its event loop
    starved by busy threads under the GIL) answers `/metrics` too late to be scraped, exactly as
    an overloaded pod would, and the fleet then cannot see the load. `scrape_timeout_s` defaults
    to Prometheus's 10 s, capped at the poll interval. `drain_timeout_s` bounds how long a
    scaled-down replica keeps its open connections before they are cut and it is terminated.
    """

    def __init__(
        self,
        config: AutoscalerConfig | None = None,
        *,
        port: int = 0,
        cpu_scale: float = 1.0,
        drain_timeout_s: float = 10.0,
        start_timeout_s: float = 30.0,
        scrape_timeout_s: float | None = None,
        balance: Balance = "round_robin",
        name: str = "consumer",
    ) -> None:
        if not 0.0 < cpu_scale <= 1.0:
            raise ValueError(f"cpu_scale must be in (0, 1], not {cpu_scale}")
        self.config = config if config is not None else AutoscalerConfig()
        self.cpu_scale = cpu_scale
        self.drain_timeout_s = drain_timeout_s
        self.start_timeout_s = start_timeout_s
        self.scrape_timeout_s = (
            min(_PROMETHEUS_SCRAPE_TIMEOUT_S, self.config.poll_interval_s)
            if scrape_timeout_s is None
            else scrape_timeout_s
        )
        self.name = name
        self._proxy = TcpProxy(port=port, balance=balance)
        self._autoscaler = Autoscaler(self.config)
        self._host = _Host(self)
        self._replicas: dict[str, Replica] = {}
        self._ids = itertools.count(1)
        self._desired = 0
        self._events: list[FleetEvent] = []
        self._decision: Decision | None = None
        self._listeners: list[Callable[[FleetCounts], None]] = []
        self._watchers: list[Callable[[], None]] = []
        self._last_counts: tuple[int, int, int] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    # -- public state -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's URL: what the load generator targets (once started)."""
        return self._proxy.url

    @property
    def started(self) -> bool:
        """Whether `start()` was called (the fleet may since have stopped)."""
        return self._started

    @property
    def desired(self) -> int:
        """The autoscaler's decision: the Deployment's `spec.replicas`."""
        return self._desired

    @property
    def ready(self) -> int:
        """Replicas in the proxy's rotation (`status.readyReplicas`)."""
        return self._count({ReplicaState.READY})

    @property
    def current(self) -> int:
        """Replicas starting or ready, i.e. not terminating (`status.replicas`)."""
        return self._count(ACTIVE)

    def _count(self, states: frozenset[ReplicaState] | set[ReplicaState]) -> int:
        return sum(1 for r in self._replicas.values() if r.state in states)

    def counts(self) -> FleetCounts:
        """`ready`, `desired` and `current` now."""
        return FleetCounts(self._now(), self.ready, self.desired, self.current)

    @property
    def events(self) -> list[FleetEvent]:
        """Scale decisions and replica transitions so far, in order."""
        return list(self._events)

    @property
    def last_decision(self) -> Decision | None:
        """The autoscaler's latest decision (taken every poll, changed or not)."""
        return self._decision

    @property
    def autoscaler_description(self) -> str:
        """What scales the fleet, for messages and results."""
        return f"local KEDA/HPA emulation: {self.config.describe()}"

    def replicas(self) -> list[ReplicaInfo]:
        """Every replica so far, ended ones included, oldest first."""
        stats = {s.name: s for s in self._proxy.backends()}
        return [r.info(stats.get(r.name)) for r in self._replicas.values()]

    def requests_by_replica(self) -> dict[str, int]:
        """POST /process requests each replica counted (as of its last scrape)."""
        return {r.name: r.requests for r in self._replicas.values()}

    def connections_by_replica(self) -> dict[str, int]:
        """Client connections the proxy gave each replica."""
        return {s.name: s.connections_total for s in self._proxy.backends()}

    def subscribe(self, listener: Callable[[FleetCounts], None]) -> Callable[[], None]:
        """Call `listener` whenever a count changes; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every autoscaler decision and every fleet event (read
        `last_decision` and `replicas()` then); returns the function that unsubscribes."""
        self._watchers.append(listener)

        def unwatch() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(listener)

        return unwatch

    async def wait_until(
        self, predicate: Callable[[Fleet], bool], timeout_s: float, interval_s: float = 0.05
    ) -> bool:
        """Wait until `predicate(self)` holds (True) or `timeout_s` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate(self):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(interval_s)
        return True

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        """Start the proxy and `min_replicas` replicas; return the URL once they are ready.

        Raises `LocalFleetError` if they are not ready within `start_timeout_s`.
        """
        if self._started:
            raise RuntimeError("a Fleet starts once; make a new one")
        self._started = True
        self._loop = asyncio.get_running_loop()
        try:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.scrape_timeout_s)
            )
            await self._proxy.start()
            self._desired = self.config.min_replicas
            self._reconcile()
            wanted = self.config.min_replicas
            if not await self.wait_until(lambda f: f.ready >= wanted, self.start_timeout_s):
                raise LocalFleetError(
                    f"the local fleet did not get {wanted} ready replica(s) within "
                    f"{self.start_timeout_s:g}s"
                )
            await self._scrape()  # the first samples: rates need two
            self._poller = self._loop.create_task(self._poll_loop(), name="fleet-autoscaler")
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def stop(self) -> None:
        """Stop autoscaling, terminate every replica process and the proxy (idempotent).

        The shutdown runs as its own task: if the caller is cancelled meanwhile, it goes on.
        """
        if not self._started:
            self._closed = True
            return
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(
                self._shutdown(), name="fleet-stop"
            )
        await asyncio.shield(self._stopping)

    async def _shutdown(self) -> None:
        self._closing = True
        try:
            if self._retry is not None:
                self._retry.cancel()
            tasks: list[asyncio.Future[Any]] = []
            if self._poller is not None:
                tasks.append(self._poller)
            for replica in self._replicas.values():
                tasks += replica.tasks()
            for future in tasks:
                future.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            spawns = [r.spawn for r in self._replicas.values() if r.spawn is not None]
            pending = [task for task in spawns if not task.done()]
            if pending:  # a start in progress: let it finish (it is bounded) to stop its process
                await asyncio.wait(pending, timeout=self.start_timeout_s + 1.0)
            stopping = []
            for replica in self._replicas.values():
                stopping.append(replica.stop_process())
                if replica.state in LIVE:
                    replica.end(ReplicaState.STOPPED, "stopped with the fleet")
            await asyncio.gather(*stopping, return_exceptions=True)
            await self._proxy.stop()
            if self._session is not None:
                await self._session.close()
        finally:
            self._closed = True
            for replica in self._replicas.values():
                replica.kill_if_running()
            self._notify()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the autoscaler loop ------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.poll_interval_s
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())
            try:
                await self.poll()
            except Exception:  # one bad poll must not end autoscaling
                _log.exception("local fleet: autoscaler poll failed")

    async def poll(self) -> Decision:
        """One autoscaler step now: scrape every replica, decide, apply (the loop calls this)."""
        await self._scrape()
        decision = self._autoscaler.decide(self._now(), self._desired)
        self._decision = decision
        if decision.desired != self._desired and not self._closing:
            kind = "scale_up" if decision.desired > self._desired else "scale_down"
            self._desired = decision.desired
            self._event(kind, decision.describe(), decision=decision)
            self._reconcile()
        else:
            self._tell_watchers()
        return decision

    async def _scrape(self) -> list[MetricSample]:
        live = [r for r in self._replicas.values() if r.state in LIVE and r.process is not None]
        results = await asyncio.gather(*(replica.scrape() for replica in live))
        samples = [sample for sample in results if sample is not None]
        self._autoscaler.observe_all(samples)
        return samples

    # -- the ReplicaSet -----------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Start or retire replicas until `desired` are starting or ready."""
        if self._closing:
            return
        active = [r for r in self._replicas.values() if r.state in ACTIVE]
        missing = self._desired - len(active)
        for _ in range(max(0, missing)):
            self._launch()
        if missing < 0:
            # As a ReplicaSet: not-ready replicas first, then the most recently ready.
            victims = sorted(
                active,
                key=lambda r: (
                    r.state is ReplicaState.READY,
                    -(r.ready_at or 0.0),
                    -r.created_at,
                ),
            )
            for replica in victims[:-missing]:
                replica.retire()
        self._notify()

    def _retry_later(self) -> None:
        """Reconcile again a little later (after a failed start: no tight restart loop)."""
        if self._closing or self._loop is None:
            return
        if self._retry is not None:
            self._retry.cancel()
        self._retry = self._loop.call_later(_RETRY_AFTER_FAILURE_S, self._reconcile)

    def _launch(self) -> None:
        if self._loop is None or self._session is None:
            raise RuntimeError("the fleet is not started")
        settings = ReplicaSettings(
            ready_delay_s=self.config.readiness_delay_s,
            start_timeout_s=self.start_timeout_s,
            drain_timeout_s=self.drain_timeout_s,
            cpu_scale=self.cpu_scale,
        )
        name = f"{self.name}-{next(self._ids)}"
        replica = Replica(name, self._host, self._proxy, self._session, settings)
        self._replicas[name] = replica
        replica.launch()

    async def kill_pods(self, count: int) -> list[str]:
        """SIGKILL `count` ready replicas (oldest first); replacements start at once."""
        if count < 0:
            raise ValueError(f"count must be >= 0, not {count}")
        if not self._started or self._closing:
            return []
        ready = sorted(
            (r for r in self._replicas.values() if r.state is ReplicaState.READY),
            key=lambda r: (r.ready_at or 0.0, r.created_at),
        )
        victims = ready[:count]
        for replica in victims:
            replica.kill()
        self._reconcile()
        watches = [r.exit_watch for r in victims if r.exit_watch is not None]
        if watches:  # return once the kills are real
            await asyncio.wait(watches, timeout=_KILL_REAP_TIMEOUT_S)
        return [r.name for r in victims]

    # -- events and counts --------------------------------------------------------------------

    def _event(
        self, kind: str, message: str, replica: str | None = None, decision: Decision | None = None
    ) -> None:
        event = FleetEvent(self._now(), kind, message, replica, decision)
        self._events.append(event)
        _log.info("local fleet: %s", message)
        self._tell_watchers()

    def _tell_watchers(self) -> None:
        for watcher in list(self._watchers):
            try:
                watcher()
            except Exception:
                _log.exception("local fleet: a watcher failed")

    def _notify(self) -> None:
        counts = (self.ready, self.desired, self.current)
        if counts == self._last_counts:
            return
        self._last_counts = counts
        snapshot = FleetCounts(self._now(), *counts)
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:
                _log.exception("local fleet: a count listener failed")

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0


class _Host:
    """The fleet as its replicas see it (`replica.ReplicaHost`), kept off `Fleet`'s interface."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    @property
    def closing(self) -> bool:
        return self._fleet._closing

    @property
    def closed(self) -> bool:
        return self._fleet._closed

    def now(self) -> float:
        return self._fleet._now()

    def record(self, kind: str, message: str, replica: str) -> None:
        self._fleet._event(kind, message, replica)

    def counts_changed(self) -> None:
        self._fleet._notify()

    def lost(self, *, replace_now: bool) -> None:
        if replace_now:
            self._fleet._reconcile()
        else:
            self._fleet._retry_later()
