"""Formatting shared by the reports: durations, offsets, rates and counts for people, and an
expectation's values in its unit, read from the typed plan (`Comparator` and a float), never
parsed back out of text.

Its place: the bottom of the `report` package. `timeline`, `html`, `junit` and `console` import
it; it imports only the results and plan models. Every function is total: None, NaN and
infinities come out as a dash (or `nothing`), never as an exception, since a report must render
whatever a run recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from nimbus_scenarios.engine.records import DropKind
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import RunResults, RunVerdict, Verdict
from nimbus_scenarios.scaling_words import finite

_LATE_START = DropKind.LATE_START.value

__all__ = [
    "DASH",
    "comparator_symbol",
    "count",
    "duration",
    "exit_meaning",
    "expectation_value",
    "expected_value",
    "finite",
    "millis",
    "offset",
    "printable",
    "rate",
    "start_lines",
    "verdict_mark",
    "verdict_word",
]

DASH: Final = "\u2013"
"""An en dash: the value is missing."""


def printable(text: str) -> str:
    """`text` with lone surrogates (which JSON strings may carry) replaced, so it encodes."""
    return text.encode("utf-8", "replace").decode("utf-8")


def duration(seconds: float | None) -> str:
    """A duration for people: `3.65ms`, `191ms`, `4.61s`, `2m05s`, `1h02m`."""
    value = finite(seconds)
    if value is None:
        return DASH
    if value < 0:
        return "-" + duration(-value)
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:.3g}ms"
    if value < 100:
        return f"{value:.3g}s"
    whole = round(value)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def millis(value_ms: float | None) -> str:
    """A latency given in milliseconds, as a duration (`191ms`, `3.44s`)."""
    value = finite(value_ms)
    return DASH if value is None else duration(value / 1000.0)


def offset(seconds: float | None) -> str:
    """A run offset: `+12.3s`, `-4.2s`, `+2m05s`."""
    value = finite(seconds)
    if value is None:
        return DASH
    sign = "+" if value >= 0 else "-"
    if abs(value) < 100:
        return f"{sign}{abs(value):.1f}s"
    return sign + duration(abs(value))


def rate(value: float | None) -> str:
    """Requests per second: one decimal below 100, grouped whole numbers above."""
    number = finite(value)
    if number is None:
        return DASH
    return f"{number:.1f}" if number < 100 else f"{number:,.0f}"


def count(value: int | None) -> str:
    """A count with thousands grouped (`12,345`)."""
    return DASH if value is None else f"{value:,}"


_SYMBOLS: Final[Mapping[Comparator, str]] = {
    Comparator.LT: "<",
    Comparator.LE: "\u2264",
    Comparator.GT: ">",
    Comparator.GE: "\u2265",
    Comparator.EQ: "=",
    Comparator.NE: "\u2260",
}


def comparator_symbol(comparator: Comparator) -> str:
    """The comparator as people write it in prose (`≤`, `≥`, `=`, `≠`)."""
    return _SYMBOLS[comparator]


def expectation_value(kind: ExpectationKind, value: float | None) -> str:
    """An expectation's observed or expected value in its kind's unit: latency, `reaction` and
    `pod startup` in seconds as a duration, errors and achieved as percentages, replicas as a
    count, `succeeds` in words."""
    number = finite(value)
    if number is None:
        return "nothing"
    match kind:
        case ExpectationKind.LATENCY | ExpectationKind.REACTION | ExpectationKind.POD_STARTUP:
            return duration(number)
        case ExpectationKind.ERRORS | ExpectationKind.ACHIEVED:
            return f"{number:.3g}%"
        case ExpectationKind.SUCCEEDS:
            return "succeeded" if number >= 1 else "did not succeed"
        case _:
            return f"{number:g}"


def expected_value(expectation: ExpectationPlan, *, symbol: bool = True) -> str:
    """What the expectation asks for, in its unit: `< 2s`, `≥ 95%` (`>= 95%` with
    `symbol=False`, for plain-text readers), or `succeeds`."""
    if expectation.kind is ExpectationKind.SUCCEEDS:
        return "succeeds"
    comparator = expectation.comparator
    shown = comparator_symbol(comparator) if symbol else comparator.value
    return f"{shown} {expectation_value(expectation.kind, expectation.value)}"


_VERDICT_WORDS: Final[Mapping[str, str]] = {Verdict.NOT_JUDGED: "not judged"}
_VERDICT_MARKS: Final[Mapping[Verdict, str]] = {
    Verdict.PASSED: "PASS",
    Verdict.FAILED: "FAIL",
    Verdict.NOT_JUDGED: "N/J ",
}


def verdict_word(verdict: Verdict | RunVerdict) -> str:
    """A verdict in words (`passed`, `not judged`, `aborted`)."""
    return _VERDICT_WORDS.get(verdict.value, verdict.value)


def verdict_mark(verdict: Verdict) -> str:
    """An expectation's verdict as a four-column mark for plain text (`PASS`, `FAIL`, `N/J `)."""
    return _VERDICT_MARKS[verdict]


_EXIT_MEANINGS: Final[Mapping[ExitCode, str]] = {
    ExitCode.OK: "every expectation passed",
    ExitCode.FAILED: "an expectation failed",
    ExitCode.USAGE: "usage error or invalid scenario",
    ExitCode.ABORTED: "aborted",
    ExitCode.INFRASTRUCTURE: "infrastructure error, not judged, or a partial merge",
}


def exit_meaning(code: ExitCode) -> str:
    """What an exit code says about the run (`1` -> `an expectation failed`)."""
    return _EXIT_MEANINGS[code]


def start_lines(results: RunResults) -> list[str]:
    """When the phases started against the common start (a shard's lateness, or a merged
    run's skew), and what a late start dropped, as lines of text (none without either)."""
    lines = []
    skew = results.start_skew
    if skew is not None:
        lines.append(
            f"start skew {skew.skew_s:.3f}s between shards; latest shard {skew.latest_shard}, "
            f"{skew.latest_late_s:.3f}s after the common start"
        )
    elif results.start_late_s is not None:
        lines.append(f"started {results.start_late_s:.3f}s after the common start")
    late = results.totals.dropped_by_kind.get(_LATE_START, 0)
    if late:
        where = ", ".join(
            f"{p.name} {p.load.dropped_by_kind[_LATE_START]}"
            for p in results.phases
            if p.load.dropped_by_kind.get(_LATE_START)
        )
        lines.append(f"dropped for a late start: {late} ({where}), never sent")
    return lines
