"""The pods' logs: followed live (status lines, one prefix per shard) and read whole at the end
for the results document each shard printed.

A `LogFollower` is one daemon thread per pod reading its followed log; it writes each line the
runner prints, prefixed by the shard, through one lock so that lines of different shards never
interleave mid-line. What is echoed (`echo_line`):
- the runner's human lines (`--monitor` status lines, its summary, its errors): as they are;
- its structlog JSON event lines: only with `--verbose`; without it, an event at level warning
  or above is shown as one short line (`warning: run_aborted reason=...`), the rest not at all;
- the results document's lines (`results.logwire`, 12 KB of base64 each): never; one line says
  that they came (`results: 3 lines`).
The live view is a convenience: the results are read from the whole log once the pod has ended
(`shard_results`), so a follow cut by the network loses nothing that counts.
"""

from __future__ import annotations

import contextlib
import enum
import json
import threading
from collections.abc import Callable
from typing import Any, TextIO

from nimbus_scenarios.kube.runs import LogStream, RunCluster
from nimbus_scenarios.results.logwire import PREFIX, chunk_of, documents_in_text
from nimbus_scenarios.results.model import RunResults

__all__ = [
    "LineKind",
    "LogFollower",
    "Printer",
    "echo_line",
    "is_document_line",
    "last_words",
    "line_kind",
    "open_follow",
    "shard_results",
    "short_event",
]

_WIRE = f"{PREFIX} v"
"""What starts a results line (`results.logwire`), wherever in the line a collector put it."""
_LONGEST_EVENT = 64 * 1024
"""A JSON line longer than this is not read as a log event (it is echoed as it is)."""
_QUIET_FIELDS = frozenset({"event", "level", "timestamp", "run_id", "scenario", "logger"})
"""Fields every event carries, left out of its short form (the run is known)."""
_LOUD_LEVELS = frozenset({"warning", "error", "critical", "exception"})
_SHORT_EVENT_CHARS = 240


class LineKind(enum.Enum):
    """What a line of a pod's log is."""

    STATUS = "status"
    """A line for people: `--monitor` status, the summary, an error message."""
    EVENT = "event"
    """A structlog JSON event line (for Loki)."""
    RESULTS = "results"
    """A line of the results document (chunked, or a one-line JSON document of old)."""


def _event(line: str) -> dict[str, Any] | None:
    """The JSON object of a structlog event line, else None."""
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")) or len(stripped) > _LONGEST_EVENT:
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "event" in data else None


def line_kind(line: str) -> LineKind:
    """What `line` is (see `LineKind`)."""
    if _WIRE in line:
        return LineKind.RESULTS
    stripped = line.strip()
    if stripped.startswith("{") and '"schema_version"' in stripped:
        return LineKind.RESULTS
    return LineKind.EVENT if _event(line) is not None else LineKind.STATUS


def is_document_line(line: str) -> bool:
    """Whether a log line carries (part of) a results document rather than a status line."""
    return line_kind(line) is LineKind.RESULTS


def _short_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if isinstance(value, str) and (" " in text or not text) else text


def short_event(line: str) -> str | None:
    """An event line at level warning or above as one short line, else None."""
    data = _event(line)
    if data is None or str(data.get("level", "")).lower() not in _LOUD_LEVELS:
        return None
    fields = " ".join(
        f"{key}={_short_value(value)}" for key, value in data.items() if key not in _QUIET_FIELDS
    )
    text = f"{data['level']}: {data['event']}" + (f" {fields}" if fields else "")
    if len(text) > _SHORT_EVENT_CHARS:
        text = text[: _SHORT_EVENT_CHARS - 1] + "…"
    return text


def echo_line(line: str, *, verbose: bool = False) -> str | None:
    """What the console shows for one line of a pod's log (without its prefix), or None.

    Results lines are never shown (the follower says once that they came)."""
    match line_kind(line):
        case LineKind.RESULTS:
            return None
        case LineKind.EVENT:
            return line if verbose else short_event(line)
        case LineKind.STATUS:
            return line


def last_words(text: str, count: int = 3) -> str:
    """The last few lines a runner said for people (its status lines, and its events at level
    warning or above in short): what a runner that failed said last."""
    kept: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        shown = echo_line(line.strip())
        if shown is not None:
            kept.append(shown)
    return " | ".join(kept[-count:])


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
        *,
        verbose: bool = False,
    ) -> None:
        self._opener = opener
        self._prefix = prefix
        self._printer = printer
        self._verbose = verbose
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
            results_seen = False
            for raw in stream.lines():
                line = raw.rstrip("\r")
                if line_kind(line) is LineKind.RESULTS:
                    if not results_seen:
                        results_seen = True
                        self._printer.line(self._prefix + _results_note(line))
                    continue
                shown = echo_line(line, verbose=self._verbose)
                if shown is not None:
                    self._printer.line(self._prefix + shown)
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


def _results_note(line: str) -> str:
    """The one line shown for a document's lines, from its first."""
    chunk = chunk_of(line)
    if chunk is None:
        return "results: (a line that cannot be read; the whole log is checked at the end)"
    count = chunk[1]
    return f"results: {count} line{'' if count == 1 else 's'}"


def shard_results(text: str, name: str) -> list[RunResults]:
    """The results documents in a pod's log text, in order, strictly checked as `merge` reads
    them: none is an empty list; a document not whole (a missing or corrupt chunk) is a
    `ResultsError` that begins with `name` and names the chunks."""
    return documents_in_text(text, name)


def open_follow(cluster: RunCluster, pod: str, container: str) -> Callable[[], LogStream]:
    """The opener a follower calls on its own thread (connecting can take a moment)."""
    return lambda: cluster.follow_log(pod, container)
