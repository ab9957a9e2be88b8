"""The process's entry point: the console script and `python -m nimbus_scenarios`.

Before anything else is imported: standard streams that cannot fail (a closed pipe must not
change the exit code) and stop signals that end the command at once with exit 3, even while
the command line itself is still being imported.
"""

from __future__ import annotations

import sys

from nimbus_scenarios import stops, streams

__all__ = ["entry"]


def entry() -> int:
    """Protect the streams, handle stop signals, then run the command line."""
    streams.protect()
    stops.install()
    try:
        from nimbus_scenarios.cli import main
    except stops.Stopped as exc:
        print(f"nimbus-scenarios: stopped: {exc}", file=sys.stderr)
        return exc.exit_code
    return main()
