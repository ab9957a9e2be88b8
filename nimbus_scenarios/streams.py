"""Standard output and error that cannot change a verdict.

A run's exit code is its promise: `run ... 2>&1 | head -1` must still exit 1 when an expectation
failed, and a run started with stdout closed (`>&-`) must still run, judge and write its results.
`protect()` wraps `sys.stdout` and `sys.stderr` so that writing to a closed pipe or a closed
descriptor is dropped instead of raised: once a stream breaks, it is pointed at /dev/null (so
that the interpreter's own flush at exit cannot fail either) and says so in `broken`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import TextIO

__all__ = ["SafeStream", "protect"]

_BROKEN = frozenset({errno.EPIPE, errno.EBADF, errno.ECONNRESET})


class SafeStream(io.TextIOBase):
    """A text stream that drops what it cannot write once its descriptor is gone."""

    def __init__(self, inner: TextIO | None, fileno: int) -> None:
        super().__init__()
        self._inner = inner
        self._fileno = fileno
        self.broken = inner is None

    def write(self, text: str) -> int:
        """Write `text`, or drop it if the stream is broken."""
        if self.broken or self._inner is None:
            return len(text)
        try:
            return self._inner.write(text)
        except OSError as exc:
            self._break(exc)
            return len(text)

    def flush(self) -> None:
        """Flush, or do nothing if the stream is broken."""
        if self.broken or self._inner is None:
            return
        try:
            self._inner.flush()
        except OSError as exc:
            self._break(exc)

    def _break(self, exc: OSError) -> None:
        if exc.errno not in _BROKEN and not isinstance(exc, BrokenPipeError):
            raise exc
        self.broken = True
        # Anything still buffered in the inner stream would fail again when the interpreter
        # flushes it at exit: point the descriptor at /dev/null so that flush succeeds.
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._fileno)
            os.close(null)

    def isatty(self) -> bool:
        """Whether the stream is a terminal (a broken one is not)."""
        if self.broken or self._inner is None:
            return False
        try:
            return self._inner.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        """The descriptor this stream writes to."""
        return self._fileno

    def writable(self) -> bool:
        """Always: writes never fail."""
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The inner stream's encoding (UTF-8 when there is none)."""
        inner = self._inner
        return getattr(inner, "encoding", None) or "utf-8"


def _wrap(stream: TextIO | None, fileno: int) -> TextIO:
    if isinstance(stream, SafeStream):
        return stream
    try:
        os.fstat(fileno)
    except OSError:
        # Closed before we started: hold the descriptor with /dev/null, so that the next file
        # the run opens (its results) cannot become descriptor 1 or 2 by accident.
        stream = None
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fileno:
                os.dup2(null, fileno)
                os.close(null)
    return SafeStream(stream, fileno)  # type: ignore[return-value]


def protect() -> None:
    """Make `sys.stdout` and `sys.stderr` safe to write to, whatever they are connected to."""
    sys.stdout = _wrap(sys.stdout, 1)
    sys.stderr = _wrap(sys.stderr, 2)
