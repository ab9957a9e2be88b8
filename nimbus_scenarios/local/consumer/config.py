"""How one reference consumer runs: where it listens, how long it is "starting", how hard it spins.

Its place: the `local.consumer` package, read by `server` (the application and its entry point)
and by `work` (through `cpu_scale`). Values are checked when the record is made, so a bad command
line is a usage error before anything binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nimbus_scenarios.local.loopback import check_loopback_host

__all__ = ["ConsumerConfig"]


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """How to run one reference consumer: where it listens and how long /ready says starting."""

    host: str = "127.0.0.1"
    port: int = 0
    ready_delay_s: float = 0.0
    name: str = "consumer"
    cpu_scale: float = 1.0
    """Fraction of a request's `duration` spent busy-spinning; the rest is slept (see
    `work.cpu_work`). 1.0 is faithful; the local fleet's tests use a small value so that several
    consumers and the load generator fit on a small machine. Requests still take `duration` s."""

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
