"""Validation of `of NAME`, the per-request scope of an expectation or a guard.

`expect p95 of work < 2s` and `abort when errors of work > 50% over 30s` limit a statistic of
requests to one template. NAME must be a request template, and one sent where the statistic is
taken: in a phase, the phase's `send` mix; at scenario level (expectations and guards), the mix
of some phase. Replica counts are about pods, not requests, so they take no `of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.validate.values import Checker

__all__ = ["Sending", "check_scope", "phase_sending", "refuse_scope", "scenario_sending"]


@dataclass(frozen=True, slots=True)
class Sending:
    """The request templates sent where a statistic is taken, in the order first written."""

    names: tuple[str, ...]
    phase: str | None = None
    """The phase's name (`"this phase"` when it has no readable one); None: the whole run."""


def phase_sending(phase: n.Phase, name: str | None) -> Sending:
    """What one phase sends: the templates of its (first) `send` mix."""
    where = f'phase "{name}"' if name is not None and name.strip() else "this phase"
    return Sending(_mix(phase), where)


def scenario_sending(scenario: n.Scenario) -> Sending:
    """What the whole run sends: every template some phase's mix names."""
    names = (name for phase in scenario.phases for name in _mix(phase))
    return Sending(tuple(dict.fromkeys(names)))


def check_scope(check: Checker, request: n.Name | None, sending: Sending | None) -> None:
    """`of NAME` on a statistic of requests: NAME a known template, sent in scope (`sending`;
    None where nothing is sent, in `before`/`after`)."""
    if request is None:
        return
    if check.known_request(request) is None or sending is None:
        return
    if request.text in sending.names:
        return
    if sending.phase is not None:
        check.error(
            f"`{request.text}` is never sent in {sending.phase} "
            f"(it sends {_listed(sending.names)})",
            request.span,
        )
    else:
        check.error(
            f"`{request.text}` is never sent: no phase sends it "
            f"(the phases send {_listed(sending.names)})",
            request.span,
        )


def refuse_scope(check: Checker, request: n.Name | None, subject: str, *, guard: bool) -> None:
    """`of NAME` on a replica subject (`guard`: of `abort when replicas`): an error."""
    if request is None:
        return
    applies = (
        "an `errors` or latency guard"
        if guard
        else "latency (`p50`..`p99`, `max`, `mean`), `errors` or `achieved`"
    )
    check.error(
        f"`{subject}` counts pods, not requests, so it takes no `of {request.text}`; "
        f"`of NAME` limits {applies} to one request template",
        request.span,
    )


def _mix(phase: n.Phase) -> tuple[str, ...]:
    if not phase.sends or phase.sends[0].method is not None:
        return ()
    return tuple(item.request.text for item in phase.sends[0].mix)


def _listed(names: Iterable[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    if not quoted:
        return "nothing"
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]
