"""`python -m nimbus_scenarios`: the same entry point as the console script."""

from __future__ import annotations

import sys

from nimbus_scenarios.entry import entry

sys.exit(entry())
