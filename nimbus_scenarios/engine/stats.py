"""What the engine records for every request: counters and HDR latency histograms per phase and
request template.

Its place: the `engine` stage. The pacer, the users and the dispatcher call the hot-path methods
of `PhaseStats` for every request (`schedule`, `mark_sent`, `drop`, `record`), each with the
template's `RequestStats` handle (`PhaseStats.request`, fetched once); the live progress
display reads `RunStats.snapshot`; at the end `RunStats.freeze` hands out a `StatsRecord`
(`engine.records`), which the results embed. `RunStats.thaw` turns a record back into a finished
run so that `merge` can add shards up with exact merged histograms.

Times given to the hot-path methods are seconds (floats) on one monotonic clock, the one
`RunStats.started_at` is on (the run's `Clock`). Latencies are kept in microseconds in
`LatencyHistogram`s (`engine.histogram`):

* ``latency``: from the *scheduled* time to completion. Because an open-model pacer schedules
  independently of responses, this is corrected for coordinated omission: a stalled sender or a
  full connection pool shows up as latency instead of silently thinning the load.
* ``service_time``: from the actual send to completion.

Both time every response, whatever its status (a fast 503 is a response time, as k6's
``http_req_duration`` keeps it), and nothing else: a request with no response (an error kind, or
``cancelled``) is counted (failed, ``errors_by_kind``) but not timed, as the time to a reset is
no response time. So each histogram holds ``sum(status_counts.values())`` values. Counters and
histograms are kept per request template only (`engine.request_stats.RequestStats`): a phase's
are the sum of its templates', so the hot path counts and times each event once (a phase thawed
from a document written before templates had histograms keeps those latencies apart, as
`PhaseStats.rest`). The run-wide per-second series is in `engine.series`; each template's
per-second series over the whole run (`RunStats.request_series`) in `engine.request_series`.
"""

from __future__ import annotations

from nimbus_scenarios.engine.histogram import PHASE_SIGNIFICANT_DIGITS, LatencyHistogram
from nimbus_scenarios.engine.records import (
    STATS_FORMAT,
    Counts,
    DropKind,
    Histograms,
    PhaseRecord,
    Snapshot,
    StatsRecord,
)
from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.engine.request_series import (
    freeze_series,
    merge_template_series,
    request_snapshots,
    series_for,
    series_problems,
    template_counts,
    thaw_series,
)
from nimbus_scenarios.engine.request_stats import RequestStats, add_counts
from nimbus_scenarios.engine.series import COUNTERS, SecondSeries, merge_series
from nimbus_scenarios.errors import ResultsError

__all__ = ["PhaseStats", "RequestStats", "RunStats", "Snapshot", "merge"]

_TIMEOUT = ErrorKind.timeout
_MAX_INFLIGHT = DropKind.MAX_INFLIGHT


class PhaseStats:
    """The per-template counters and latency histograms of one phase of a run.

    The phase's counters (``scheduled``, ``sent``, ... ``errors_by_kind``, ``status_counts``)
    and its two histograms (``latency``, ``service_time``) are sums over its templates,
    computed when read. `request` adds a template the phase has not seen yet, after the others,
    recording into its series in ``templates`` (`RunStats.template_series`).
    """

    __slots__ = ("name", "requests", "rest", "series", "templates")

    def __init__(
        self,
        name: str,
        series: SecondSeries | None = None,
        templates: dict[str, SecondSeries] | None = None,
    ) -> None:
        self.name = name
        self.series = series if series is not None else SecondSeries(0.0)
        self.templates: dict[str, SecondSeries] = {} if templates is None else templates
        self.requests: dict[str, RequestStats] = {}
        """Per request template, in first-seen order."""
        self.rest: tuple[LatencyHistogram, LatencyHistogram] | None = None
        """The latency and service-time histograms of the responses of the templates that are
        not timed (thawed from a document written before templates had histograms)."""

    def request(self, template: str) -> RequestStats:
        """The counters of ``template``, created (after the existing ones) if new."""
        found = self.requests.get(template)
        if found is None:
            series = series_for(self.templates, template, self.series)
            found = self.requests[template] = RequestStats(template, series)
        return found

    # Hot path ------------------------------------------------------------------------------
    # Each call takes the template's `RequestStats` (from `request`), fetched once by the caller:
    # looking it up by name in all three calls cost about 7% more per request (bench/hotpath.py).
    # A handle from another phase would count there: callers take it from this phase.

    def schedule(self, at: float, request: RequestStats, n: int = 1) -> None:
        """``n`` requests of one template were scheduled for time ``at``."""
        request.scheduled += n
        self.series.count_scheduled(at, n)
        request.series.count_scheduled(at, n)

    def mark_sent(self, at: float, request: RequestStats) -> None:
        """A request of one template was handed to the transport at ``at``."""
        request.sent += 1
        self.series.count_sent(at)
        request.series.count_sent(at)

    def drop(
        self, scheduled_at: float, request: RequestStats, kind: DropKind = _MAX_INFLIGHT
    ) -> None:
        """A request scheduled for ``scheduled_at`` was not sent, for reason ``kind``."""
        request.dropped += 1
        kinds = request.dropped_by_kind
        kinds[kind] = kinds.get(kind, 0) + 1
        self.series.count_dropped(scheduled_at)
        request.series.count_dropped(scheduled_at)

    def record(
        self,
        scheduled_at: float,
        sent_at: float,
        done_at: float,
        status: int | None,
        ok: bool,
        request: RequestStats,
        *,
        error_kind: str | None = None,
        truncated: bool = False,
    ) -> None:
        """A sent request completed; ``error_kind`` is counted only when ``ok`` is false.

        A response (``status`` not None) is timed (and counted in ``truncated`` when its body
        was cut); a request with no response (``status`` None) is counted, not timed.
        """
        if ok:
            request.succeeded += 1
        else:
            request.failed += 1
            if error_kind is not None:
                errors = request.errors_by_kind
                errors[error_kind] = errors.get(error_kind, 0) + 1
                if error_kind == _TIMEOUT:
                    request.timed_out += 1
        if status is None:
            self.series.count_unanswered(done_at, ok)
            request.series.count_unanswered(done_at, ok)
            return
        latency_us = int((done_at - scheduled_at) * 1_000_000.0)
        request.latency.record(latency_us)
        request.service_time.record(int((done_at - sent_at) * 1_000_000.0))
        statuses = request.status_counts
        statuses[status] = statuses.get(status, 0) + 1
        if truncated:
            request.truncated += 1
        self.series.count_done(done_at, latency_us, ok)
        request.series.count_done(done_at, latency_us, ok)

    # Views ---------------------------------------------------------------------------------

    @property
    def latency(self) -> LatencyHistogram:
        """From the scheduled time to the response (coordinated-omission corrected), in us,
        over every template; requests with no response are not in it. A new histogram."""
        return self._histogram(0)

    @property
    def service_time(self) -> LatencyHistogram:
        """From the actual send to the response, in us, over every template. A new histogram."""
        return self._histogram(1)

    def _histogram(self, which: int) -> LatencyHistogram:
        total = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
        if self.rest is not None:
            total.add(self.rest[which])
        for request in self.requests.values():
            if request.timed:
                total.add(request.service_time if which else request.latency)
        return total

    def _add_rest(self, latency: LatencyHistogram, service_time: LatencyHistogram) -> None:
        if self.rest is None:
            self.rest = (
                LatencyHistogram(PHASE_SIGNIFICANT_DIGITS),
                LatencyHistogram(PHASE_SIGNIFICANT_DIGITS),
            )
        self.rest[0].add(latency)
        self.rest[1].add(service_time)

    def counts(self) -> Counts:
        """The phase's counters: the sum over its templates."""
        return sum((r.counts() for r in self.requests.values()), Counts())

    @property
    def scheduled(self) -> int:
        return sum(r.scheduled for r in self.requests.values())

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.requests.values())

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.requests.values())

    @property
    def succeeded(self) -> int:
        return sum(r.succeeded for r in self.requests.values())

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.requests.values())

    @property
    def timed_out(self) -> int:
        return sum(r.timed_out for r in self.requests.values())

    @property
    def truncated(self) -> int:
        return sum(r.truncated for r in self.requests.values())

    @property
    def errors_by_kind(self) -> dict[str, int]:
        """Failures by error kind, over every template."""
        total: dict[str, int] = {}
        for request in self.requests.values():
            add_counts(total, request.errors_by_kind)
        return total

    @property
    def status_counts(self) -> dict[int, int]:
        """Responses by status, over every template."""
        total: dict[int, int] = {}
        for request in self.requests.values():
            add_counts(total, request.status_counts)
        return total

    @property
    def dropped_by_kind(self) -> dict[str, int]:
        """Drops by `DropKind`, over every template."""
        total: dict[str, int] = {}
        for request in self.requests.values():
            add_counts(total, request.dropped_by_kind)
        return total

    def accounting_problems(self, *, in_flight: int = 0, pending: int = 0) -> list[str]:
        """What breaks the accounting identities, given what is still pending / in flight.

        Besides the counters' identities, each latency histogram holds one value per response
        (``sum(status_counts.values())``). With nothing pending or in flight, every template is
        checked too (the engine does not track pending and in-flight requests per template).
        """
        where = f"phase {self.name!r}"
        responses = sum(self.status_counts.values())
        problems = self.counts().problems(
            where,
            sum(self.errors_by_kind.values()),
            responses,
            sum(self.dropped_by_kind.values()),
            in_flight=in_flight,
            pending=pending,
        )
        for name, histogram in (("latency", self.latency), ("service time", self.service_time)):
            if histogram.total_count != responses:
                problems.append(
                    f"{where}: {name} histogram holds {histogram.total_count} values, "
                    f"{responses} requests got a response"
                )
        if not in_flight and not pending:
            for request in self.requests.values():
                problems.extend(request.accounting_problems(f"{where}, request {request.name!r}"))
        return problems

    def merge_from(self, other: PhaseStats) -> None:
        """Add ``other``'s counters and histograms (by template name; not its series).

        A template that is not timed on either side is not timed in the sum: the latencies of
        both go to the phase's `rest`.
        """
        for name, theirs in other.requests.items():
            mine = self.request(name)
            mine.add(theirs.counts_record())
            if mine.timed and theirs.timed:
                mine.latency.add(theirs.latency)
                mine.service_time.add(theirs.service_time)
                continue
            if mine.timed:
                self._add_rest(mine.latency, mine.service_time)
                mine.timed = False
                mine.latency = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
                mine.service_time = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
            if theirs.timed:
                self._add_rest(theirs.latency, theirs.service_time)
        if other.rest is not None:
            self._add_rest(*other.rest)

    def freeze(self) -> PhaseRecord:
        """Everything recorded for the phase, as a record."""
        latency, service_time = self.latency, self.service_time
        return PhaseRecord(
            name=self.name,
            counts=self.counts(),
            errors_by_kind={str(kind): n for kind, n in sorted(self.errors_by_kind.items())},
            status_counts=dict(sorted(self.status_counts.items())),
            latency_ms=latency.summary(),
            service_time_ms=service_time.summary(),
            histograms=Histograms(
                latency_us=latency.encode(), service_time_us=service_time.encode()
            ),
            requests=tuple(request.freeze() for request in self.requests.values()),
            dropped_by_kind=dict(sorted(self.dropped_by_kind.items())),
        )

    @classmethod
    def thaw(
        cls,
        record: PhaseRecord,
        series: SecondSeries | None = None,
        templates: dict[str, SecondSeries] | None = None,
    ) -> PhaseStats:
        """A phase holding what ``record`` holds, its templates recording into ``templates``'
        series (a template missing there gets one of its own, not added).

        Raises ResultsError when the record's counts are not the sum of its templates' (the
        only counters a phase keeps), or its histograms do not hold exactly its timed
        templates' values plus, when some template is not timed, others.
        """
        phase = cls(record.name, series, templates)
        for item in record.requests:
            phase.requests[item.name] = RequestStats.thaw(item, phase.templates.get(item.name))
        held = (phase.counts(), phase.errors_by_kind, phase.status_counts, phase.dropped_by_kind)
        given = (
            record.counts,
            dict(record.errors_by_kind),
            dict(record.status_counts),
            dict(record.dropped_by_kind),
        )
        if held != given:
            raise ResultsError(
                f"phase {record.name!r}: its counts are not the sum of its requests' counts"
            )
        encoded = record.histograms
        rests = []
        for whole, held_part in (
            (encoded.latency_us, phase.latency),
            (encoded.service_time_us, phase.service_time),
        ):
            rest = LatencyHistogram.decode(whole, PHASE_SIGNIFICANT_DIGITS).without(held_part)
            if rest is None:
                raise ResultsError(
                    f"phase {record.name!r}: its histograms lack values of its requests'"
                )
            rests.append(rest)
        untimed = any(not request.timed for request in phase.requests.values())
        if rests[0].total_count or rests[1].total_count:
            if not untimed:
                raise ResultsError(
                    f"phase {record.name!r}: its histograms are not the sum of its requests'"
                )
            phase.rest = (rests[0], rests[1])
        return phase


# --------------------------------------------------------------------------------------------
# The run


class RunStats:
    """A run's phases (by name, in creation order), per-second series, and templates' series."""

    def __init__(self, started_at: float, *, live_seconds: int = 2) -> None:
        self.started_at = started_at
        self.series = SecondSeries(started_at, live_seconds=live_seconds)
        self.phases: dict[str, PhaseStats] = {}
        self.template_series: dict[str, SecondSeries] = {}
        """Per template, first seen first: its requests' per-second series over the run."""

    def phase(self, name: str) -> PhaseStats:
        """The phase called ``name``, created (after the existing ones) if new."""
        phase = self.phases.get(name)
        if phase is None:
            phase = self.phases[name] = PhaseStats(name, self.series, self.template_series)
        return phase

    def request_series(self, name: str) -> SecondSeries | None:
        """Template ``name``'s per-second series over the whole run: None when no phase has
        sent or scheduled it yet (or the run was thawed from a document without one)."""
        return self.template_series.get(name)

    def _template_counts(self) -> dict[str, Counts]:
        return template_counts(p.requests for p in self.phases.values())

    def total(self) -> PhaseStats:
        """A merged view of all phases (a new object; recording into it changes nothing)."""
        total = PhaseStats("total")
        for phase in self.phases.values():
            total.merge_from(phase)
        return total

    def snapshot(self, now: float) -> Snapshot:
        """Progress at ``now`` (on the run's clock)."""
        counts = sum((p.counts() for p in self.phases.values()), Counts())
        recent = self.series.recent_latency()
        return Snapshot(
            elapsed_s=now - self.started_at,
            phase=next(reversed(self.phases)) if self.phases else None,
            scheduled=counts.scheduled,
            sent=counts.sent,
            dropped=counts.dropped,
            succeeded=counts.succeeded,
            failed=counts.failed,
            timed_out=counts.timed_out,
            recent_second=None if recent is None else recent[0],
            recent_completed=0 if recent is None else recent[1].count,
            recent_p95_ms=None if recent is None else recent[1].p95_us / 1000.0,
            recent_p99_ms=None if recent is None else recent[1].p99_us / 1000.0,
            requests=request_snapshots(p.requests for p in self.phases.values()),
        )

    def check_accounting(self, *, in_flight: int = 0, pending: int = 0) -> list[str]:
        """Problems with the accounting identities; empty when all hold.

        For a finished run call it with nothing in flight or pending: every phase and every
        template in it is checked. While running, pass the engine's counts of requests in
        flight (sent, not completed) and pending (scheduled, neither sent nor dropped): the
        identities are then checked over all phases together, as the engine does not track
        them per phase.
        """
        problems: list[str] = []
        if in_flight or pending:
            total = self.total()
            total.name = "all phases"
            problems.extend(total.accounting_problems(in_flight=in_flight, pending=pending))
        else:
            for phase in self.phases.values():
                problems.extend(phase.accounting_problems())
        counts = sum((p.counts() for p in self.phases.values()), Counts())
        for name in COUNTERS:
            in_series = sum(self.series.counters(name))
            in_phases: int = getattr(counts, name)
            if in_series != in_phases:
                problems.append(f"per-second {name} sum {in_series} != phases' {in_phases}")
        if not in_flight and not pending:
            problems.extend(series_problems(self.template_series, self._template_counts()))
        return problems

    def freeze(self) -> StatsRecord:
        """The run's statistics as a record: phases in creation order, the total, seconds."""
        return StatsRecord(
            phases=tuple(phase.freeze() for phase in self.phases.values()),
            total=self.total().freeze(),
            seconds=self.series.freeze(),
            requests=freeze_series(self.template_series),
        )

    @classmethod
    def thaw(cls, record: StatsRecord) -> RunStats:
        """A finished run (every second sealed) from `freeze`'s record; the total is recomputed.

        Raises ResultsError for another stats format or counts that do not add up.
        """
        if record.format != STATS_FORMAT:
            raise ResultsError(f"unsupported stats format {record.format!r}")
        run = cls(0.0)
        run.series = SecondSeries.thaw(record.seconds)
        run.template_series = thaw_series(record.requests)
        for item in record.phases:
            run.phases[item.name] = PhaseStats.thaw(item, run.series, run.template_series)
        return run


def merge(a: RunStats, b: RunStats) -> RunStats:
    """Combine two runs' stats (e.g. two load generators sharing a schedule origin).

    Phases are matched by name (``a``'s order, then ``b``'s new ones), templates within them
    likewise; seconds are matched by run offset, for the run and for each template. Counts add
    up and histograms merge, so merged percentiles are those of one histogram over all the
    data, to histogram precision. The result is a finished run.
    """
    merged = RunStats(a.started_at)
    merged.series = merge_series(a.series, b.series)
    for source in (a, b):
        for name, phase in source.phases.items():
            merged.phase(name).merge_from(phase)
    templates = merged.template_series
    templates.clear()  # `request` gave each template an empty one
    templates.update(
        merge_template_series(
            a.template_series, b.template_series, a._template_counts(), b._template_counts()
        )
    )
    for phase in merged.phases.values():
        for name, request in phase.requests.items():
            request.series = templates.get(name, request.series)
    return merged
