"""Start reference consumers as child processes on loopback (for `run --local` and the tests).

Its place: the `local` stage, under `replica` (each fleet replica is one such process). A
consumer runs in its own process, as a pod would: its CPU busy-work must not share the load
generator's interpreter (and GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass

from nimbus_scenarios.local.errors import LocalFleetError

__all__ = ["ConsumerProcess", "start_consumer"]

_READY_PREFIX = "listening on "


@dataclass
class ConsumerProcess:
    """A running reference consumer child process and its base URL."""

    process: asyncio.subprocess.Process
    url: str
    name: str

    async def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start_consumer(
    *,
    port: int = 0,
    ready_delay_s: float = 0.0,
    name: str = "consumer",
    timeout_s: float = 15.0,
    cpu_scale: float = 1.0,
) -> ConsumerProcess:
    """Start `python -m nimbus_scenarios.local.consumer` and wait for its listening line.

    `cpu_scale` < 1 passes `--cpu-scale` (spin only that fraction of each request's duration, as
    the local fleet's tests do to fit on a small machine); 1.0 (the default) is faithful.
    Raises `LocalFleetError` if it does not announce its URL within `timeout_s` or exits first.
    """
    extra = () if cpu_scale == 1.0 else ("--cpu-scale", repr(cpu_scale))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nimbus_scenarios.local.consumer",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ready-delay",
        str(ready_delay_s),
        "--name",
        name,
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise LocalFleetError(f"the local consumer did not start within {timeout_s:g}s") from None
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith(_READY_PREFIX):
        await process.wait()
        raise LocalFleetError(f"the local consumer failed to start (exit {process.returncode})")
    return ConsumerProcess(process, text.removeprefix(_READY_PREFIX), name)
