"""The console: the end-of-run summary (from the results document) and `--monitor` progress.

`format_summary(results)` is the text `run` and `report` print at the end: the verdict, a row
per phase, a row per request template over the whole run (when there are several, or failures),
the expectations, and a line per scale event when the run recorded why it scaled. `--monitor` is one
more run listener (`events.RunHandler`): a status line per progress event when stderr is not a
terminal (what `kubectl logs -f` shows), a live rich panel when it is (`make_monitor` picks).

Its place: `report`, reading only `RunResults` and the typed run events. Values are written in
plain ASCII (`-` for nothing), since these lines end up in logs and CI output.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Final

from nimbus_scenarios.engine.dispatch import ok_statuses
from nimbus_scenarios.events import Progress, RunHandler, WindowState
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.model import PhasePlan
from nimbus_scenarios.report._format import finite, start_lines, verdict_mark
from nimbus_scenarios.results.model import PhaseResult, RequestResult, RunResults
from nimbus_scenarios.scaling_words import metric_text, scaling_lines

if TYPE_CHECKING:
    from rich.live import Live

__all__ = [
    "LineMonitor",
    "RichMonitor",
    "autoscaler_metrics",
    "format_summary",
    "make_monitor",
    "status_line",
]


def _clock(seconds: float | None) -> str:
    value = finite(seconds)
    if value is None:
        return "-"
    whole = max(round(value), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _ms(value: float | None) -> str:
    number = finite(value)
    if number is None:
        return "-"
    return f"{number:.0f}ms" if number < 10_000 else f"{number / 1000:.1f}s"


def _rate(value: float | None) -> str:
    number = finite(value)
    return "-" if number is None else f"{number:.1f}"


def _phase_row(phase: PhaseResult) -> tuple[str, ...]:
    if not phase.ran:
        return (phase.name, _rate(phase.target_rate), "not run", "", "", "", "", "", "")
    load = phase.load
    latency = load.latency_ms
    return (
        phase.name,
        _rate(phase.target_rate),
        _rate(phase.achieved_rate),
        str(load.sent),
        str(load.dropped),
        str(load.failed),
        _ms(None if latency is None else latency.p50),
        _ms(None if latency is None else latency.p95),
        _ms(None if latency is None else latency.p99),
    )


def _failures(request: RequestResult, ok: tuple[bool, ...]) -> str:
    """``4 (500 x3, timeout x1)``: the failures, by failing status and by error kind."""
    parts = [
        f"{status} x{count}"
        for status, count in request.status_counts.items()
        if count and not (0 <= status < len(ok) and ok[status])
    ]
    parts.extend(f"{kind} x{count}" for kind, count in request.errors_by_kind.items() if count)
    return (
        f"{request.failed} ({', '.join(parts)})"
        if request.failed and parts
        else str(request.failed)
    )


_REQUEST_HEADER: Final = (
    "request",
    "sent",
    "failed",
    "p50 from schedule",
    "p95 from schedule",
    "p99 from schedule",
    "max from schedule",
)


def _request_rows(results: RunResults) -> list[tuple[str, ...]]:
    """The whole run's rows per request template; none when one template did it all and none
    failed (its row would repeat the phase table)."""
    requests = results.totals.requests
    if len(requests) < 2 and not any(r.failed for r in requests):
        return []
    templates = results.plan.templates
    rows: list[tuple[str, ...]] = [_REQUEST_HEADER]
    for request in requests:
        template = templates.get(request.name)
        ok = ok_statuses(template.ok_status if template is not None else ("2xx", "3xx"))
        latency = request.latency_ms
        rows.append(
            (
                request.name,
                str(request.sent),
                _failures(request, ok),
                _ms(None if latency is None else latency.p50),
                _ms(None if latency is None else latency.p95),
                _ms(None if latency is None else latency.p99),
                _ms(None if latency is None else latency.max),
            )
        )
    return rows


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def format_summary(results: RunResults, results_path: str | None = None) -> str:
    """The end-of-run summary: verdict, phases, expectations, kills, where the results are."""
    verdict = f"verdict {results.verdict.value.upper()} (exit {int(results.exit_code)})"
    lines = [f"scenario {results.scenario}  run {results.run_id}  {verdict}"]
    if results.error:
        lines.append(f"error: {results.error}")
    abort = results.abort
    if abort is not None:
        at = finite(abort.at_s)
        where = "" if at is None else f" at +{at:.0f}s"
        lines.append(f"aborted{where}: {abort.reason}")
    header = ("phase", "target/s", "achieved/s", "sent", "dropped", "failed", "p50", "p95", "p99")
    lines.append("")
    lines.extend(_table([header, *(_phase_row(p) for p in results.phases)]))
    request_rows = _request_rows(results)
    if request_rows:
        lines.append("")
        lines.extend(_table(request_rows))
    lines.extend(start_lines(results))
    if results.expectations:
        lines.append("")
        lines.append("expectations:")
    for judgement in results.expectations:
        e = judgement.expectation
        met = judgement.met_at_s
        # Only a window on the run has a run offset; `before`/`after` count from their stage.
        on_run = e.kind is ExpectationKind.REPLICAS and judgement.window_s is not None
        when = f" (run offset {met:.0f}s)" if met is not None and on_run else ""
        mark = verdict_mark(judgement.verdict)
        lines.append(f"  {mark}  {e.scope}: {e.text}  {judgement.detail}{when}".rstrip())
    for kill in results.kills:
        pods = ", ".join(kill.pods or ()) or kill.error or ""
        lines.append(f"kill at +{kill.at_s:.0f}s: {pods}")
    if results.scaling is not None:
        lines.append("")
        lines.extend(scaling_lines(results.scaling))
    for note in results.notes:
        lines.append(f"note: {note}")
    if results.event_loop:
        lines.append(f"event loop: {results.event_loop}")
    if results.trace_id:
        lines.append(f"trace id: {results.trace_id}")
    if results_path:
        lines.append(f"results: {results_path}")
    return "\n".join(lines)


def _where(status: Progress) -> str:
    return status.phase or status.stage.value


def request_errors(status: Progress) -> str:
    """``errors: work 12 (500 x10, timeout x2), auth 1 (401 x1)``: the templates that failed
    so far and how; empty while none did."""
    if not status.request_errors:
        return ""
    parts = []
    for request in status.request_errors:
        causes = ", ".join(f"{cause} x{n}" for cause, n in request.causes)
        parts.append(f"{request.name} {request.failed}" + (f" ({causes})" if causes else ""))
    return "errors: " + ", ".join(parts)


def autoscaler_metrics(status: Progress) -> str:
    """``rps per replica 7.2/5, cpu 40%/80%``: each autoscaler metric against its target, from
    its latest status; empty when there is none."""
    return ", ".join(metric_text(metric) for metric in status.metrics)


def status_line(status: Progress) -> str:
    """One progress event as a line: time, phase, rates, latency, errors, replicas, the
    autoscaler's metrics against their targets, windows, and the failures per request when
    any."""
    replicas = (
        f"replicas {status.ready}/{status.desired if status.desired is not None else '-'}"
        if status.ready is not None
        else ""
    )
    windows = (
        f"expectations {status.count(WindowState.PASSED)} passed, "
        f"{status.count(WindowState.FAILED)} failed, {status.count(WindowState.OPEN)} open"
    )
    fields = [
        f"[{_clock(status.elapsed_s)} +{_clock(status.remaining_s)} left] {_where(status)}",
        f"target {status.target_rate:.1f}/s",
        f"achieved {status.achieved_rate:.0f}/s",
        f"in flight {status.in_flight}",
        f"p95 {_ms(status.p95_ms)}",
        f"errors {status.errors_pct:.1f}%",
        f"dropped {status.dropped}",
        replicas,
        autoscaler_metrics(status),
        windows,
        request_errors(status),
    ]
    return "  ".join(field for field in fields if field)


class LineMonitor(RunHandler):
    """A status line per progress event (every 10 s by default), for logs."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def progress(self, status: Progress) -> None:
        """Print the status line."""
        self._print(status_line(status))

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """Print the phase and its shape."""
        self._print(f"[{_clock(at_s)}] phase {phase.name}: {phase.shape_text}")

    def aborted(self, reason: str, at_s: float) -> None:
        """Print why the run stops."""
        self._print(f"[{_clock(at_s)}] aborting: {reason}")


class RichMonitor(RunHandler):
    """A live panel on a terminal, redrawn on each progress event."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live: Live = Live(console=self.console, auto_refresh=False, transient=False)
        self.started = False

    def progress(self, status: Progress) -> None:
        """Redraw the panel."""
        from rich.table import Table

        if not self.started:
            self.live.start()
            self.started = True
        table = Table(show_header=False, box=None)
        table.add_row("phase", _where(status))
        table.add_row("time", f"{_clock(status.elapsed_s)} (+{_clock(status.remaining_s)} left)")
        table.add_row(
            "rate", f"target {status.target_rate:.1f}/s   achieved {status.achieved_rate:.0f}/s"
        )
        table.add_row("in flight", str(status.in_flight))
        table.add_row("p95", _ms(status.p95_ms))
        table.add_row("errors", f"{status.errors_pct:.1f}%  (dropped {status.dropped})")
        if status.request_errors:
            table.add_row("by request", request_errors(status).removeprefix("errors: "))
        if status.ready is not None:
            desired = "-" if status.desired is None else str(status.desired)
            table.add_row("replicas", f"{status.ready} ready / {desired} desired")
        if status.metrics:
            table.add_row("autoscaler", autoscaler_metrics(status))
        for window in status.windows:
            table.add_row(window.state.value, window.text)
        self.live.update(table, refresh=True)

    def run_ended(self, results: RunResults) -> None:
        """Stop redrawing; the panel stays on screen above the summary."""
        if self.started:
            self.live.stop()
            self.started = False


def make_monitor(stream: IO[str] | None = None) -> RunHandler:
    """A rich panel on a terminal, status lines otherwise."""
    target = stream or sys.stderr
    if target.isatty():
        return RichMonitor()
    return LineMonitor(target)
