"""Validation of the phases: their count, names and total length, and in each phase its one load
shape, the spikes, the `send` mix, the `at T kill N pods` lines and its expectations.

The limits here (phases, stairs, total length) are what keep `timeline` from compiling a plan
that would take minutes and gigabytes; the shape checks are what let it assume exactly one shape
per phase with every value in range.
"""

from __future__ import annotations

from fractions import Fraction

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.validate.expectations import check_expectation
from nimbus_scenarios.language.validate.scope import phase_sending
from nimbus_scenarios.language.validate.values import Checker, duration_text, secs
from nimbus_scenarios.language.vocabulary import (
    MAX_DURATION_S,
    MAX_PHASES,
    MAX_STAIRS,
    MAX_USERS,
    MAX_USERS_PER_PROCESS,
)

__all__ = ["check_phases"]


def check_phases(check: Checker, scenario: n.Scenario) -> None:
    """Every phase, in order, and the limits over all of them."""
    _Phases(check).run(scenario)


class _Phases:
    """The phase checks, with the stairs counted over every `steps` shape of the scenario."""

    def __init__(self, check: Checker) -> None:
        self.check = check
        self.stairs = 0

    def run(self, scenario: n.Scenario) -> None:
        check = self.check
        phases = scenario.phases
        if not phases:
            check.error("a scenario needs at least one `phase`", scenario.end)
            return
        if len(phases) > MAX_PHASES:
            check.error(
                f"the scenario has {len(phases):,} phases; the limit is {MAX_PHASES:,}",
                phases[MAX_PHASES].span,
            )
            return
        names: dict[str, n.Phase] = {}
        total = Fraction(0)
        crossing: n.Phase | None = None  # the phase that takes the total over the limit
        for phase in phases:
            name = check.text(phase.name, "a phase name")
            if name is not None:
                if not name.strip():
                    check.error("a phase name must not be empty", phase.name.span)
                elif name in names:
                    first = names[name].span.line
                    check.error(
                        f'duplicate phase "{name}"; the first is at line {first}', phase.name.span
                    )
                names.setdefault(name, phase)
            length = check.duration(phase.duration, "a phase duration")
            total += length or 0
            if crossing is None and total > MAX_DURATION_S:
                crossing = phase
            self.phase(phase, length, name)
        if crossing is not None:
            check.error(
                f"the phases last {duration_text(total)} in all; the limit is "
                f"{MAX_DURATION_S // 3600}h",
                crossing.span,
            )

    def phase(self, phase: n.Phase, length: Fraction | None, name: str | None) -> None:
        check = self.check
        if not phase.shapes:
            check.error(
                "a phase needs exactly one load shape: `rate`, `ramp`, `steps`, `users`, "
                "`burst` or `idle`",
                phase.name.span,
            )
        for extra in phase.shapes[1:]:
            check.error(
                f"a phase has exactly one load shape; this is a second one (the first is "
                f"`{phase.shapes[0].kind}` at line {phase.shapes[0].span.line})",
                extra.span,
            )
        shape = phase.shapes[0] if phase.shapes else None
        if shape is not None:
            self.shape(shape)
        _spikes(check, phase, shape, length)
        _sends(check, phase, shape)
        sending = phase_sending(phase, name)
        for expectation in phase.expectations:
            check_expectation(
                check, expectation, scope="phase", phase_length=length, sending=sending
            )
        for kill in phase.kills:
            _kill(check, kill, length)

    def shape(self, shape: n.Shape) -> None:
        check = self.check
        args = shape.args
        match shape.kind:
            case n.ShapeKind.RATE:
                check.rate(args[0], "`rate`", positive=True)
            case n.ShapeKind.RAMP:
                start = check.rate(args[0], "a ramp's start", positive=False)
                end = check.rate(args[1], "a ramp's end", positive=False)
                if start == 0 and end == 0:
                    check.error("a ramp from zero to zero sends nothing (use `idle`)", shape.span)
            case n.ShapeKind.STEPS:
                start = check.rate(args[0], "the first step", positive=False)
                end = check.rate(args[1], "the last step", positive=False)
                stairs = check.integer(args[2], "the number of steps", 1, 10_000)
                self.stairs += stairs or 0
                # Reported once, at the shape that crosses the limit, not at every one after it.
                if stairs is not None and self.stairs > MAX_STAIRS >= self.stairs - stairs:
                    check.error(
                        f"the `steps` shapes reach {self.stairs:,} stairs in all here; the limit "
                        f"is {MAX_STAIRS:,} for a scenario",
                        shape.span if args[2] is None else args[2].span,
                    )
                if start == 0 and end == 0:
                    check.error("steps from zero to zero send nothing (use `idle`)", shape.span)
            case n.ShapeKind.USERS:
                users = check.integer(args[0], "the number of users", 1, MAX_USERS)
                if users is not None and args[0] is not None:
                    _users_per_process(check, users, args[0].span)
                if args[1] is not None:
                    check.duration(args[1], "`think`", positive=False)
            case n.ShapeKind.BURST:
                size = check.integer(args[0], "a burst's size", 1, 1_000_000)
                every = check.duration(args[1], "a burst's interval")
                share = check.shards * check.max_rate
                if size is not None and every is not None and size / every > share:
                    check.error(
                        f"{size} requests every {float(every):g}s averages above the limit of "
                        f"{check.max_rate:g}/s per process (raise it with --max-rate)",
                        shape.span,
                    )
            case n.ShapeKind.IDLE:
                pass


def _users_per_process(check: Checker, users: int, span: n.Span) -> None:
    """Each process runs its share of the users (shard 0 the largest): at most
    `MAX_USERS_PER_PROCESS`, or the message says how many shards would do."""
    share = -(-users // check.shards)
    if share <= MAX_USERS_PER_PROCESS:
        return
    needed = -(-users // MAX_USERS_PER_PROCESS)
    each = f" ({share:,} in each of {check.shards} shards)" if check.shards > 1 else ""
    check.error(
        f"`users {users}` is above the limit of {MAX_USERS_PER_PROCESS:,} users per process"
        f"{each}; shard the run: `run --shards {needed}` gives each process at most "
        f"{MAX_USERS_PER_PROCESS:,}",
        span,
    )


def _spikes(check: Checker, phase: n.Phase, shape: n.Shape | None, length: Fraction | None) -> None:
    # A spike replaces an arrival rate for a while; closed-model and burst shapes have none.
    if (
        phase.spikes
        and shape is not None
        and shape.kind
        in {
            n.ShapeKind.USERS,
            n.ShapeKind.BURST,
        }
    ):
        check.error(
            f"`spike` works with `rate`, `ramp`, `steps` and `idle`, not `{shape.kind}`",
            phase.spikes[0].span,
        )
        return
    windows: list[tuple[Fraction, Fraction, n.Spike]] = []
    for spike in phase.spikes:
        check.rate(spike.rate, "a spike's rate", positive=True)
        span_d = check.duration(spike.duration, "a spike's duration")
        at = check.duration(spike.at, "a spike's start (`at`)", positive=False)
        if span_d is None or at is None or length is None:
            continue
        if at + span_d > length:
            check.error(
                f"the spike runs from {secs(at)} to {secs(at + span_d)}, past the end of its "
                f"{secs(length)} phase",
                spike.span,
            )
            continue
        windows.append((at, at + span_d, spike))
    for later, earlier in _overlaps(windows):
        check.error(
            f"this spike overlaps the one at line {windows[earlier][2].span.line}",
            windows[later][2].span,
        )


def _overlaps(windows: list[tuple[Fraction, Fraction, n.Spike]]) -> list[tuple[int, int]]:
    """Each (later, earlier) pair of indices of overlapping windows, in source order of the
    later and then of the earlier one. A sweep by start time: linear in the spikes (after a
    sort) plus the pairs, where comparing every spike with every earlier one took 13 s for
    3,000 spikes."""
    order = sorted(range(len(windows)), key=lambda index: windows[index][0])
    active: list[int] = []  # windows started so far that have not ended
    pairs: list[tuple[int, int]] = []
    for index in order:
        start, end, _ = windows[index]
        # A window that ended by this start overlaps nothing that starts later.
        active = [other for other in active if windows[other][1] > start]
        for other in active:
            other_start, other_end, _ = windows[other]
            if start < other_end and other_start < end:
                pairs.append((max(index, other), min(index, other)))
        active.append(index)
    return sorted(pairs)


def _sends(check: Checker, phase: n.Phase, shape: n.Shape | None) -> None:
    for extra in phase.sends[1:]:
        check.error(
            f"a phase has one `send` (the first is at line {phase.sends[0].span.line}); "
            "put the mix on one line: `send 70% a, 30% b`",
            extra.span,
        )
    sends_load = shape is not None and (shape.kind is not n.ShapeKind.IDLE or phase.spikes)
    if not phase.sends:
        if sends_load:
            check.error(
                "this phase sends load but has no `send`: say which requests, e.g. `send work`",
                phase.name.span,
            )
        return
    send = phase.sends[0]
    if send.method is not None:
        check.error(
            "a phase sends named requests (`send NAME`); inline requests belong in `cleanup`",
            send.span,
        )
        return
    if shape is not None and not sends_load:
        check.warn("this idle phase has no spike, so its `send` sends nothing", send.span)
    _mix(check, send)


def _mix(check: Checker, send: n.Send) -> None:
    seen: set[str] = set()
    total = Fraction(0)
    weighted = [w for w in send.mix if w.weight is not None]
    readable = True  # every weight is a percentage, so their sum means something
    for item in send.mix:
        check.known_request(item.request)
        if item.request.text in seen:
            check.error(f"`{item.request.text}` appears twice in one mix", item.request.span)
        seen.add(item.request.text)
        if item.weight is None:
            if len(send.mix) > 1:
                check.error(
                    f"give `{item.request.text}` a weight: in a mix every request has one, "
                    "e.g. `send 70% a, 30% b`",
                    item.span,
                )
            continue
        weight = check.percent(item.weight, "a weight")
        readable = readable and weight is not None
        if weight is not None and weight <= 0:
            check.error("a weight must be above 0%", item.weight.span)
        total += weight or 0
    if readable and weighted and len(weighted) == len(send.mix) and total != 100:
        check.error(
            f"the weights add up to {float(total):g}%, not 100%",
            send.span,
        )


def _kill(check: Checker, kill: n.Kill, length: Fraction | None) -> None:
    at = check.duration(kill.at, "a kill's time (`at`)", positive=False)
    check.integer(kill.count, "the number of pods to kill", 1, 1000)
    if at is not None and length is not None and at >= length:
        check.error(f"`at {secs(at)}` is not inside its {secs(length)} phase", kill.at.span)
    if not check.has_watch:
        check.error(
            '`kill` needs `watch deployment "NAME"` to know which pods to delete', kill.span
        )
