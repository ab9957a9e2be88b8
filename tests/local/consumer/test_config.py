"""Tests of the consumer's configuration and its loopback guard (local.consumer.config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nimbus_scenarios.local.consumer import ConsumerConfig, check_loopback_host
from tests.local.consumer.support import MODULE, REPO_ROOT


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", "10.0.0.1"])
def test_non_loopback_host_is_refused(host: str) -> None:
    """A host outside 127.0.0.0/8, ::1 and localhost is refused by a ValueError naming loopback."""
    with pytest.raises(ValueError, match="loopback"):
        ConsumerConfig(host=host)


@pytest.mark.parametrize(
    ("host", "bound"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.10.0.2", "127.10.0.2"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
    ],
)
def test_loopback_hosts_are_accepted(host: str, bound: str) -> None:
    """Loopback hosts are accepted and `localhost` binds 127.0.0.1."""
    assert ConsumerConfig(host=host).bind_host == bound
    assert check_loopback_host(host) == bound


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 70000}, "port"),
        ({"ready_delay_s": -1.0}, "ready_delay_s"),
        ({"ready_delay_s": float("nan")}, "ready_delay_s"),
        ({"cpu_scale": 0.0}, "cpu_scale"),
        ({"cpu_scale": 1.5}, "cpu_scale"),
    ],
)
def test_out_of_range_settings_are_refused(changes: dict[str, float], message: str) -> None:
    """A port, readiness delay or CPU scale out of range is refused naming the setting."""
    with pytest.raises(ValueError, match=message):
        ConsumerConfig(**changes)


def test_entry_point_refuses_non_loopback_host() -> None:
    """The entry point exits non-zero with a usage error, not a traceback, for a public host."""
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
