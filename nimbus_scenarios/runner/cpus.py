"""How many worker processes `run --workers auto` starts: the CPUs this process may use.

The cgroup's CPU quota when one is set (a container's `limits.cpu`): cgroup v2's `cpu.max`
("QUOTA PERIOD", or "max PERIOD" for none), else cgroup v1's `cpu.cfs_quota_us` and
`cpu.cfs_period_us` (a quota of -1 is none), the smallest on the process's own cgroup path
(`/proc/self/cgroup`) up to the root, so a process put in a limited child cgroup (a
`systemd-run -p CPUQuota=` unit, a nested container) gets its own limit. A quota of 1.5 CPUs
gives 2 (rounded up: the half CPU is still there to use), and never more than the CPUs the
process may run on (`os.sched_getaffinity`, else `os.cpu_count()`), which are the answer when
there is no quota.
Files are read under `root` so tests can give a fake one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from nimbus_scenarios.errors import UsageError

__all__ = ["MAX_WORKERS", "available_cpus", "cgroup_quota", "own_cgroups", "parse_workers"]

MAX_WORKERS = 64
"""The most worker processes one `run` starts: each holds its own event loop, connection pool
and statistics (about 60 MB), and a pod with more CPUs than this is better sharded."""

_V2 = "sys/fs/cgroup"
_V1 = ("sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu")
_MAX_DEPTH = 32


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    """quota / period in CPUs; None for no quota or numbers that are not."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None  # -1 (v1) is no quota; 0 is no sensible one
    return q / p


def own_cgroups(root: Path = Path("/")) -> dict[str, str]:
    """This process's cgroup paths from `/proc/self/cgroup`: `""` for the unified (v2)
    hierarchy, else each v1 controller's name; empty when the file cannot be read."""
    text = _read(root / "proc/self/cgroup")
    paths: dict[str, str] = {}
    for line in (text or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        for name in controllers.split(",") if controllers else [""]:
            paths.setdefault(name, path)
    return paths


def _up_from(base: Path, own: str) -> list[Path]:
    """`base/own` and each of its parents up to `base` itself, deepest first."""
    parts = [p for p in own.split("/") if p not in ("", ".", "..")][:_MAX_DEPTH]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _quotas_v2(base: Path, own: str) -> list[float] | None:
    """Every quota along the v2 path (`cpu.max`); None when no `cpu.max` is there at all."""
    found, quotas = False, []
    for directory in _up_from(base, own):
        text = _read(directory / "cpu.max")
        if text is None:
            continue
        found = True
        fields = text.split()
        if len(fields) == 2 and fields[0] != "max":
            cpus = _ratio(fields[0], fields[1])
            if cpus is not None:
                quotas.append(cpus)
    return quotas if found else None


def _quotas_v1(base: Path, own: str) -> list[float] | None:
    """Every quota along a v1 cpu path (`cpu.cfs_quota_us` / `cpu.cfs_period_us`)."""
    found, quotas = False, []
    for directory in _up_from(base, own):
        quota = _read(directory / "cpu.cfs_quota_us")
        period = _read(directory / "cpu.cfs_period_us")
        if quota is None or period is None:
            continue
        found = True
        cpus = _ratio(quota, period)
        if cpus is not None:
            quotas.append(cpus)
    return quotas if found else None


def cgroup_quota(root: Path = Path("/")) -> int | None:
    """The CPU quota that applies to this process, in whole CPUs (rounded up, at least 1), None
    when there is none: the smallest quota on its own cgroup's path (`/proc/self/cgroup`) from
    its cgroup up to the hierarchy's root; a path the mount does not show (a container whose
    mount is its own cgroup) leaves the mount's root. cgroup v2 when it has `cpu.max`, else v1."""
    own = own_cgroups(root)
    quotas = _quotas_v2(root / _V2, own.get("", "/"))
    if quotas is None:
        for directory in _V1:
            quotas = _quotas_v1(root / directory, own.get("cpu", "/"))
            if quotas is not None:
                break
    if not quotas:
        return None
    return max(1, math.ceil(min(quotas) - 1e-9))


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
