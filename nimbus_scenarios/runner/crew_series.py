"""The guards' view of a run that several processes send (`run --workers`).

A guard on errors or latency judges the whole run, so under `--workers` the parent judges it,
and the workers judge none (each sends an interleaved share, and a share is not the whole: with
`send 75% good, 25% broken` and 4 workers one worker can carry every `broken`). Each worker
sends, with every tick, the whole seconds of its series completed since the last
(`RowsTaker.take` makes the `GuardRows`). The parent keeps them (`CrewRows`) and its guards read
its own series with every worker's rows added (`CrewSeries`), up to the last second that every
worker still sending has reported (`CrewRows.frontier`): a window is judged once all of it is
in, never on one process's part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from nimbus_scenarios.engine.histogram import SECOND_SIGNIFICANT_DIGITS, LatencyHistogram
from nimbus_scenarios.engine.series import SecondSeries
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.judge.guards import GuardSeries
from nimbus_scenarios.language.vocabulary import GuardSubject
from nimbus_scenarios.plan.model import GuardPlan
from nimbus_scenarios.runner.counts import GuardRows, SecondRow

__all__ = ["CrewRows", "CrewSeries", "RowsTaker", "rows_of", "series_read"]

_NOT_SERIES = (GuardSubject.REPLICAS, GuardSubject.POD_RESTARTS)


def series_read(guards: Sequence[GuardPlan]) -> tuple[bool, tuple[str, ...]] | None:
    """Which series the guards read: the run's (a guard on errors or latency without `of`)
    and the templates they name; None when no guard reads a series."""
    on_series = [g for g in guards if g.subject not in _NOT_SERIES]
    if not on_series:
        return None
    named = tuple(dict.fromkeys(g.request for g in on_series if g.request is not None))
    return any(g.request is None for g in on_series), named


def rows_of(series: SecondSeries, first: int, upto: int) -> tuple[SecondRow, ...]:
    """The seconds ``first``..``upto - 1`` of ``series`` that have anything in them."""
    rows = []
    succeeded, failed = series.succeeded, series.failed
    for sec in range(max(first, 0), min(upto, len(succeeded))):
        record = series.latency(sec)
        ok, bad = succeeded[sec], failed[sec]
        if ok or bad or record is not None:
            rows.append(SecondRow(sec, ok, bad, None if record is None else record.encoded))
    return tuple(rows)


class RowsTaker:
    """A worker's side: the rows of the seconds it completed since the last take."""

    def __init__(self, run: bool, requests: tuple[str, ...]) -> None:
        self.run = run
        self.requests = requests
        self.next_second = 0

    def take(self, stats: RunStats, now_s: float) -> GuardRows:
        """The seconds below ``now_s``'s that were not taken yet (a second is complete once the
        clock is past it: a request counts in the second it completes)."""
        first, upto = self.next_second, max(math.floor(now_s), self.next_second)
        run = rows_of(stats.series, first, upto) if self.run else ()
        requests = []
        for name in self.requests:
            series = stats.request_series(name)
            if series is not None:
                requests.append((name, rows_of(series, first, upto)))
        self.next_second = upto
        return GuardRows(upto, run, tuple(requests))


class CrewSeries:
    """A series with other processes' rows added to it (`GuardSeries`): what the parent's
    guards read. `own` is the parent's (None while it has none for a template)."""

    def __init__(
        self,
        own: GuardSeries | None,
        rows: Sequence[Mapping[int, SecondRow]],
        significant_digits: int = SECOND_SIGNIFICANT_DIGITS,
    ) -> None:
        self.own = own
        self.rows = rows
        self.significant_digits = significant_digits

    def _added(self, own: Sequence[int], field: str) -> list[int]:
        seconds = max((max(r, default=-1) for r in self.rows), default=-1) + 1
        total = list(own) + [0] * max(seconds - len(own), 0)
        for rows in self.rows:
            for sec, row in rows.items():
                total[sec] += getattr(row, field)
        return total

    @property
    def succeeded(self) -> Sequence[int]:
        """Per second: the parent's and every worker's."""
        return self._added(self.own.succeeded if self.own is not None else (), "succeeded")

    @property
    def failed(self) -> Sequence[int]:
        """Per second: the parent's and every worker's."""
        return self._added(self.own.failed if self.own is not None else (), "failed")

    def latency_histogram(self, sec: int) -> LatencyHistogram | None:
        """Second ``sec``'s latencies from the parent and every worker (None: none)."""
        merged = self.own.latency_histogram(sec) if self.own is not None else None
        for rows in self.rows:
            row = rows.get(sec)
            if row is None or row.latency is None:
                continue
            histogram = LatencyHistogram.decode(row.latency, self.significant_digits)
            if merged is None:
                merged = histogram
            else:
                merged.add(histogram)
        return merged


class CrewRows:
    """The parent's side: each worker's rows by series (None: the run's; else a template's),
    and how far each worker has reported."""

    def __init__(self, workers: Iterable[int]) -> None:
        self.upto: dict[int, int] = dict.fromkeys(workers, 0)
        """The workers still sending, each with the second its rows are complete to."""
        self.rows: dict[int, dict[str | None, dict[int, SecondRow]]] = {w: {} for w in self.upto}

    def add(self, worker: int, rows: GuardRows) -> None:
        """A worker's tick: its newly completed seconds."""
        mine = self.rows.setdefault(worker, {})
        for name, series_rows in [(None, rows.run), *rows.requests]:
            seconds = mine.setdefault(name, {})
            for row in series_rows:
                seconds[row.second] = row
        if worker in self.upto:
            self.upto[worker] = max(self.upto[worker], rows.upto)

    def done(self, worker: int) -> None:
        """The worker sends no more rows (it reported, failed or is gone): it no longer holds
        the guards back."""
        self.upto.pop(worker, None)

    def frontier(self) -> float:
        """The run offset up to which every worker still sending has reported (every second
        below it is in); infinity when none is sending."""
        return float(min(self.upto.values(), default=math.inf))

    def _rows(self, name: str | None) -> list[Mapping[int, SecondRow]]:
        return [mine[name] for mine in self.rows.values() if name in mine]

    def series(self, own: SecondSeries) -> CrewSeries:
        """The run's series: the parent's own with every worker's rows."""
        return CrewSeries(own, self._rows(None), own.significant_digits)

    def request_series(self, name: str, own: SecondSeries | None) -> CrewSeries | None:
        """Template ``name``'s series (None while no process has any of it)."""
        rows = self._rows(name)
        if own is None and not any(rows):
            return None
        return CrewSeries(own, rows)
