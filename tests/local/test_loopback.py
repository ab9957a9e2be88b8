"""Tests of the loopback guard shared by the consumer and the proxy (local.loopback)."""

from __future__ import annotations

import pytest

from nimbus_scenarios.local.loopback import check_loopback_host
from nimbus_scenarios.local.proxy import TcpProxy


def test_the_refusal_names_the_listener_and_the_address() -> None:
    """The message says who refuses which address, and why."""
    with pytest.raises(
        ValueError, match=r"^the local proxy only listens on loopback .*'0\.0\.0\.0'"
    ):
        check_loopback_host("0.0.0.0", "the local proxy")


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "::"])
def test_the_proxy_refuses_a_backend_off_loopback(host: str) -> None:
    """A backend address outside loopback is refused as a listen address is."""
    proxy = TcpProxy()
    with pytest.raises(ValueError, match="loopback"):
        proxy.add_backend("far", host, 8000)
