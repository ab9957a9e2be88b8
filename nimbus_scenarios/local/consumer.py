"""The local reference consumer: a loopback stand-in for the NimbusGuard consumer service.

Its place: the `local` stage. `run --local`, the tests and `make demo` start it (in process through
`ReferenceConsumer`, or as `python -m nimbus_scenarios.local.consumer`) so the load runner, the
judge and a local autoscaler have a real service to work against without a cluster. It follows the
consumer API in design/consumer-api.md: the same paths, query parameters, ranges, 422 answers,
sync/async work shapes and the same Prometheus metric names prometheus_fastapi_instrumentator
exposes (`http_requests_total`, `http_request_duration_seconds`, `python_gc_collections_total`).

Work is real: CPU work spins one thread counting primes, memory work allocates resident strings.
On top of the service's API it adds fixture-only views: a `local` section in `/process/status`
(requests, accepted and open TCP connections) and `GET /local/traceparents` (the last incoming
W3C `traceparent` headers). It only ever binds a loopback address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import math
import re
import resource
import signal
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = [
    "CPU_INTENSITY",
    "DURATION_S",
    "MEMORY_SIZE_MB",
    "ConsumerConfig",
    "CpuResult",
    "IntRange",
    "MemoryResult",
    "ProcessRequest",
    "ReferenceConsumer",
    "ValidationIssue",
    "allocate_strings",
    "burn_cpu",
    "check_loopback_host",
    "cpu_work",
    "main",
    "parse_process_query",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

JsonObject = dict[str, object]

RECENT_LIMIT: Final = 100
"""How many recent tasks and traceparent values are kept."""
MEMORY_STORE_LIMIT: Final = 100
"""How many `immediate_cleanup=false` allocations are kept before the oldest is evicted."""
_CHUNK_CHARS: Final = 1024 * 1024
_FILL: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
_PRIME_CHECK_EVERY: Final = 64
_SHUTDOWN_TIMEOUT_S: Final = 5.0
_THREAD_JOIN_S: Final = 3.0
_LATENCY_BUCKETS: Final = (0.1, 0.5, 1.0)
_METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_TRUE_WORDS: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "f", "no", "n", "off"})
_INTEGER: Final = re.compile(r"\s*[+-]?[0-9]+\s*")


# --------------------------------------------------------------------------------------------
# Configuration and the loopback guard


def check_loopback_host(host: str) -> str:
    """Return the address to bind for `host`, or raise ValueError if it is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the reference consumer only listens on loopback (127.0.0.0/8, ::1, localhost), "
            f"not {host!r}: it is a test fixture and must never be exposed"
        )
    return str(address)


@dataclass(frozen=True)
class ConsumerConfig:
    """How to run one reference consumer: where it listens and how long /ready says starting."""

    host: str = "127.0.0.1"
    port: int = 0
    ready_delay_s: float = 0.0
    name: str = "consumer"
    cpu_scale: float = 1.0
    """Fraction of a request's `duration` spent busy-spinning; the rest is slept (see `cpu_work`).
    1.0 is faithful; the local fleet's tests use a small value so that several consumers and the
    load generator fit on a small machine. Requests still take `duration` seconds."""

    def __post_init__(self) -> None:
        check_loopback_host(self.host)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 picks a free port), not {self.port}")
        if not math.isfinite(self.ready_delay_s) or self.ready_delay_s < 0:
            raise ValueError(
                f"ready_delay_s must be a finite number >= 0, not {self.ready_delay_s}"
            )
        if not (math.isfinite(self.cpu_scale) and 0.0 < self.cpu_scale <= 1.0):
            raise ValueError(f"cpu_scale must be in (0, 1], not {self.cpu_scale}")

    @property
    def bind_host(self) -> str:
        """The loopback address actually bound (`localhost` binds 127.0.0.1)."""
        return check_loopback_host(self.host)


# --------------------------------------------------------------------------------------------
# Query parameters of POST /process


@dataclass(frozen=True)
class IntRange:
    """An integer query parameter of POST /process: its name, default and inclusive range."""

    name: str
    default: int
    low: int
    high: int

    def describe(self) -> str:
        """The range in words, for error messages."""
        return f"{self.name} must be an integer from {self.low} to {self.high}"


CPU_INTENSITY: Final = IntRange("cpu_intensity", 5, 1, 10)
MEMORY_SIZE_MB: Final = IntRange("memory_size", 50, 10, 500)
DURATION_S: Final = IntRange("duration", 10, 1, 60)


@dataclass(frozen=True)
class ValidationIssue:
    """One FastAPI-shaped 422 detail entry: which parameter, what is wrong, what is allowed."""

    parameter: str
    msg: str
    type: str
    input: str
    ctx: Mapping[str, int] | None = None

    def to_json(self) -> JsonObject:
        """The entry as FastAPI renders it in `{"detail": [...]}`."""
        body: JsonObject = {
            "type": self.type,
            "loc": ["query", self.parameter],
            "msg": self.msg,
            "input": self.input,
        }
        if self.ctx is not None:
            body["ctx"] = dict(self.ctx)
        return body


@dataclass(frozen=True)
class ProcessRequest:
    """A validated POST /process request."""

    cpu_intensity: int = CPU_INTENSITY.default
    memory_size: int = MEMORY_SIZE_MB.default
    duration: int = DURATION_S.default
    async_mode: bool = False
    immediate_cleanup: bool = True

    @property
    def mode(self) -> str:
        """`async` or `sync`."""
        return "async" if self.async_mode else "sync"

    @property
    def cleanup_mode(self) -> str:
        """`immediate` (freed after the hold) or `temporary` (kept until /process/cleanup)."""
        return "immediate" if self.immediate_cleanup else "temporary"


def _parse_int(query: Mapping[str, str], spec: IntRange) -> int | ValidationIssue:
    raw = query.get(spec.name)
    if raw is None:
        return spec.default
    ctx = {"ge": spec.low, "le": spec.high}
    if _INTEGER.fullmatch(raw) is None:
        msg = (
            "Input should be a valid integer, unable to parse string as an integer; "
            + spec.describe()
        )
        return ValidationIssue(spec.name, msg, "int_parsing", raw, ctx)
    value = int(raw)
    if value < spec.low:
        msg = f"Input should be greater than or equal to {spec.low}; {spec.describe()}"
        return ValidationIssue(spec.name, msg, "greater_than_equal", raw, ctx)
    if value > spec.high:
        msg = f"Input should be less than or equal to {spec.high}; {spec.describe()}"
        return ValidationIssue(spec.name, msg, "less_than_equal", raw, ctx)
    return value


def _parse_bool(query: Mapping[str, str], name: str, default: bool) -> bool | ValidationIssue:
    raw = query.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    msg = (
        f"Input should be a valid boolean, unable to interpret input; {name} accepts true/false/1/0"
    )
    return ValidationIssue(name, msg, "bool_parsing", raw)


def parse_process_query(query: Mapping[str, str]) -> ProcessRequest | tuple[ValidationIssue, ...]:
    """Validate POST /process query parameters: a request, or every problem found (for a 422)."""
    cpu = _parse_int(query, CPU_INTENSITY)
    memory = _parse_int(query, MEMORY_SIZE_MB)
    duration = _parse_int(query, DURATION_S)
    async_mode = _parse_bool(query, "async_mode", default=False)
    cleanup = _parse_bool(query, "immediate_cleanup", default=True)
    if (
        isinstance(cpu, int)
        and isinstance(memory, int)
        and isinstance(duration, int)
        and isinstance(async_mode, bool)
        and isinstance(cleanup, bool)
    ):
        return ProcessRequest(cpu, memory, duration, async_mode, cleanup)
    parsed = (cpu, memory, duration, async_mode, cleanup)
    return tuple(item for item in parsed if isinstance(item, ValidationIssue))


# --------------------------------------------------------------------------------------------
# The work: CPU and memory


@dataclass(frozen=True)
class CpuResult:
    """What one CPU work run did."""

    intensity: int
    primes_found: int
    passes: int
    elapsed_seconds: float
    cpu_seconds: float

    def to_json(self) -> JsonObject:
        """The `cpu_result` body."""
        return {
            "intensity": self.intensity,
            "primes_found": self.primes_found,
            "passes": self.passes,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


@dataclass(frozen=True)
class MemoryResult:
    """What one memory work run did."""

    size_mb: int
    objects_created: int
    cleanup_mode: str
    held_seconds: float

    def to_json(self) -> JsonObject:
        """The `memory_result` body."""
        return {
            "size_mb": self.size_mb,
            "objects_created": self.objects_created,
            "cleanup_mode": self.cleanup_mode,
            "held_seconds": round(self.held_seconds, 3),
        }


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    return all(number % divisor for divisor in range(2, math.isqrt(number) + 1))


def _count_primes_until(limit: int, deadline: float, stop: threading.Event) -> tuple[int, bool]:
    """Count primes below `limit` by trial division; `(count, finished)` — stops at the deadline."""
    found = 0
    for start in range(2, limit, _PRIME_CHECK_EVERY):
        if stop.is_set() or time.monotonic() >= deadline:
            return found, False
        found += sum(
            1 for n in range(start, min(start + _PRIME_CHECK_EVERY, limit)) if _is_prime(n)
        )
    return found, True


def burn_cpu(intensity: int, duration: float, stop: threading.Event | None = None) -> CpuResult:
    """Spin the calling thread for `duration` s of wall time counting primes below intensity*1e4."""
    stop = stop if stop is not None else threading.Event()
    started, cpu_started = time.monotonic(), time.thread_time()
    deadline = started + duration
    primes = passes = 0
    finished = True
    while finished:
        found, finished = _count_primes_until(intensity * 10_000, deadline, stop)
        primes += found
        passes += int(finished)
    elapsed = time.monotonic() - started
    return CpuResult(intensity, primes, passes, elapsed, time.thread_time() - cpu_started)


# -- cpu_scale (added for the local fleet): spin only a fraction of `duration`, sleep the rest --


def cpu_work(
    intensity: int, duration: float, stop: threading.Event, cpu_scale: float = 1.0
) -> CpuResult:
    """`burn_cpu` for `duration * cpu_scale` s, then wait out the rest of `duration`."""
    if cpu_scale >= 1.0:
        return burn_cpu(intensity, duration, stop)
    started = time.monotonic()
    result = burn_cpu(intensity, duration * cpu_scale, stop)
    stop.wait(max(0.0, started + duration - time.monotonic()))
    return replace(result, elapsed_seconds=time.monotonic() - started)


def allocate_strings(size_mb: int) -> list[str]:
    """About `size_mb` MiB of 1 MiB strings, every page written (so resident)."""
    return [_FILL[i % len(_FILL)] * _CHUNK_CHARS for i in range(size_mb)]


@dataclass(frozen=True)
class _KeptBlock:
    task_id: str
    chunks: list[str]
    size_mb: int
    stored_at: float


class _MemoryStore:
    """Allocations kept by `immediate_cleanup=false` until DELETE /process/cleanup."""

    def __init__(self, limit: int = MEMORY_STORE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[str, _KeptBlock] = {}
        self._limit = limit

    def keep(self, block: _KeptBlock) -> None:
        with self._lock:
            while len(self._blocks) >= self._limit:
                del self._blocks[next(iter(self._blocks))]
            self._blocks[block.task_id] = block

    def clear(self) -> int:
        with self._lock:
            removed = len(self._blocks)
            self._blocks.clear()
        return removed

    def size(self) -> tuple[int, int]:
        """`(objects, megabytes)` held."""
        with self._lock:
            return len(self._blocks), sum(block.size_mb for block in self._blocks.values())


def _memory_work(
    request: ProcessRequest, task_id: str, store: _MemoryStore, stop: threading.Event
) -> MemoryResult:
    """Allocate, hold `duration`, free (or keep in the store), then sleep `duration` again."""
    chunks = allocate_strings(request.memory_size)
    objects = len(chunks)
    if not request.immediate_cleanup:
        store.keep(_KeptBlock(task_id, chunks, request.memory_size, time.time()))
    held_from = time.monotonic()
    stop.wait(request.duration)
    held = time.monotonic() - held_from
    del chunks
    stop.wait(request.duration)
    return MemoryResult(request.memory_size, objects, request.cleanup_mode, held)


# --------------------------------------------------------------------------------------------
# Task bookkeeping


@dataclass
class _TaskRecord:
    """One task, updated from the worker threads under `_TaskBook`'s lock."""

    task_id: str
    request: ProcessRequest
    started_at: float
    status: str = "running"
    finished_at: float | None = None
    error: str | None = None

    def to_json(self) -> JsonObject:
        elapsed = None if self.finished_at is None else round(self.finished_at - self.started_at, 3)
        return {
            "task_id": self.task_id,
            "mode": self.request.mode,
            "status": self.status,
            "cpu_intensity": self.request.cpu_intensity,
            "memory_size_mb": self.request.memory_size,
            "duration": self.request.duration,
            "cleanup_mode": self.request.cleanup_mode,
            "started_at": round(self.started_at, 3),
            "finished_at": None if self.finished_at is None else round(self.finished_at, 3),
            "processing_time_seconds": elapsed,
            "error": self.error,
        }


class _TaskBook:
    """Counters by mode and the last `RECENT_LIMIT` tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[_TaskRecord] = deque(maxlen=RECENT_LIMIT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._active = 0

    def begin(self, request: ProcessRequest) -> _TaskRecord:
        record = _TaskRecord(uuid.uuid4().hex, request, time.time())
        with self._lock:
            self._recent.append(record)
            self._counts[request.mode, "started"] += 1
            self._active += 1
        return record

    def finish(self, record: _TaskRecord, error: BaseException | None = None) -> None:
        with self._lock:
            record.finished_at = time.time()
            record.status = "completed" if error is None else "failed"
            record.error = None if error is None else f"{type(error).__name__}: {error}"
            self._counts[record.request.mode, record.status] += 1
            self._active -= 1

    def statistics(self) -> JsonObject:
        with self._lock:
            counts = self._counts.copy()
            active = self._active
        by_mode: JsonObject = {
            mode: {state: counts[mode, state] for state in ("started", "completed", "failed")}
            for mode in ("sync", "async")
        }
        return {
            "tasks_started": sum(counts[mode, "started"] for mode in ("sync", "async")),
            "tasks_completed": sum(counts[mode, "completed"] for mode in ("sync", "async")),
            "tasks_failed": sum(counts[mode, "failed"] for mode in ("sync", "async")),
            "tasks_active": active,
            "by_mode": by_mode,
        }

    def recent(self) -> list[JsonObject]:
        with self._lock:
            return [record.to_json() for record in self._recent]


# --------------------------------------------------------------------------------------------
# Metrics (prometheus_fastapi_instrumentator names, rendered by hand)


@dataclass
class _Latency:
    buckets: list[int] = field(default_factory=lambda: [0] * len(_LATENCY_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(_LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
        self.total += seconds
        self.count += 1


def _status_group(status: int) -> str:
    """The instrumentator's default grouping: 200 -> `2xx`."""
    return f"{status // 100}xx"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _number(value: float) -> str:
    return repr(float(value))


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class _HttpMetrics:
    """Request counts and latency by route template, updated on the event loop thread."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        self._requests[handler, method, _status_group(status)] += 1
        self._latency.setdefault((handler, method), _Latency()).observe(seconds)

    def render(self) -> list[str]:
        lines = _header(
            "http_requests_total",
            "counter",
            "Total number of requests by method, status and handler.",
        )
        for (handler, method, status), count in sorted(self._requests.items()):
            labels = _labels((("handler", handler), ("method", method), ("status", status)))
            lines.append(f"http_requests_total{labels} {_number(count)}")
        lines += _header(
            "http_request_duration_seconds",
            "histogram",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important.",
        )
        for (handler, method), latency in sorted(self._latency.items()):
            lines += _histogram_lines(handler, method, latency)
        return lines


def _histogram_lines(handler: str, method: str, latency: _Latency) -> list[str]:
    name = "http_request_duration_seconds"
    base = (("handler", handler), ("method", method))
    lines = [
        f"{name}_bucket{_labels((*base, ('le', _number(bound))))} {_number(count)}"
        for bound, count in zip(_LATENCY_BUCKETS, latency.buckets, strict=True)
    ]
    lines.append(f"{name}_bucket{_labels((*base, ('le', '+Inf')))} {_number(latency.count)}")
    lines.append(f"{name}_count{_labels(base)} {_number(latency.count)}")
    lines.append(f"{name}_sum{_labels(base)} {_number(latency.total)}")
    return lines


def _gc_lines() -> list[str]:
    stats = gc.get_stats()
    families = (
        ("python_gc_objects_collected_total", "collected", "Objects collected during gc"),
        ("python_gc_objects_uncollectable_total", "uncollectable", "Uncollectable objects found"),
        (
            "python_gc_collections_total",
            "collections",
            "Number of times this generation was collected",
        ),
    )
    lines: list[str] = []
    for name, key, help_text in families:
        lines += _header(name, "counter", help_text)
        lines += [
            f"{name}{_labels([('generation', str(gen))])} {_number(generation[key])}"
            for gen, generation in enumerate(stats)
        ]
    return lines


def _resident_bytes() -> int | None:
    try:
        fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
    except OSError:
        return None
    return int(fields[1]) * resource.getpagesize()


def _process_lines() -> list[str]:
    lines = _header(
        "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."
    )
    lines.append(f"process_cpu_seconds_total {_number(time.process_time())}")
    resident = _resident_bytes()
    if resident is not None:
        lines += _header("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
        lines.append(f"process_resident_memory_bytes {_number(resident)}")
    return lines


# --------------------------------------------------------------------------------------------
# Threads <-> event loop


def _succeed(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class _Workers:
    """Daemon worker threads, so stop() can wait (bounded) for them to notice the stop event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self.stop = threading.Event()

    def spawn(self, name: str, work: Callable[[], object]) -> None:
        """Run `work` on a new daemon thread; errors are logged (it is fire-and-forget)."""

        def run() -> None:
            try:
                work()
            except Exception:
                _log.exception("background work %s failed", name)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def submit(self, name: str, work: Callable[[], _T]) -> asyncio.Future[_T]:
        """Run `work` on a new daemon thread; its result settles the returned future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()

        def run() -> None:
            try:
                result = work()
            except Exception as exc:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_fail, future, exc)
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_succeed, future, result)

        self.spawn(name, run)
        return future

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` s in total for the worker threads to end."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------------------------
# The server


class _CountingSite(web.BaseSite):
    """A TCP site that counts every accepted connection (one protocol per connection)."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, on_accept: Callable[[], None]
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._on_accept = on_accept
        self.bound_port = port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")

        def protocol() -> asyncio.BaseProtocol:
            self._on_accept()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, self._host, self._port)
        self.bound_port = int(self._server.sockets[0].getsockname()[1])


def _handler_label(request: web.Request) -> str:
    """The route template (`/process`), or `none` for an unmatched path, as the instrumentator."""
    resource = request.match_info.route.resource
    return "none" if resource is None else resource.canonical


def _http_error(exc: web.HTTPException) -> web.Response:
    headers = {key: value for key, value in exc.headers.items() if key.lower() == "allow"}
    return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)


class ReferenceConsumer:
    """The reference consumer: build its aiohttp app, start it on loopback, stop it."""

    def __init__(self, config: ConsumerConfig | None = None) -> None:
        self.config = config if config is not None else ConsumerConfig()
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._site: _CountingSite | None = None
        self._started_at: float | None = None
        self._stopped = False
        self._workers = _Workers()
        self._tasks = _TaskBook()
        self._store = _MemoryStore()
        self._metrics = _HttpMetrics()
        self._traceparents: deque[str] = deque(maxlen=RECENT_LIMIT)
        self._requests_total = 0
        self._connections_accepted = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The application this consumer serves (built on first use)."""
        if self._app is None:
            self._app = self.build_app()
        return self._app

    def build_app(self) -> web.Application:
        """A new aiohttp application bound to this consumer's state."""
        app = web.Application(middlewares=[self._observe])
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics_text)
        app.router.add_post("/process", self._process)
        app.router.add_get("/process/status", self._status)
        app.router.add_delete("/process/cleanup", self._cleanup)
        app.router.add_get("/local/traceparents", self._traceparent_list)
        return app

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` once started."""
        if self._site is None:
            raise RuntimeError("the consumer is not started")
        return self._site.name

    @property
    def requests_total(self) -> int:
        """Requests seen by the application since start (every path and status)."""
        return self._requests_total

    @property
    def connections_accepted(self) -> int:
        """Distinct TCP connections accepted since start (keep-alive reuse does not count)."""
        return self._connections_accepted

    @property
    def connections_open(self) -> int:
        """TCP connections open right now."""
        server = None if self._runner is None else self._runner.server
        return 0 if server is None else len(server.connections)

    async def start(self) -> str:
        """Bind (port 0 picks a free port), serve, and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("a ReferenceConsumer starts once; make a new one")
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        self._runner = runner
        site = _CountingSite(
            runner, self.config.bind_host, self.config.port, self._count_connection
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._site = site
        self._started_at = time.monotonic()
        return site.name

    async def stop(self) -> None:
        """Stop serving, tell running work to end, and wait (bounded) for its threads."""
        self._workers.stop.set()
        if self._runner is not None and not self._stopped:
            self._stopped = True
            await self._runner.cleanup()
        await asyncio.to_thread(self._workers.join, _THREAD_JOIN_S)

    async def __aenter__(self) -> ReferenceConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _count_connection(self) -> None:
        self._connections_accepted += 1

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        self._requests_total += 1
        traceparent = request.headers.get("traceparent")
        if traceparent:
            self._traceparents.append(traceparent.strip())
        response = await self._respond(request, handler)
        elapsed = time.perf_counter() - started
        self._metrics.observe(_handler_label(request), request.method, response.status, elapsed)
        return response

    @staticmethod
    async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _http_error(exc)
        except Exception:
            _log.exception("%s %s failed", request.method, request.path)
            return web.json_response({"detail": "Internal Server Error"}, status=500)

    # -- handlers -----------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def _ready(self, _request: web.Request) -> web.Response:
        started = self._started_at
        if started is None or time.monotonic() - started < self.config.ready_delay_s:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        lines = self._metrics.render() + _gc_lines() + _process_lines()
        body = ("\n".join(lines) + "\n").encode()
        return web.Response(body=body, headers={"Content-Type": _METRICS_CONTENT_TYPE})

    async def _process(self, request: web.Request) -> web.Response:
        parsed = parse_process_query(request.query)
        if isinstance(parsed, tuple):
            detail = [issue.to_json() for issue in parsed]
            return web.json_response({"detail": detail}, status=422)
        record = self._tasks.begin(parsed)
        if parsed.async_mode:
            return self._start_async(parsed, record)
        return await self._run_sync(parsed, record)

    def _start_async(self, request: ProcessRequest, record: _TaskRecord) -> web.Response:
        def work() -> None:
            try:
                cpu_work(
                    request.cpu_intensity,
                    request.duration,
                    self._workers.stop,
                    self.config.cpu_scale,
                )
                if not self._workers.stop.is_set():
                    _memory_work(request, record.task_id, self._store, self._workers.stop)
            except Exception as exc:
                self._tasks.finish(record, exc)
                raise
            self._tasks.finish(record)

        self._workers.spawn(f"task-{record.task_id[:8]}", work)
        return web.json_response(
            {
                "status": "started",
                "task_id": record.task_id,
                "message": f"Background processing started for {request.duration}s",
                "cpu_intensity": request.cpu_intensity,
                "memory_size_mb": request.memory_size,
                "cleanup_mode": request.cleanup_mode,
                "estimated_completion": round(time.time() + 2 * request.duration, 3),
            }
        )

    async def _run_sync(self, request: ProcessRequest, record: _TaskRecord) -> web.Response:
        stop = self._workers.stop
        started = time.monotonic()
        cpu = self._workers.submit(
            f"cpu-{record.task_id[:8]}",
            lambda: cpu_work(request.cpu_intensity, request.duration, stop, self.config.cpu_scale),
        )
        memory = self._workers.submit(
            f"memory-{record.task_id[:8]}",
            lambda: _memory_work(request, record.task_id, self._store, stop),
        )
        try:
            cpu_result, memory_result = await asyncio.gather(cpu, memory)
        except Exception as exc:
            self._tasks.finish(record, exc)
            raise
        self._tasks.finish(record)
        return web.json_response(
            {
                "status": "completed",
                "task_id": record.task_id,
                "processing_time_seconds": round(time.monotonic() - started, 3),
                "cpu_result": cpu_result.to_json(),
                "memory_result": memory_result.to_json(),
                "memory_store_size": self._store.size()[0],
            }
        )

    async def _status(self, _request: web.Request) -> web.Response:
        objects, megabytes = self._store.size()
        started = self._started_at
        return web.json_response(
            {
                "name": self.config.name,
                "memory_store": {"objects": objects, "size_mb": megabytes},
                "current_status": {
                    "memory_store_objects": objects,
                    "memory_store_size_estimate_mb": megabytes,
                },
                "statistics": self._tasks.statistics(),
                "recent_tasks": self._tasks.recent(),
                "local": {
                    "requests_total": self.requests_total,
                    "connections_accepted": self.connections_accepted,
                    "connections_open": self.connections_open,
                    "uptime_seconds": 0.0
                    if started is None
                    else round(time.monotonic() - started, 3),
                },
            }
        )

    async def _cleanup(self, _request: web.Request) -> web.Response:
        removed = self._store.clear()
        if removed:
            await asyncio.to_thread(gc.collect)
        return web.json_response({"status": "cleaned", "objects_removed": removed})

    async def _traceparent_list(self, _request: web.Request) -> web.Response:
        return web.json_response(list(self._traceparents))


# --------------------------------------------------------------------------------------------
# Process entry point


def _parse_args(argv: Sequence[str] | None) -> ConsumerConfig:
    parser = argparse.ArgumentParser(
        prog="python -m nimbus_scenarios.local.consumer",
        description="Run the local reference consumer (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--ready-delay", type=float, default=0.0, metavar="S", help="/ready 503 for S s"
    )
    parser.add_argument("--name", default="consumer", help="name shown in /process/status")
    parser.add_argument(
        "--cpu-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="spin F of each request's duration and sleep the rest (default 1.0: faithful)",
    )
    args = parser.parse_args(argv)
    try:
        return ConsumerConfig(args.host, args.port, args.ready_delay, args.name, args.cpu_scale)
    except ValueError as exc:
        parser.error(str(exc))


async def _serve(config: ConsumerConfig) -> None:
    """Serve until SIGTERM or SIGINT; announce the URL on stdout once bound."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    consumer = ReferenceConsumer(config)
    url = await consumer.start()
    try:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(f"listening on {url}\n")
            sys.stdout.flush()
        await stopping.wait()
    finally:
        await consumer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m nimbus_scenarios.local.consumer`: serve until SIGTERM/SIGINT, then exit 0."""
    config = _parse_args(argv)
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:  # a SIGINT that landed before the handler was installed
        return 0
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {config.host}:{config.port}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
