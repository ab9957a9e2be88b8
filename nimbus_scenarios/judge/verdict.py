"""The run's verdict and exit code from its parts: one function for `run` and `merge`.

Precedence, as on the language page: 3 if aborted, else 1 if any expectation failed, else 4 if
the infrastructure failed (pre-flight, or the replica source lost) or any expectation could not
be judged, else 0. (2, a usage error, never gets this far.)
"""

from __future__ import annotations

from collections.abc import Iterable

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.model import Judgement, RunVerdict, Verdict

__all__ = ["VERDICT_OF", "run_verdict"]

VERDICT_OF = {
    ExitCode.OK: RunVerdict.PASSED,
    ExitCode.FAILED: RunVerdict.FAILED,
    ExitCode.ABORTED: RunVerdict.ABORTED,
    ExitCode.INFRASTRUCTURE: RunVerdict.ERROR,
}
"""A run's verdict word for each exit code a judged run can have."""


def run_verdict(
    judgements: Iterable[Judgement], *, aborted: bool, infrastructure: bool
) -> tuple[RunVerdict, ExitCode]:
    """The run's verdict and exit code."""
    verdicts = {j.verdict for j in judgements}
    if aborted:
        code = ExitCode.ABORTED
    elif Verdict.FAILED in verdicts:
        code = ExitCode.FAILED
    elif infrastructure or Verdict.NOT_JUDGED in verdicts:
        code = ExitCode.INFRASTRUCTURE
    else:
        code = ExitCode.OK
    return VERDICT_OF[code], code
