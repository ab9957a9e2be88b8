"""The runner: the one place that owns the event loop and the side effects of a run.

`stages` drives pre-flight -> before -> phases -> pending windows -> after -> cleanup;
`probes` checks the `before`/`after` hypotheses; `load` plays the phases and drains them;
`monitor` keeps listeners informed; `judging` turns what happened into the results; `context`
is what they share. Every wait goes through the `Clock` passed in.
"""

from __future__ import annotations

from nimbus_scenarios.runner.options import RunOptions, RunOutcome
from nimbus_scenarios.runner.stages import run_scenario

__all__ = ["RunOptions", "RunOutcome", "run_scenario"]
