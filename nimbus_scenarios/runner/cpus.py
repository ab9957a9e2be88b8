"""How many worker processes `run --workers auto` starts: the CPUs this process may use.

The cgroup's CPU quota when one is set (a container's `limits.cpu`): cgroup v2's `cpu.max`
("QUOTA PERIOD", or "max PERIOD" for none), else cgroup v1's `cpu.cfs_quota_us` and
`cpu.cfs_period_us` (a quota of -1 is none). A quota of 1.5 CPUs gives 2 (rounded up: the half
CPU is still there to use), and never more than the CPUs the process may run on
(`os.sched_getaffinity`, else `os.cpu_count()`), which are the answer when there is no quota.
Files are read under `root` so tests can give a fake one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from nimbus_scenarios.errors import UsageError

__all__ = ["MAX_WORKERS", "available_cpus", "cgroup_quota", "parse_workers"]

MAX_WORKERS = 64
"""The most worker processes one `run` starts: each holds its own event loop, connection pool
and statistics (about 60 MB), and a pod with more CPUs than this is better sharded."""

_V2 = ("sys/fs/cgroup/cpu.max",)
_V1 = ("sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _ceil_ratio(quota: str, period: str) -> int | None:
    """ceil(quota / period), at least 1; None for no quota or numbers that are not."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None  # -1 (v1) is no quota; 0 is no sensible one
    return max(1, math.ceil(q / p))


def cgroup_quota(root: Path = Path("/")) -> int | None:
    """The cgroup's CPU quota in whole CPUs (rounded up), None when there is none."""
    for name in _V2:
        text = _read(root / name)
        if text is not None:
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                return _ceil_ratio(fields[0], fields[1])
            return None
    for directory in _V1:
        quota = _read(root / directory / "cpu.cfs_quota_us")
        period = _read(root / directory / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ceil_ratio(quota, period)
    return None


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def available_cpus(root: Path = Path("/"), usable: int | None = None) -> int:
    """The CPUs `--workers auto` uses: the cgroup quota, at most the usable CPUs (`usable`,
    default: this process's affinity, else the machine's count)."""
    cpus = _usable_cpus() if usable is None else usable
    quota = cgroup_quota(root)
    return min(MAX_WORKERS, cpus if quota is None else min(quota, cpus))


def parse_workers(text: str, *, root: Path = Path("/"), usable: int | None = None) -> int:
    """`--workers N|auto` as a number of processes; UsageError (exit 2) for anything else."""
    if text.strip().lower() == "auto":
        return available_cpus(root, usable)
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise UsageError(
            f"--workers must be a whole number of processes from 1 to {MAX_WORKERS}, or auto "
            f"(the CPUs of the cgroup quota, else of the machine); got {text!r}"
        )
    return count
