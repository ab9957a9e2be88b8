"""The work behind POST /process: CPU busy work, the memory store, the task book.

Its place: the `local.consumer` package, called by `server`'s handlers with a validated
`api.ProcessRequest`. Work is real, as in the service (design/consumer-api.md): CPU work spins
one thread counting primes, memory work allocates resident strings, holds them, frees them (or
keeps them until DELETE /process/cleanup) and sleeps again. A sync request waits for both on two
threads; an async one starts CPU then memory work on one background thread and answers at once.
Every thread watches one stop event, so `Work.stop` ends them all within a bounded wait.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Final

from nimbus_scenarios.local.consumer.api import JsonObject, ProcessRequest
from nimbus_scenarios.local.consumer.threads import WorkerThreads

__all__ = [
    "MEMORY_STORE_LIMIT",
    "RECENT_LIMIT",
    "CpuResult",
    "MemoryResult",
    "MemoryStore",
    "SyncOutcome",
    "TaskBook",
    "TaskRecord",
    "Work",
    "allocate_strings",
    "burn_cpu",
    "cpu_work",
    "memory_work",
]

RECENT_LIMIT: Final = 100
"""How many recent tasks are kept for /process/status."""
MEMORY_STORE_LIMIT: Final = 100
"""How many `immediate_cleanup=false` allocations are kept before the oldest is evicted."""
_CHUNK_CHARS: Final = 1024 * 1024
_FILL: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
# Checking the deadline every 64 candidates keeps the overshoot well under a millisecond.
_PRIME_CHECK_EVERY: Final = 64


# --------------------------------------------------------------------------------------------
# CPU work


@dataclass(frozen=True, slots=True)
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


def cpu_work(
    intensity: int, duration: float, stop: threading.Event, cpu_scale: float = 1.0
) -> CpuResult:
    """`burn_cpu` for `duration * cpu_scale` s, then wait out the rest of `duration`.

    `cpu_scale` < 1 exists for the local fleet on a small machine (see `ConsumerConfig`): the
    request still takes its full duration, only less of it is spent spinning.
    """
    if cpu_scale >= 1.0:
        return burn_cpu(intensity, duration, stop)
    started = time.monotonic()
    result = burn_cpu(intensity, duration * cpu_scale, stop)
    stop.wait(max(0.0, started + duration - time.monotonic()))
    return replace(result, elapsed_seconds=time.monotonic() - started)


# --------------------------------------------------------------------------------------------
# Memory work


@dataclass(frozen=True, slots=True)
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


def allocate_strings(size_mb: int) -> list[str]:
    """About `size_mb` MiB of 1 MiB strings, every page written (so resident)."""
    return [_FILL[i % len(_FILL)] * _CHUNK_CHARS for i in range(size_mb)]


@dataclass(frozen=True, slots=True)
class _KeptBlock:
    task_id: str
    chunks: list[str]
    size_mb: int
    stored_at: float


class MemoryStore:
    """Allocations kept by `immediate_cleanup=false` until DELETE /process/cleanup."""

    def __init__(self, limit: int = MEMORY_STORE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[str, _KeptBlock] = {}
        self._limit = limit

    def keep(self, task_id: str, chunks: list[str], size_mb: int) -> None:
        """Hold `chunks` for `task_id`, evicting the oldest block beyond the limit."""
        with self._lock:
            while len(self._blocks) >= self._limit:
                del self._blocks[next(iter(self._blocks))]
            self._blocks[task_id] = _KeptBlock(task_id, chunks, size_mb, time.time())

    def clear(self) -> int:
        """Drop every block; how many there were."""
        with self._lock:
            removed = len(self._blocks)
            self._blocks.clear()
        return removed

    def size(self) -> tuple[int, int]:
        """`(objects, megabytes)` held."""
        with self._lock:
            return len(self._blocks), sum(block.size_mb for block in self._blocks.values())


def memory_work(
    request: ProcessRequest, task_id: str, store: MemoryStore, stop: threading.Event
) -> MemoryResult:
    """Allocate, hold `duration`, free (or keep in the store), then sleep `duration` again."""
    chunks = allocate_strings(request.memory_size)
    objects = len(chunks)
    if not request.immediate_cleanup:
        store.keep(task_id, chunks, request.memory_size)
    held_from = time.monotonic()
    stop.wait(request.duration)
    held = time.monotonic() - held_from
    del chunks
    stop.wait(request.duration)
    return MemoryResult(request.memory_size, objects, request.cleanup_mode, held)


# --------------------------------------------------------------------------------------------
# Task bookkeeping


@dataclass(slots=True)
class TaskRecord:
    """One task. Mutable on purpose: worker threads finish it in place under `TaskBook`'s lock."""

    task_id: str
    request: ProcessRequest
    started_at: float
    status: str = "running"
    finished_at: float | None = None
    error: str | None = None

    def to_json(self) -> JsonObject:
        """The entry in /process/status's `recent_tasks`."""
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


class TaskBook:
    """Counters by mode and the last `RECENT_LIMIT` tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[TaskRecord] = deque(maxlen=RECENT_LIMIT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._active = 0

    def begin(self, request: ProcessRequest) -> TaskRecord:
        """A new running task for `request`."""
        record = TaskRecord(uuid.uuid4().hex, request, time.time())
        with self._lock:
            self._recent.append(record)
            self._counts[request.mode, "started"] += 1
            self._active += 1
        return record

    def finish(self, record: TaskRecord, error: BaseException | None = None) -> None:
        """Mark `record` completed, or failed with `error`."""
        with self._lock:
            record.finished_at = time.time()
            record.status = "completed" if error is None else "failed"
            record.error = None if error is None else f"{type(error).__name__}: {error}"
            self._counts[record.request.mode, record.status] += 1
            self._active -= 1

    def statistics(self) -> JsonObject:
        """The `statistics` section of /process/status."""
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
        """The `recent_tasks` section of /process/status, oldest first."""
        with self._lock:
            return [record.to_json() for record in self._recent]


# --------------------------------------------------------------------------------------------
# One consumer's work


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What a sync POST /process did, for its answer."""

    record: TaskRecord
    cpu: CpuResult
    memory: MemoryResult
    elapsed_seconds: float


class Work:
    """One consumer's work: its threads, memory store and task book (see the module docstring)."""

    def __init__(self, cpu_scale: float = 1.0) -> None:
        self.cpu_scale = cpu_scale
        self.store = MemoryStore()
        self.tasks = TaskBook()
        self._threads = WorkerThreads()

    def start_async(self, request: ProcessRequest) -> TaskRecord:
        """Start CPU then memory work on a background thread; the task, still running."""
        record = self.tasks.begin(request)
        stop = self._threads.stop

        def work() -> None:
            try:
                cpu_work(request.cpu_intensity, request.duration, stop, self.cpu_scale)
                if not stop.is_set():
                    memory_work(request, record.task_id, self.store, stop)
            except Exception as exc:
                self.tasks.finish(record, exc)
                raise
            self.tasks.finish(record)

        self._threads.spawn(f"task-{record.task_id[:8]}", work)
        return record

    async def run_sync(self, request: ProcessRequest) -> SyncOutcome:
        """Run CPU and memory work on two threads and wait for both."""
        record = self.tasks.begin(request)
        stop = self._threads.stop
        started = time.monotonic()
        cpu = self._threads.submit(
            f"cpu-{record.task_id[:8]}",
            lambda: cpu_work(request.cpu_intensity, request.duration, stop, self.cpu_scale),
        )
        memory = self._threads.submit(
            f"memory-{record.task_id[:8]}",
            lambda: memory_work(request, record.task_id, self.store, stop),
        )
        try:
            cpu_result, memory_result = await asyncio.gather(cpu, memory)
        except Exception as exc:
            self.tasks.finish(record, exc)
            raise
        self.tasks.finish(record)
        return SyncOutcome(record, cpu_result, memory_result, time.monotonic() - started)

    def stop(self) -> None:
        """Tell every running piece of work to end (it checks the stop event as it goes)."""
        self._threads.stop.set()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` s in total for the worker threads to end (call after `stop`)."""
        self._threads.join(timeout)
