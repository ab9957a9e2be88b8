"""The run's verdict and exit code from its parts: one function for `run` and `merge`.

Precedence, as on the language page: 3 if aborted, else 1 if any expectation failed, else 4 if
the infrastructure failed (pre-flight, or the replica source lost) or any expectation could not
be judged, or the results are a partial merge (`merge --allow-partial` with shards missing:
what was judged did not fail, but the run was not judged as a whole), else 0. (2, a usage
error, never gets this far.)
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
"""A run's verdict word for each exit code a judged run can have (a partial merge's exit 4 is
`partial`)."""


def run_verdict(
    judgements: Iterable[Judgement],
    *,
    aborted: bool,
    infrastructure: bool,
    partial: bool = False,
) -> tuple[RunVerdict, ExitCode]:
    """The run's verdict and exit code; a `partial` merge is never passed, and is `partial`
    (exit 4) where a whole run would have passed or gone unjudged."""
    verdicts = {j.verdict for j in judgements}
    if aborted:
        code = ExitCode.ABORTED
    elif Verdict.FAILED in verdicts:
        code = ExitCode.FAILED
    elif partial and not infrastructure:
        return RunVerdict.PARTIAL, ExitCode.INFRASTRUCTURE
    elif infrastructure or Verdict.NOT_JUDGED in verdicts:
        code = ExitCode.INFRASTRUCTURE
    else:
        code = ExitCode.OK
    return VERDICT_OF[code], code
