"""The pods' logs: followed live (status lines, one prefix per shard) and read whole at the end
for the results document each shard printed.

A `LogFollower` is one daemon thread per pod reading its followed log; it writes each line the
runner prints, prefixed by the shard, through one lock so that lines of different shards never
interleave mid-line. The results document (a long JSON line, or its chunks) is not echoed. The
live view is a convenience: the results are read from the whole log once the pod has ended
(`shard_results`), so a follow cut by the network loses nothing that counts.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from nimbus_scenarios.kube.runs import LogStream, RunCluster
from nimbus_scenarios.results.logwire import load_documents
from nimbus_scenarios.results.model import RunResults

__all__ = [
    "LogFollower",
    "Printer",
    "is_document_line",
    "last_words",
    "open_follow",
    "shard_results",
]


def is_document_line(line: str) -> bool:
    """Whether a log line carries (part of) a results document rather than a status line."""
    stripped = line.strip()
    return stripped.startswith("{") and '"schema_version"' in stripped


def last_words(text: str, count: int = 3) -> str:
    """The last few status lines of a log (what a runner that failed said last)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not is_document_line(line)][-count:]
    return " | ".join(kept)


class Printer:
    """Whole lines to one stream from many threads."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Write one line and flush it."""
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


class LogFollower:
    """One pod's log followed on a daemon thread, echoed with its shard's prefix."""

    def __init__(
        self,
        opener: Callable[[], LogStream],
        prefix: str,
        printer: Printer,
    ) -> None:
        self._opener = opener
        self._prefix = prefix
        self._printer = printer
        self._stream: LogStream | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, name=f"log {prefix}", daemon=True)

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def _follow(self) -> None:
        try:
            stream = self._opener()
        except Exception as exc:  # a thread's failure is printed, never a traceback
            if not self._stopping.is_set():
                self._printer.line(f"{self._prefix}(cannot follow the log: {exc})")
            return
        with self._lock:
            self._stream = stream
            stopping = self._stopping.is_set()
        if stopping:
            stream.close()
            return
        try:
            for line in stream.lines():
                if not is_document_line(line):
                    self._printer.line(self._prefix + line.rstrip("\r"))
        except Exception as exc:  # a cut stream: the whole log is read again at the end
            if not self._stopping.is_set():
                self._printer.line(f"{self._prefix}(log stream ended: {type(exc).__name__})")
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def stop(self, timeout_s: float) -> None:
        """Stop following (the stream is closed under the reader) and wait up to `timeout_s`
        for what it is printing; a thread still blocked is a daemon and dies with the process."""
        with self._lock:
            self._stopping.set()
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        self._thread.join(timeout_s)

    def finish(self, timeout_s: float) -> None:
        """Let the stream end by itself (the container ended) for up to `timeout_s`, then stop."""
        self._thread.join(timeout_s)
        self.stop(0.5)


def shard_results(text: str) -> list[RunResults]:
    """The results documents in a pod's log text, strictly checked as `merge` reads them
    (`ResultsError` when there is none, or one is corrupt)."""
    with tempfile.TemporaryDirectory(prefix="nimbus-submit-") as folder:
        path = Path(folder) / "pod.log"
        path.write_text(text, encoding="utf-8")
        return load_documents(path)


def open_follow(cluster: RunCluster, pod: str, container: str) -> Callable[[], LogStream]:
    """The opener a follower calls on its own thread (connecting can take a moment)."""
    return lambda: cluster.follow_log(pod, container)
