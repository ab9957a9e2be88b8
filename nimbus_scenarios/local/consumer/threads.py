"""Worker threads that report back to the event loop, all watching one stop event.

Its place: the `local.consumer` package, under `work`. CPU busy work must run on real threads
(it holds the GIL in bursts, as the service's thread pool does), and the event loop must still
await a sync request's two halves: `submit` settles an asyncio future from the thread. Daemon
threads and one stop event let a consumer's `stop` end in a bounded time whatever is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["WorkerThreads"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _succeed(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class WorkerThreads:
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
