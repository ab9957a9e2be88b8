"""`--workers auto`: the cgroup's CPU quota (v2, then v1), else the usable CPUs; read from a
fake root directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.runner.cpus import MAX_WORKERS, available_cpus, cgroup_quota, parse_workers


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="ascii")


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("200000 100000", 2),
        ("150000 100000", 2),  # 1.5 CPUs: the half is still there to use
        ("50000 100000", 1),  # 500m: at least one process
        ("400000 100000", 4),
        ("max 100000", None),
        ("garbage", None),
        ("0 100000", None),
    ],
)
def test_cgroup_v2_cpu_max(tmp_path: Path, text: str, quota: int | None) -> None:
    """cpu.max is "QUOTA PERIOD" (or "max PERIOD": no quota)."""
    _write(tmp_path, "sys/fs/cgroup/cpu.max", text)
    assert cgroup_quota(tmp_path) == quota


@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_cfs_quota(tmp_path: Path, directory: str) -> None:
    """v1: cfs_quota_us / cfs_period_us rounded up; -1 is no quota."""
    _write(tmp_path, f"sys/fs/cgroup/{directory}/cpu.cfs_quota_us", "300000")
    _write(tmp_path, f"sys/fs/cgroup/{directory}/cpu.cfs_period_us", "100000")
    assert cgroup_quota(tmp_path) == 3
    _write(tmp_path, f"sys/fs/cgroup/{directory}/cpu.cfs_quota_us", "-1")
    assert cgroup_quota(tmp_path) is None


def test_v2_wins_over_v1(tmp_path: Path) -> None:
    """A host with both: the unified hierarchy's cpu.max is the one that applies."""
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "100000 100000")
    _write(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "800000")
    _write(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000")
    assert cgroup_quota(tmp_path) == 1


def test_auto_is_the_quota_at_most_the_usable_cpus(tmp_path: Path) -> None:
    """auto: the quota, capped by the CPUs the process may run on; those without a quota."""
    assert parse_workers("auto", root=tmp_path, usable=6) == 6  # no cgroup files: the CPUs
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "200000 100000")
    assert parse_workers("auto", root=tmp_path, usable=6) == 2  # limits.cpu: 2
    assert parse_workers("AUTO", root=tmp_path, usable=1) == 1  # a quota above the CPUs
    assert available_cpus(tmp_path / "none", usable=500) == MAX_WORKERS


def test_numbers(tmp_path: Path) -> None:
    """A whole number from 1 to MAX_WORKERS is taken as it is; anything else is refused."""
    assert parse_workers("3", root=tmp_path) == 3
    for bad in ("0", "-2", "x", "", "2.0", str(MAX_WORKERS + 1)):
        with pytest.raises(UsageError, match="--workers must be a whole number"):
            parse_workers(bad, root=tmp_path)


def test_the_quota_is_read_on_the_process_s_own_cgroup_path(tmp_path: Path) -> None:
    """A process in a child cgroup gets the smallest quota from its cgroup up to the root."""
    _write(tmp_path, "proc/self/cgroup", "0::/jobs/load/pod-a")
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "max 100000")
    _write(tmp_path, "sys/fs/cgroup/jobs/cpu.max", "400000 100000")
    _write(tmp_path, "sys/fs/cgroup/jobs/load/pod-a/cpu.max", "150000 100000")
    assert cgroup_quota(tmp_path) == 2  # its own 1.5 CPUs, under the parent's 4
    _write(tmp_path, "sys/fs/cgroup/jobs/load/pod-a/cpu.max", "max 100000")
    assert cgroup_quota(tmp_path) == 4  # no quota of its own: the parent's applies
    _write(tmp_path, "proc/self/cgroup", "0::/elsewhere/not/mounted")
    assert cgroup_quota(tmp_path) is None  # a path the mount does not show: its root


def test_v1_reads_the_cpu_controller_s_line(tmp_path: Path) -> None:
    """v1: the path of the line naming `cpu` (alone or with cpuacct), not another one's."""
    _write(tmp_path, "proc/self/cgroup", "5:memory:/other\n3:cpu,cpuacct:/bench/pod\n0::/")
    base = "sys/fs/cgroup/cpu,cpuacct"
    _write(tmp_path, f"{base}/cpu.cfs_quota_us", "-1")
    _write(tmp_path, f"{base}/cpu.cfs_period_us", "100000")
    _write(tmp_path, f"{base}/bench/pod/cpu.cfs_quota_us", "50000")
    _write(tmp_path, f"{base}/bench/pod/cpu.cfs_period_us", "100000")
    assert cgroup_quota(tmp_path) == 1
    _write(tmp_path, f"{base}/bench/pod/cpu.cfs_quota_us", "250000")
    assert cgroup_quota(tmp_path) == 3
    _write(tmp_path, "proc/self/cgroup", "3:cpu,cpuacct:/../../etc")
    assert cgroup_quota(tmp_path) is None  # dot-dot parts are ignored: only the root is read


_V1_CPU = Path("/sys/fs/cgroup/cpu")


@pytest.mark.skipif(
    not (_V1_CPU / "cpu.cfs_quota_us").exists() or not os.access(_V1_CPU, os.W_OK),
    reason="needs a writable cgroup v1 cpu controller (root)",
)
def test_auto_in_a_real_child_cgroup_is_its_quota() -> None:
    """A real process in a real cgroup of 1.5 CPUs: `--workers auto` counts 2."""
    pod = _V1_CPU / f"nimbus-test-{os.getpid()}"
    pod.mkdir()
    try:
        (pod / "cpu.cfs_period_us").write_text("100000")
        (pod / "cpu.cfs_quota_us").write_text("150000")
        code = (
            "import os, sys;"
            f"open('{pod}/cgroup.procs', 'w').write(str(os.getpid()));"
            "from nimbus_scenarios.runner.cpus import parse_workers;"
            "print(parse_workers('auto', usable=64))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert out.stdout.strip() == "2"
    finally:
        for _ in range(50):
            try:
                pod.rmdir()
                break
            except OSError:
                time.sleep(0.1)
