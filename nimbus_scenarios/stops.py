"""Stop requests (SIGINT, SIGTERM) from the moment the command line starts.

`install()` is the first thing `cli.main` does. Until the run takes over (`hold()`), a signal
raises `Stopped` wherever the process is (importing, compiling, connecting), so the command
ends at once with exit 3 and one line, never silently or with a traceback. Once the runner
holds stops, a signal is only recorded: the runner asks `received()` when it starts and then
handles signals on its event loop itself, and `install()` again when it is done, so that a
signal while results are written is recorded instead of killing the process.
"""

from __future__ import annotations

import signal
from types import FrameType

from nimbus_scenarios.errors import NimbusError
from nimbus_scenarios.exit_codes import ExitCode

__all__ = ["SIGNALS", "Stopped", "hold", "install", "received", "restore"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    """What this process has seen of stop signals (one per process)."""

    def __init__(self) -> None:
        self.received: list[signal.Signals] = []
        self.holding = False
        self.installed = False


_STATE = _State()


class Stopped(NimbusError):
    """A stop signal arrived before the run could keep results (exit 3)."""

    exit_code = ExitCode.ABORTED

    def __init__(self, sig: signal.Signals) -> None:
        self.signal = sig
        super().__init__(f"{sig.name} received before the run started; nothing was sent")


def _on_signal(number: int, _frame: FrameType | None) -> None:
    sig = signal.Signals(number)
    _STATE.received.append(sig)
    if not _STATE.holding:
        raise Stopped(sig)


def install() -> None:
    """Handle SIGINT and SIGTERM from now on (in the main thread only)."""
    _STATE.installed = True
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)


def hold() -> None:
    """From now on a signal is recorded, not raised: the run will stop itself."""
    _STATE.holding = True


def received() -> tuple[signal.Signals, ...]:
    """The stop signals received so far, in order."""
    return tuple(_STATE.received)


def restore() -> None:
    """Install the process-wide handlers again if the command installed them in the first
    place (a library caller's own handlers are left alone)."""
    if _STATE.installed:
        install()
