"""`python -m nimbus_scenarios.local.consumer`: how `local.launch` starts a fleet replica."""

from __future__ import annotations

import sys

from nimbus_scenarios.local.consumer.server import main

sys.exit(main())
