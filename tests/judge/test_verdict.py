"""The run's verdict and exit code: one precedence for `run` and `merge`."""

from __future__ import annotations

from functools import cache

import pytest

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.verdict import VERDICT_OF, run_verdict
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, RunVerdict, Verdict


@cache
def expectation() -> ExpectationPlan:
    """Any expectation: the verdict looks only at the judgements' verdicts."""
    text = 'scenario "v" {\n request h = GET "/"\n phase "p" 1s { rate 1/s\n send h }\n'
    plan = compile_source(Source("v.scn", text + " expect errors < 1%\n}\n"))
    return plan.expectations[0]


def judged(*verdicts: Verdict) -> list[Judgement]:
    """Judgements with these verdicts."""
    return [Judgement(expectation(), verdict) for verdict in verdicts]


@pytest.mark.parametrize(
    ("verdicts", "aborted", "infrastructure", "code"),
    [
        ((Verdict.PASSED,), False, False, ExitCode.OK),
        ((), False, False, ExitCode.OK),
        ((Verdict.PASSED, Verdict.FAILED), False, False, ExitCode.FAILED),
        ((Verdict.PASSED, Verdict.NOT_JUDGED), False, False, ExitCode.INFRASTRUCTURE),
        ((Verdict.PASSED,), False, True, ExitCode.INFRASTRUCTURE),
        ((Verdict.FAILED, Verdict.NOT_JUDGED), False, True, ExitCode.FAILED),
        ((Verdict.FAILED,), True, True, ExitCode.ABORTED),
        ((Verdict.PASSED,), True, False, ExitCode.ABORTED),
    ],
)
def test_precedence(
    verdicts: tuple[Verdict, ...], aborted: bool, infrastructure: bool, code: ExitCode
) -> None:
    """Aborted beats failed beats infrastructure or not judged beats passed."""
    verdict, exit_code = run_verdict(
        judged(*verdicts), aborted=aborted, infrastructure=infrastructure
    )
    assert exit_code is code
    assert verdict is VERDICT_OF[code]


def test_every_judged_exit_code_has_one_verdict_word() -> None:
    """0, 1, 3 and 4 each map to their own word; a usage error (2) never gets a verdict."""
    assert {code: str(word) for code, word in VERDICT_OF.items()} == {
        ExitCode.OK: "passed",
        ExitCode.FAILED: "failed",
        ExitCode.ABORTED: "aborted",
        ExitCode.INFRASTRUCTURE: "error",
    }
    assert RunVerdict.ERROR in VERDICT_OF.values()


@pytest.mark.parametrize(
    ("verdicts", "aborted", "infrastructure", "verdict", "code"),
    [
        ((Verdict.PASSED,), False, False, RunVerdict.PARTIAL, ExitCode.INFRASTRUCTURE),
        ((), False, False, RunVerdict.PARTIAL, ExitCode.INFRASTRUCTURE),
        ((Verdict.PASSED, Verdict.NOT_JUDGED), False, False, RunVerdict.PARTIAL, 4),
        ((Verdict.PASSED,), False, True, RunVerdict.ERROR, ExitCode.INFRASTRUCTURE),
        ((Verdict.PASSED, Verdict.FAILED), False, False, RunVerdict.FAILED, ExitCode.FAILED),
        ((Verdict.PASSED,), True, False, RunVerdict.ABORTED, ExitCode.ABORTED),
    ],
)
def test_a_partial_merge_is_never_passed(
    verdicts: tuple[Verdict, ...],
    aborted: bool,
    infrastructure: bool,
    verdict: RunVerdict,
    code: ExitCode,
) -> None:
    """With `partial`, what would pass (or go unjudged) is `partial`, exit 4; a failure is
    still 1, an abort 3, an infrastructure error still `error`."""
    found = run_verdict(
        judged(*verdicts), aborted=aborted, infrastructure=infrastructure, partial=True
    )
    assert found == (verdict, code)
