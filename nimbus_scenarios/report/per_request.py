"""The HTML report's per-request section, as data: whether it is shown, and each scope's
failures by request template and by failing status or error kind.

Its place: beside `report.page`, which puts `per_request(results)` on the `Page`; the latency
chart of the section is `report.charts`' (one p95 line per template). The section is shown when
the run had more than one request template or any template failed (as the console's per-request
table): for one template that never failed it would repeat the phase table.

A status counts as a failure when the template's `ok` statuses (from the embedded plan; 2xx and
3xx when the plan does not name the template) do not hold it; error kinds (timeout, connect,
reset, ...) are failures with no response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nimbus_scenarios.engine.dispatch import ok_statuses
from nimbus_scenarios.report._format import DASH, count
from nimbus_scenarios.results.model import RequestResult, RunResults

__all__ = ["ErrorRow", "ErrorTable", "PerRequest", "per_request", "shown"]


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One template's failures in a scope: the total, its share of completed requests, and one
    count per column of the table (`DASH` for none)."""

    name: str
    failed: str
    share: str
    cells: tuple[str, ...]
    hot: bool


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """Failures by template over a scope (the run, or one phase): one column per failing
    status and error kind seen there, statuses first."""

    scope: str
    columns: tuple[str, ...]
    rows: tuple[ErrorRow, ...]

    @property
    def quiet(self) -> bool:
        """Whether nothing failed in this scope."""
        return not self.columns and not any(row.hot for row in self.rows)


@dataclass(frozen=True, slots=True)
class PerRequest:
    """The per-request section: failures in the whole run, then in each phase that sent any."""

    total: ErrorTable
    phases: tuple[ErrorTable, ...]


def shown(results: RunResults) -> bool:
    """Whether the per-request section is shown: several templates, or any that failed."""
    requests = results.totals.requests
    return len(requests) > 1 or any(r.failed for r in requests)


def _failures(results: RunResults, request: RequestResult) -> dict[str, int]:
    """The template's failures by status (as text) and by error kind."""
    template = results.plan.templates.get(request.name)
    ok = ok_statuses(template.ok_status if template is not None else ("2xx", "3xx"))
    found = {
        str(status): n
        for status, n in sorted(request.status_counts.items())
        if n and not (0 <= status < len(ok) and ok[status])
    }
    found.update((kind, n) for kind, n in sorted(request.errors_by_kind.items()) if n)
    return found


def _table(results: RunResults, scope: str, requests: Sequence[RequestResult]) -> ErrorTable:
    failures = [_failures(results, r) for r in requests]
    columns: list[str] = []
    for found in failures:
        columns.extend(c for c in found if c not in columns)
    statuses = sorted((c for c in columns if c.isdigit()), key=int)
    columns = [*statuses, *sorted(c for c in columns if not c.isdigit())]
    rows = []
    for request, found in zip(requests, failures, strict=True):
        done = request.succeeded + request.failed
        rows.append(
            ErrorRow(
                name=request.name,
                failed=count(request.failed),
                share=f"{100 * request.failed / done:.1f}%" if done else DASH,
                cells=tuple(count(found[c]) if c in found else DASH for c in columns),
                hot=request.failed > 0,
            )
        )
    return ErrorTable(scope, tuple(columns), tuple(rows))


def per_request(results: RunResults) -> PerRequest | None:
    """The section's tables, or None when it is not shown (see `shown`)."""
    if not shown(results):
        return None
    phases = tuple(
        _table(results, phase.name, phase.load.requests)
        for phase in results.phases
        if phase.load.requests
    )
    return PerRequest(_table(results, "run", results.totals.requests), phases)
