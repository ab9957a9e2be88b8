"""The loopback guard every local listener shares.

Its place: the `local` stage. The reference consumer and the proxy are test fixtures: they must
never be reachable from another machine, so each checks its listen address here first.
"""

from __future__ import annotations

import ipaddress

__all__ = ["check_loopback_host"]


def check_loopback_host(host: str, listener: str = "the reference consumer") -> str:
    """Return the address to bind for `host`, or raise ValueError if it is not loopback.

    `localhost` binds 127.0.0.1 (not whatever the resolver says) so that the check cannot be
    talked round by a hosts file. `listener` names who refuses, for the message.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"{listener} only listens on loopback (127.0.0.0/8, ::1, localhost), "
            f"not {host!r}: it is a test fixture and must never be exposed"
        )
    return str(address)
