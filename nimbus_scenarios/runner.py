"""The runner: the one place that owns a clock, the event loop and the side effects of a run.

pre-flight -> before -> phases -> pending windows -> after -> cleanup -> results. The load
engine, the replica source and the listeners come in through small seams; the runner strings
them together, handles signals and deadlines, and turns what happened into a results document.
A stopped run keeps every result it gathered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import signal
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nimbus_scenarios import __version__
from nimbus_scenarios.clock import LoopClock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher, compile_templates
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.pacer import Shard, run_open, shard_share
from nimbus_scenarios.engine.records import PhaseRecord, SecondRecord, StatsRecord
from nimbus_scenarios.engine.request import prepare
from nimbus_scenarios.engine.stats import PhaseStats, RunStats
from nimbus_scenarios.engine.transport import LoadTransport, make_transport
from nimbus_scenarios.engine.users import run_users
from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.expectations import (
    Judgement,
    Point,
    Verdict,
    judge_load,
    judge_replicas,
    replica_value,
)
from nimbus_scenarios.judge.guards import check_guards
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan, Plan
from nimbus_scenarios.replicas import ReplicaSample, ReplicaSource
from nimbus_scenarios.results import SCHEMA_VERSION
from nimbus_scenarios.secrets import MASK as SECRET

if TYPE_CHECKING:
    from nimbus_scenarios.telemetry import Telemetry

_T = TypeVar("_T")

__all__ = [
    "RunOptions",
    "RunOutcome",
    "counts_doc",
    "default_results_path",
    "exit_code_for",
    "judgement_doc",
    "run_scenario",
    "stats_doc",
]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a plan (from the command line)."""

    url: str
    transport: str = "aiohttp"
    consumer_cleanup: bool = False
    grace_s: float = 10.0
    max_duration_s: float | None = None
    guard_interval_s: float = 1.0
    progress_interval_s: float | None = None
    shard: Shard = (0, 1)
    """(index, count): this process sends its exact share; shard 0 alone judges replicas."""
    start_at: float | None = None
    """Wall-clock (Unix) time of run offset 0, shared by the shards of one run."""
    preflight_timeout_s: float = 5.0
    install_signal_handlers: bool = True
    target_shown: str | None = None
    """How the target appears in results and messages (`***` for one read from `env(...)`);
    None: the URL itself."""


@dataclass
class RunOutcome:
    """What a run produced: its results document and exit code."""

    document: dict[str, Any]
    exit_code: int


@dataclass
class _State:
    abort_reason: str | None = None
    abort_at_s: float | None = None
    abort_stage: str | None = None
    signals: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    force: asyncio.Event = field(default_factory=asyncio.Event)
    stage: str = "preflight"
    phases_run: dict[str, tuple[float, float]] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    decided: dict[int, Judgement] = field(default_factory=dict)
    cleanup: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def exit_code_for(*, aborted: bool, judgements: Sequence[Judgement], infrastructure: bool) -> int:
    """The exit code by the language page's precedence (usage errors never get this far)."""
    if aborted:
        return ExitCode.ABORTED
    if any(j.verdict is Verdict.FAILED for j in judgements):
        return ExitCode.FAILED
    if infrastructure or any(j.verdict is Verdict.NOT_JUDGED for j in judgements):
        return ExitCode.INFRASTRUCTURE
    return ExitCode.OK


class _Runner:
    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        source: ReplicaSource | None,
        handlers: Sequence[RunHandler],
        scenario_text: str,
        environ: Mapping[str, str] | None,
        transport: LoadTransport | None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.telemetry = telemetry
        self.source = source
        self.handlers = ([telemetry.handler] if telemetry is not None else []) + list(handlers)
        self.scenario_text = scenario_text
        self.environ = environ
        self.transport = transport
        self.run_id = (telemetry.run_id if telemetry is not None else None) or uuid.uuid4().hex[:12]
        self.state = _State()
        self.loop = asyncio.get_running_loop()
        self.clock = LoopClock(self.loop)
        self.origin = self.loop.time()
        self.started = dt.datetime.now(dt.UTC)
        self.stats = RunStats(self.origin)
        self.background: set[asyncio.Task[None]] = set()
        self.dispatcher: Dispatcher | None = None
        self.templates: dict[str, CompiledTemplate] = {}

    @property
    def shown_url(self) -> str:
        """The target as results and messages may show it."""
        return self.options.target_shown or self.options.url

    @property
    def primary(self) -> bool:
        """Shard 0 (or an unsharded run): the one that judges replicas, kills and cleans up."""
        return self.options.shard[0] == 0

    # ------------------------------------------------------------ events
    def emit(self, name: str, *args: Any) -> None:
        for handler in self.handlers:
            try:
                getattr(handler, name)(*args)
            except Exception as exc:
                self.state.notes.append(f"listener {type(handler).__name__}.{name} failed: {exc}")

    def now_s(self) -> float:
        return self.loop.time() - self.origin

    def request_stop(self, reason: str) -> None:
        if self.state.abort_reason is None:
            self.state.abort_reason = reason
            self.state.abort_at_s = self.now_s()
            self.state.abort_stage = self.state.stage
            self.emit("aborted", reason, self.state.abort_at_s)
        self.state.stop.set()

    async def wait_until(self, deadline: float) -> bool:
        """Sleep until loop time `deadline`; False if the run was stopped first."""
        delay = deadline - self.loop.time()
        if self.state.stop.is_set():
            return False
        if delay <= 0:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.state.stop.wait(), delay)
            return False
        return True

    # ------------------------------------------------------------ the run
    async def run(self) -> RunOutcome:
        infrastructure: str | None = None
        self._install_signals()
        try:
            self.templates = compile_templates(self.plan.templates, self.options.url, self.environ)
            if self.transport is None:
                self.transport = make_transport(
                    self.options.transport,
                    timeout_s=self.plan.settings.timeout_s,
                    connection_max_age_s=self.plan.settings.connection_max_age_s,
                    max_connections=self.plan.settings.max_inflight,
                )
            observer = self.telemetry.observer if self.telemetry is not None else None
            self.dispatcher = Dispatcher(
                self.transport,
                clock=self.clock,
                max_inflight=self.plan.settings.max_inflight,
                observers=(observer,) if observer is not None else (),
                headers_for=self.telemetry.headers_for if self.telemetry is not None else None,
            )
            infrastructure = await self.preflight()
            if infrastructure is None:
                self.emit("run_started", self.plan, self.run_id)
                deadline_task = self._start_deadline()
                progress_task = self._start_progress()
                replica_task = self._start_replica_events()
                before_ok = not self.primary or await self.stage_expectations(
                    "before", self.plan.before
                )
                if before_ok and not self.state.stop.is_set():
                    await self.phases()
                    await self.pending_windows()
                await self.drain()
                if before_ok and not self.state.stop.is_set() and self.primary:
                    await self.stage_expectations("after", self.plan.after)
                for task in (deadline_task, progress_task, replica_task):
                    if task is not None:
                        task.cancel()
            if self.primary:
                await self.cleanup()
        finally:
            self._remove_signals()
            if self.source is not None:
                with contextlib.suppress(Exception):
                    await self.source.stop()
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    await self.transport.aclose()
        return self.finish(infrastructure)

    def _install_signals(self) -> None:
        if not self.options.install_signal_handlers:
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        if not self.options.install_signal_handlers:
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self.state.signals += 1
        if self.state.signals == 1:
            self.request_stop(f"{sig.name} received")
        else:
            # A second signal: stop waiting for in-flight requests and cleanup; still write results.
            self.state.force.set()

    def _start_deadline(self) -> asyncio.Task[None] | None:
        limit = self.options.max_duration_s
        if limit is None:
            return None

        async def deadline() -> None:
            if await self.wait_until(self.loop.time() + limit):
                self.request_stop(f"--max-duration of {limit:g}s reached")

        return self.loop.create_task(deadline())

    def _start_replica_events(self) -> asyncio.Task[None] | None:
        """Tell listeners about every replica sample the source records (telemetry, monitor)."""
        source = self.source
        if source is None:
            return None

        async def watch() -> None:
            seen = 0
            while True:
                samples = source.samples
                for sample in samples[seen:]:
                    self.emit("replica_sample", sample, sample.at - self.origin)
                seen = len(samples)
                await asyncio.sleep(0.25)

        return self.loop.create_task(watch())

    def _start_progress(self) -> asyncio.Task[None] | None:
        interval = self.options.progress_interval_s
        if interval is None:
            return None

        async def progress() -> None:
            while True:
                await asyncio.sleep(interval)
                self.emit("progress", self.status())

        return self.loop.create_task(progress())

    def status(self) -> dict[str, Any]:
        """Live progress for `--monitor`: cheap to compute, plain data."""
        now = self.now_s()
        phase = (
            next((p for p in self.plan.phases if p.start_s <= now < p.end_s), None)
            if self.state.stage == "phases"
            else None
        )
        series = self.stats.series
        last = int(now) - 1
        sent_last = series.sent[last] if 0 <= last < len(series.sent) else 0
        snapshot = self.stats.snapshot(self.loop.time())
        done = snapshot.succeeded + snapshot.failed
        latest = self.source.samples[-1] if self.source and self.source.samples else None
        return {
            "stage": self.state.stage,
            "phase": phase.name if phase else None,
            "elapsed_s": now,
            "remaining_s": max(self.plan.duration_s - now, 0.0),
            "target_rate": phase.rate_at(now) if phase else 0.0,
            "achieved_rate": float(sent_last),
            "in_flight": self.dispatcher.in_flight if self.dispatcher else 0,
            "p95_ms": snapshot.recent_p95_ms,
            "sent": snapshot.sent,
            "dropped": snapshot.dropped,
            "errors_pct": 100.0 * snapshot.failed / done if done else 0.0,
            "ready": latest.ready if latest else None,
            "desired": latest.desired if latest else None,
            "expectations": self.expectation_states(),
        }

    def expectation_states(self) -> list[tuple[str, str]]:
        """(text, state) of replica windows so far: passed, failed, open or waiting."""
        states = []
        now = self.now_s()
        for e in self._replica_expectations():
            if e.start_s is not None and e.start_s > now:
                states.append((e.text, "waiting"))
                continue
            verdict = self.judge_replica(e, seen_until=now).verdict
            closed = e.end_s is not None and e.end_s <= now
            states.append((e.text, str(verdict) if closed or verdict is Verdict.PASSED else "open"))
        return states

    async def preflight(self) -> str | None:
        """None if the target answers and the replica source starts; else what is wrong."""
        self.state.stage = "preflight"
        assert self.transport is not None
        request = prepare("GET", self.options.url, "/")
        try:
            outcome = await asyncio.wait_for(
                self.transport.send(request), self.options.preflight_timeout_s
            )
        except TimeoutError:
            wait = self.options.preflight_timeout_s
            return f"target {self.shown_url} does not answer (no response in {wait:g}s)"
        if outcome.status is None:
            return f"target {self.shown_url} does not answer ({outcome.error} error)"
        if self.source is not None:
            try:
                await self.source.start()
            except Exception as exc:
                return f"replica source {self.source.description}: {exc}"
        return None

    # ------------------------------------------------------------ stages
    async def stage_expectations(self, stage: str, items: Sequence[ExpectationPlan]) -> bool:
        """Check `before`/`after` expectations; False if any failed."""
        if not items:
            return True
        self.state.stage = stage
        self.emit("stage_started", stage)
        results = await asyncio.gather(*(self.hypothesis(e) for e in items))
        for e, judgement in zip(items, results, strict=True):
            self.decide(e, judgement)
        return all(j.verdict is not Verdict.FAILED for j in results)

    async def hypothesis(self, e: ExpectationPlan) -> Judgement:
        started = self.loop.time()
        window = e.window_s or 0.0
        if e.kind == "succeeds":
            template = self.templates[e.request or ""]
            assert self.transport is not None
            attempts = 0
            last = ""
            while True:
                # A stop abandons the probe in flight: the hypothesis is not judged either way.
                try:
                    outcome = await _unless(self.state.stop, self.transport.send(template.request))
                except _Interrupted:
                    return _stopped(e, f"after {_plural(attempts, 'attempt')}", last)
                attempts += 1
                if template.succeeded(outcome):
                    return Judgement(
                        e,
                        Verdict.PASSED,
                        1.0,
                        self.loop.time() - started,
                        f"succeeded after {_plural(attempts, 'attempt')}",
                    )
                last = str(outcome.status) if outcome.status is not None else str(outcome.error)
                # Retry every second, and once more at the window's end.
                left = started + window - self.loop.time()
                if left <= 0:
                    return Judgement(
                        e, Verdict.FAILED, 0.0, None, f"{attempts} attempts, last: {last}"
                    )
                if not await self.wait_until(self.loop.time() + min(1.0, left)):
                    return _stopped(e, f"after {_plural(attempts, 'attempt')}", last)
        # replicas within D, relative to the stage start
        if self.source is None:
            return Judgement(e, Verdict.NOT_JUDGED, detail=_NO_SOURCE)
        comparator = Comparator(e.comparator)
        while True:
            latest = self.source.samples[-1] if self.source.samples else None
            if self.source.lost_at is not None:
                return Judgement(e, Verdict.NOT_JUDGED, detail="the replica source was lost")
            if latest is not None:
                value = replica_value(e, _point(latest, self.origin))
                if comparator.holds(value, e.value):
                    return Judgement(
                        e, Verdict.PASSED, value, self.loop.time() - started, f"{value} replicas"
                    )
            observed = None if latest is None else replica_value(e, _point(latest, self.origin))
            if self.loop.time() - started >= window:
                return Judgement(e, Verdict.FAILED, observed, None, "never held in the window")
            if not await self.wait_until(min(self.loop.time() + 0.25, started + window)):
                last = "" if observed is None else f"{observed} replicas"
                return _stopped(e, "before the window closed", last)

    async def phases(self) -> None:
        self.state.stage = "phases"
        self.emit("stage_started", "phases")
        self.origin = self.loop.time()
        if self.options.start_at is not None:
            late = time.time() - self.options.start_at
            self.origin -= late
            if late > 0:
                self.state.notes.append(
                    f"started {late:.1f}s after --start-at; arrivals already due were sent at once"
                )
            elif not await self.wait_until(self.origin):
                return
        self.stats = RunStats(self.origin)
        guard_task = self.loop.create_task(self.guard_loop())
        try:
            for phase in self.plan.phases:
                if not await self.wait_until(self.origin + phase.start_s):
                    break
                await self.run_phase(phase)
                if self.state.stop.is_set():
                    break
        finally:
            guard_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard_task

    async def run_phase(self, phase: PhasePlan) -> None:
        assert self.dispatcher is not None
        stats = self.stats.phase(phase.name)
        started = self.now_s()
        self.emit("phase_started", phase, started)
        tasks: list[asyncio.Task[Any]] = []
        if phase.mix:
            mix = [self.templates[name] for name, _ in phase.mix]
            if phase.open_model:
                tasks.append(
                    self.loop.create_task(
                        run_open(
                            phase,
                            mix,
                            self.dispatcher,
                            stats,
                            self.origin,
                            clock=self.clock,
                            shard=self.options.shard,
                        )
                    )
                )
            else:
                tasks.append(
                    self.loop.create_task(
                        run_users(
                            phase,
                            mix,
                            self.dispatcher,
                            stats,
                            self.origin,
                            self.background,
                            clock=self.clock,
                            shard=self.options.shard,
                        )
                    )
                )
        for kill in phase.kills if self.primary else ():
            tasks.append(self.loop.create_task(self.kill(kill.at_s, kill.count, phase.name)))
        finished = await self.wait_until(self.origin + phase.end_s)
        for task in tasks:
            if not finished or not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ended = self.now_s()
        self.state.phases_run[phase.name] = (started, ended)
        self.emit("phase_ended", phase, ended)

    async def kill(self, at_s: float, count: int, phase: str) -> None:
        if not await self.wait_until(self.origin + at_s):
            return
        record: dict[str, Any] = {"phase": phase, "at_s": round(self.now_s(), 3), "count": count}
        if self.source is None:
            record["error"] = _NO_SOURCE
        else:
            try:
                record["pods"] = await self.source.kill_pods(count)
                self.emit("pods_killed", record["pods"], record["at_s"])
            except Exception as exc:
                record["error"] = str(exc)
        self.state.kills.append(record)

    async def guard_loop(self) -> None:
        interval = self.options.guard_interval_s
        while not self.state.stop.is_set():
            await asyncio.sleep(interval)
            ready = None
            if self.source is not None and self.source.samples:
                ready = self.source.samples[-1].ready
            fired = check_guards(self.plan.guards, self.stats.series, self.now_s(), ready)
            if fired is not None:
                self.request_stop(f"guard `{fired.guard.text}` fired: {fired.detail}")

    async def pending_windows(self) -> None:
        """Wait, without load, for replica windows that run past the last phase."""
        if self.state.stop.is_set() or self.source is None:
            return
        windows = self._replica_expectations()
        end = max((e.end_s for e in windows if e.end_s is not None), default=0.0)
        if end <= self.now_s():
            return
        self.state.stage = "pending"
        self.emit("stage_started", "pending")
        guard_task = self.loop.create_task(self.guard_loop())
        try:
            while self.now_s() < end:
                open_windows = [
                    e
                    for e in windows
                    if e.end_s is not None
                    and e.end_s > self.now_s()
                    and self.judge_replica(e, seen_until=self.now_s()).verdict is not Verdict.PASSED
                ]
                if not open_windows or self.source.lost_at is not None:
                    break
                if not await self.wait_until(self.loop.time() + 0.5):
                    break
        finally:
            guard_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard_task

    async def drain(self) -> None:
        assert self.dispatcher is not None
        grace = (
            self.options.grace_s if self.state.stop.is_set() else self.plan.settings.timeout_s + 1
        )
        # Closed-model users start no request from here on; the requests they have in flight
        # are the dispatcher's, and are drained with the open-model ones.
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        drain = self.loop.create_task(self.dispatcher.drain(grace))
        force = self.loop.create_task(self.state.force.wait())
        await asyncio.wait({drain, force}, return_when=asyncio.FIRST_COMPLETED)
        force.cancel()
        if not drain.done():
            drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        # After a forced exit, abandon what is still in flight now (counted as failed) rather
        # than leaving it half counted in the results.
        await self.dispatcher.drain(0.0)

    async def cleanup(self) -> None:
        steps: list[tuple[str, Any]] = []
        for step in self.plan.cleanup:
            if step.template is not None and step.template in self.templates:
                steps.append((step.template, self.templates[step.template].request))
            elif step.method is not None and step.path is not None:
                steps.append(
                    (
                        f"{step.method} {step.path}",
                        prepare(step.method, self.options.url, step.path),
                    )
                )
        if self.options.consumer_cleanup and not any(
            request.method == "DELETE" and request.url.endswith("/process/cleanup")
            for _, request in steps
        ):
            steps.append(
                ("DELETE /process/cleanup", prepare("DELETE", self.options.url, "/process/cleanup"))
            )
        if not steps or self.transport is None:
            return
        self.state.stage = "cleanup"
        self.emit("stage_started", "cleanup")
        for name, request in steps:
            if self.state.force.is_set():
                self.state.cleanup.append({"request": name, "error": "skipped (forced exit)"})
                continue
            try:
                limit = self.plan.settings.timeout_s + 1
                sending = asyncio.wait_for(self.transport.send(request), limit)
                outcome = await _unless(self.state.force, sending)
                self.state.cleanup.append(
                    {
                        "request": name,
                        "status": outcome.status,
                        "error": None if outcome.error is None else str(outcome.error),
                    }
                )
            except TimeoutError:
                self.state.cleanup.append({"request": name, "error": "timeout"})
            except _Interrupted:
                self.state.cleanup.append({"request": name, "error": "abandoned (forced exit)"})

    # ------------------------------------------------------------ judging
    def decide(self, e: ExpectationPlan, judgement: Judgement) -> None:
        self.state.decided[id(e)] = judgement
        self.emit("expectation_decided", judgement, judgement.met_at_s)

    def _replica_expectations(self) -> list[ExpectationPlan]:
        found = [e for p in self.plan.phases for e in p.expectations if e.kind == "replicas"]
        return found + [e for e in self.plan.expectations if e.kind == "replicas"]

    def points(self) -> list[Point]:
        if self.source is None:
            return []
        return [_point(s, self.origin) for s in self.source.samples]

    def judge_replica(self, e: ExpectationPlan, *, seen_until: float) -> Judgement:
        if self.source is None:
            return Judgement(e, Verdict.NOT_JUDGED, detail=_NO_SOURCE)
        if e.scope != "scenario" and e.scope not in self.state.phases_run:
            return Judgement(e, Verdict.NOT_JUDGED, detail="the phase did not run")
        start = e.start_s or 0.0
        end = e.end_s if e.end_s is not None else self.plan.phases_end_s
        if e.window in {"throughout", "at end"} and e.scope in self.state.phases_run:
            ran = self.state.phases_run[e.scope]
            if ran[1] + 1e-6 < end and self.state.abort_reason is not None:
                end = ran[1]
                return Judgement(
                    e, Verdict.NOT_JUDGED, detail="the run stopped before the phase end"
                )
        lost = self.source.lost_at
        seen = seen_until if lost is None else min(seen_until, lost - self.origin)
        judgement = judge_replicas(e, self.points(), start_s=start, end_s=end, seen_until_s=seen)
        if (
            judgement.verdict is Verdict.NOT_JUDGED
            and lost is None
            and seen < end
            and self.state.abort_reason is not None
        ):
            detail = f"the run was stopped at +{max(seen, 0.0):.0f}s, before the window closed"
            return dataclasses.replace(judgement, detail=detail)
        return judgement

    def judge_all(self) -> list[Judgement]:
        """Every verdict, in plan order. A shard other than 0 judges only its own load:
        replica windows and the `before`/`after` hypotheses are shard 0's."""
        primary = self.primary
        judgements: list[Judgement] = []
        if primary:
            for e in self.plan.before:
                judgements.append(self.state.decided.get(id(e)) or _not_run(e, "before"))
        seen_until = self.now_s()
        for phase in self.plan.phases:
            stats = self.stats.phases.get(phase.name)
            for e in phase.expectations:
                if e.kind == "replicas":
                    if primary:
                        judgements.append(self.judge_replica(e, seen_until=seen_until))
                elif stats is None:
                    judgements.append(_not_run(e, "phase"))
                else:
                    judgements.append(judge_load(e, stats, scheduled=self._planned(phase, stats)))
        total = self.stats.total()
        planned_total = sum(
            self._planned(p, self.stats.phases[p.name]) or self.stats.phases[p.name].scheduled
            for p in self.plan.phases
            if p.name in self.stats.phases
        )
        for e in self.plan.expectations:
            if e.kind == "replicas":
                if primary:
                    judgements.append(self.judge_replica(e, seen_until=seen_until))
            elif not self.stats.phases:
                judgements.append(_not_run(e, "run"))
            else:
                judgements.append(judge_load(e, total, scheduled=planned_total))
        if primary:
            for e in self.plan.after:
                judgements.append(self.state.decided.get(id(e)) or _not_run(e, "after"))
        return judgements

    def _planned(self, phase: PhasePlan, stats: PhaseStats) -> int | None:
        """This shard's share of what the plan scheduled for the part of the phase that ran."""
        if phase.scheduled_total is None:
            return None
        ran = self.state.phases_run.get(phase.name)
        if ran is None or ran[1] + 1e-6 >= phase.end_s or self.state.abort_reason is None:
            return shard_share(phase.scheduled_total, self.options.shard)
        return stats.scheduled  # stopped early: judge against what was due before the stop

    # ------------------------------------------------------------ results
    def finish(self, infrastructure: str | None) -> RunOutcome:
        judgements = [] if infrastructure else self.judge_all()
        lost = self.source is not None and self.source.lost_at is not None
        aborted = self.state.abort_reason is not None
        code: int
        if infrastructure:
            code = ExitCode.INFRASTRUCTURE
        else:
            code = exit_code_for(aborted=aborted, judgements=judgements, infrastructure=lost)
        verdicts: dict[int, str] = {
            ExitCode.OK: "passed",
            ExitCode.FAILED: "failed",
            ExitCode.ABORTED: "aborted",
        }
        verdict = verdicts.get(code, "error")
        document = self.document(judgements, code, verdict, infrastructure)
        self.emit("run_ended", document)
        return RunOutcome(document, code)

    def document(
        self, judgements: list[Judgement], code: int, verdict: str, infrastructure: str | None
    ) -> dict[str, Any]:
        ended = dt.datetime.now(dt.UTC)
        lateness = self.dispatcher.lateness if self.dispatcher else None
        stats = self.stats.freeze()
        secrets = _secret_values(self.plan)
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "scenario": self.plan.scenario,
            "verdict": verdict,
            "exit_code": code,
            "trace_id": self.telemetry.trace_id if self.telemetry is not None else None,
            "error": infrastructure,
            "abort": (
                {
                    "reason": self.state.abort_reason,
                    "at_s": _round(self.state.abort_at_s),
                    "stage": self.state.abort_stage,
                }
                if self.state.abort_reason
                else None
            ),
            "tool_version": __version__,
            "shard": {"index": self.options.shard[0], "count": self.options.shard[1]},
            "scenario_hash": hashlib.sha256(self.scenario_text.encode("utf-8")).hexdigest(),
            "scenario_source": _masked(self.scenario_text, secrets),
            "params": {name: _masked(value, secrets) for name, value in self.plan.params.items()},
            "target": self.shown_url,
            "started_at": self.started.isoformat(),
            "ended_at": ended.isoformat(),
            "duration_s": round((ended - self.started).total_seconds(), 3),
            "stage_reached": self.state.stage,
            "phases": [self.phase_doc(p) for p in self.plan.phases],
            "expectations": [judgement_doc(j) for j in judgements],
            "replicas": [[_round(p.t_s), p.ready, p.desired] for p in self.points()],
            "replica_source": self._source_doc(),
            "kills": self.state.kills,
            "cleanup": self.state.cleanup,
            "totals": counts_doc(self.stats.total()),
            "send_lateness_ms": _summary_doc(lateness) if lateness is not None else None,
            "seconds": _seconds_doc(stats.seconds),
            "stats": stats_doc(stats),
            "notes": self.state.notes,
        }

    def phase_doc(self, phase: PhasePlan) -> dict[str, Any]:
        stats = self.stats.phases.get(phase.name)
        ran = self.state.phases_run.get(phase.name)
        target = (
            shard_share(phase.scheduled_total, self.options.shard) / phase.duration_s
            if phase.scheduled_total is not None and phase.duration_s > 0
            else None
        )
        elapsed = (ran[1] - ran[0]) if ran else 0.0
        doc: dict[str, Any] = {
            "name": phase.name,
            "start_s": _round(phase.start_s),
            "end_s": _round(phase.end_s),
            "shape": phase.shape_text,
            "ran": ran is not None,
            "ran_s": [_round(ran[0]), _round(ran[1])] if ran else None,
            "target_rate": _round(target),
            "achieved_rate": _round(stats.sent / elapsed) if stats and elapsed > 0 else None,
            "planned": (
                shard_share(phase.scheduled_total, self.options.shard)
                if phase.scheduled_total is not None
                else None
            ),
        }
        if stats is None:
            doc.update(
                dict.fromkeys(
                    ("scheduled", "sent", "dropped", "succeeded", "failed", "timed_out"), 0
                )
            )
            doc["latency_ms"] = None
            doc["service_ms"] = None
            return doc
        doc.update(counts_doc(stats))
        return doc

    def _source_doc(self) -> dict[str, Any] | None:
        if self.source is None:
            return None
        lost = self.source.lost_at
        return {
            "description": self.source.description,
            "autoscaler": self.source.autoscaler,
            "lost_at_s": None if lost is None else _round(lost - self.origin),
            "samples": [
                {
                    "t_s": _round(s.at - self.origin),
                    "ready": s.ready,
                    "desired": s.desired,
                    "current": s.current,
                    "autoscaler": s.autoscaler,
                }
                for s in self.source.samples
            ],
        }


_NO_SOURCE = "no replica source: run in the cluster (watch) or with --local"


def _secret_values(plan: Plan) -> list[str]:
    """Literal values of credential headers (`Authorization`, ...), longest first."""
    pairs = [*plan.settings.headers]
    for template in plan.templates.values():
        pairs.extend(template.headers)
    values = {text.value for _, text in pairs if text.secret and text.env is None and text.value}
    return sorted(values, key=len, reverse=True)


def _masked(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret value (as written, or escaped in a string literal) masked."""
    for value in secrets:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace(escaped, SECRET).replace(value, SECRET)
    return text


def _point(sample: ReplicaSample, origin: float) -> Point:
    return Point(sample.at - origin, sample.ready, sample.desired)


def _not_run(e: ExpectationPlan, what: str) -> Judgement:
    return Judgement(e, Verdict.NOT_JUDGED, detail=f"the {what} did not run")


def _stopped(e: ExpectationPlan, when: str, last: str) -> Judgement:
    """A `before`/`after` expectation the run was stopped in the middle of: not judged."""
    seen = f"; last: {last}" if last else ""
    return Judgement(e, Verdict.NOT_JUDGED, detail=f"the run was stopped {when}{seen}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Interrupted(Exception):
    """The event some work was raced against (`_unless`) was set first."""


async def _unless(event: asyncio.Event, work: Coroutine[Any, Any, _T]) -> _T:
    """The result of `work`, unless `event` is set first: then `work` is cancelled and
    `_Interrupted` raised. Exceptions of `work` propagate."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        waiter.cancel()
        raise
    waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise _Interrupted


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def counts_doc(stats: PhaseStats) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(stats.counts())
    data["errors_by_kind"] = stats.errors_by_kind
    data["status_counts"] = {str(k): v for k, v in sorted(stats.status_counts.items())}
    data["latency_ms"] = _summary_doc(stats.latency)
    data["service_ms"] = _summary_doc(stats.service_time)
    return data


# The results document's JSON shape of the engine's records, until the typed results replace it.


def _summary_doc(histogram: LatencyHistogram) -> dict[str, float] | None:
    return dataclasses.asdict(histogram.summary()) if histogram.total_count else None


def _phase_stats_doc(record: PhaseRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "counts": dataclasses.asdict(record.counts),
        "errors_by_kind": dict(record.errors_by_kind),
        "status_counts": {str(k): n for k, n in record.status_counts.items()},
        "latency_ms": dataclasses.asdict(record.latency_ms),
        "service_time_ms": dataclasses.asdict(record.service_time_ms),
        "histograms": dataclasses.asdict(record.histograms),
        "requests": [
            {
                "name": r.name,
                "counts": dataclasses.asdict(r.counts),
                "errors_by_kind": dict(r.errors_by_kind),
                "status_counts": {str(k): n for k, n in r.status_counts.items()},
            }
            for r in record.requests
        ],
    }


def _seconds_doc(seconds: Sequence[SecondRecord]) -> list[dict[str, Any]]:
    return [
        {
            "second": s.second,
            "scheduled": s.scheduled,
            "sent": s.sent,
            "dropped": s.dropped,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "latency_ms": None if s.latency_ms is None else dataclasses.asdict(s.latency_ms),
            "histogram": s.histogram,
        }
        for s in seconds
    ]


def stats_doc(record: StatsRecord) -> dict[str, Any]:
    """The results' `stats` section (also read back by `merge`)."""
    return {
        "format": record.format,
        "latency_unit": record.latency_unit,
        "phases": [_phase_stats_doc(p) for p in record.phases],
        "total": _phase_stats_doc(record.total),
        "seconds": _seconds_doc(record.seconds),
    }


def judgement_doc(j: Judgement) -> dict[str, Any]:
    e = j.expectation
    return {
        "text": e.text,
        "scope": e.scope,
        "kind": e.kind,
        "verdict": str(j.verdict),
        "observed": None if j.observed is None else round(j.observed, 6),
        "expected": f"{e.comparator} {e.value:g}",
        "met_at_s": _round(j.met_at_s),
        "window": e.window,
        "window_s": [_round(e.start_s), _round(e.end_s)] if e.start_s is not None else None,
        "detail": j.detail,
    }


async def run_scenario(
    plan: Plan,
    options: RunOptions,
    *,
    source: ReplicaSource | None = None,
    handlers: Sequence[RunHandler] = (),
    scenario_text: str = "",
    environ: Mapping[str, str] | None = None,
    transport: LoadTransport | None = None,
    telemetry: Telemetry | None = None,
) -> RunOutcome:
    """Play `plan` against `options.url` and return the results document and exit code."""
    runner = _Runner(
        plan,
        options,
        source=source,
        handlers=handlers,
        scenario_text=scenario_text,
        environ=environ,
        transport=transport,
        telemetry=telemetry,
    )
    return await runner.run()


def default_results_path(document: Mapping[str, Any]) -> Path:
    """`results/<scenario>-<run id>.json`."""
    return Path("results") / f"{document['scenario']}-{document['run_id']}.json"
