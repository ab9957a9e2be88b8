"""The console: the end-of-run summary (from the results document) and `--monitor` progress.

`--monitor` is one more run listener: a status line every 10 s when stdout is not a terminal
(what `kubectl logs -f` shows), a live rich panel when it is.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from nimbus_scenarios.events import RunHandler

__all__ = ["LineMonitor", "RichMonitor", "format_summary", "make_monitor"]

_MARKS = {"passed": "PASS", "failed": "FAIL", "not_judged": "N/J "}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value < 10_000 else f"{value / 1000:.1f}s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_summary(document: dict[str, Any], results_path: str | None = None) -> str:
    """The end-of-run summary: verdict, phases, expectations, where the results are."""
    lines = [
        (
            f"scenario {document['scenario']}  run {document['run_id']}  "
            f"verdict {str(document['verdict']).upper()} (exit {document['exit_code']})"
        )
    ]
    if document.get("error"):
        lines.append(f"error: {document['error']}")
    abort = document.get("abort")
    if abort:
        lines.append(f"aborted at +{abort['at_s']:.0f}s: {abort['reason']}")
    rows = [("phase", "target/s", "achieved/s", "sent", "dropped", "failed", "p50", "p95", "p99")]
    for phase in document["phases"]:
        if not phase.get("ran"):
            rows.append(
                (phase["name"], _rate(phase["target_rate"]), "not run", "", "", "", "", "", "")
            )
            continue
        latency = phase.get("latency_ms") or {}
        rows.append(
            (
                phase["name"],
                _rate(phase["target_rate"]),
                _rate(phase["achieved_rate"]),
                str(phase["sent"]),
                str(phase["dropped"]),
                str(phase["failed"]),
                _ms(latency.get("p50")),
                _ms(latency.get("p95")),
                _ms(latency.get("p99")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    if document["expectations"]:
        lines.append("")
        lines.append("expectations:")
    for e in document["expectations"]:
        mark = _MARKS.get(e["verdict"], e["verdict"])
        detail = e.get("detail") or ""
        met = (
            f" (run offset {e['met_at_s']:.0f}s)"
            if e.get("met_at_s") is not None and e["kind"] == "replicas"
            else ""
        )
        lines.append(f"  {mark}  {e['scope']}: {e['text']}  {detail}{met}".rstrip())
    for kill in document.get("kills") or []:
        pods = ", ".join(kill.get("pods") or []) or kill.get("error", "")
        lines.append(f"kill at +{kill['at_s']:.0f}s: {pods}")
    if document.get("trace_id"):
        lines.append(f"trace id: {document['trace_id']}")
    if results_path:
        lines.append(f"results: {results_path}")
    return "\n".join(lines)


def _status_line(status: dict[str, Any]) -> str:
    replicas = (
        f"replicas {status['ready']}/{status['desired']}" if status.get("ready") is not None else ""
    )
    states = status.get("expectations") or []
    open_count = sum(1 for _, s in states if s == "open")
    passed = sum(1 for _, s in states if s == "passed")
    failed = sum(1 for _, s in states if s == "failed")
    where = status.get("phase") or status.get("stage")
    fields = [
        f"[{_clock(status['elapsed_s'])} +{_clock(status['remaining_s'])} left] {where}",
        f"target {status['target_rate']:.1f}/s",
        f"achieved {status['achieved_rate']:.0f}/s",
        f"in flight {status['in_flight']}",
        f"p95 {_ms(status.get('p95_ms'))}",
        f"errors {status['errors_pct']:.1f}%",
        f"dropped {status['dropped']}",
        replicas,
        f"expectations {passed} passed, {failed} failed, {open_count} open",
    ]
    return "  ".join(field for field in fields if field)


class LineMonitor(RunHandler):
    """A status line per progress event (every 10 s by default), for logs."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def progress(self, status: dict[str, Any]) -> None:
        print(_status_line(status), file=self.stream, flush=True)

    def phase_started(self, phase: Any, at_s: float) -> None:
        print(
            f"[{_clock(at_s)}] phase {phase.name}: {phase.shape_text}", file=self.stream, flush=True
        )

    def aborted(self, reason: str, at_s: float) -> None:
        print(f"[{_clock(at_s)}] aborting: {reason}", file=self.stream, flush=True)


class RichMonitor(RunHandler):
    """A live panel on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.started = False

    def progress(self, status: dict[str, Any]) -> None:
        from rich.table import Table

        if not self.started:
            self.live.start()
            self.started = True
        table = Table(show_header=False, box=None)
        table.add_row("phase", str(status.get("phase") or status.get("stage")))
        table.add_row(
            "time", f"{_clock(status['elapsed_s'])} (+{_clock(status['remaining_s'])} left)"
        )
        table.add_row(
            "rate",
            f"target {status['target_rate']:.1f}/s   achieved {status['achieved_rate']:.0f}/s",
        )
        table.add_row("in flight", str(status["in_flight"]))
        table.add_row("p95", _ms(status.get("p95_ms")))
        table.add_row("errors", f"{status['errors_pct']:.1f}%  (dropped {status['dropped']})")
        if status.get("ready") is not None:
            table.add_row("replicas", f"{status['ready']} ready / {status['desired']} desired")
        for text, state in status.get("expectations") or []:
            table.add_row(state, text)
        self.live.update(table, refresh=True)

    def run_ended(self, document: dict[str, Any]) -> None:
        if self.started:
            self.live.stop()


def make_monitor(stream: IO[str] | None = None) -> RunHandler:
    """A rich panel on a terminal, status lines otherwise."""
    target = stream or sys.stderr
    if target.isatty():
        return RichMonitor()
    return LineMonitor(target)
