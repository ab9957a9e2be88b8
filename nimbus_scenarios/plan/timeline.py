"""Compile validated nodes into a `Plan`: pure data with no clock and no I/O.

Offsets are seconds from the start of the first phase. Open-model load is a list of piecewise
linear rate segments per phase (spikes already applied); request counts are computed with exact
fractions by the rule of the language page: a phase whose rate integrates to I has ceil(I)
arrivals, the k-th at the first moment the integral reaches k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.fmt import format_expectation, format_guard, format_shape
from nimbus_scenarios.language.params import Params
from nimbus_scenarios.language.run_length import waits_until
from nimbus_scenarios.language.vocabulary import (
    DEFAULT_MAX_RATE,
    ExpectationKind,
    GuardSubject,
    Subject,
    subject_kind,
)
from nimbus_scenarios.plan.arrivals import integer_weights, mix_counts
from nimbus_scenarios.plan.model import (
    CleanupStep,
    ExpectationPlan,
    GuardPlan,
    KillPlan,
    PhasePlan,
    Plan,
    Settings,
    StressSpec,
    Template,
    Text,
)
from nimbus_scenarios.plan.pieces import Piece, Window, segments, stairs, with_spikes
from nimbus_scenarios.secrets import MASK, is_secret_header

__all__ = ["compile_plan"]


def compile_plan(
    scenario: n.Scenario, params: Params, *, max_rate: float = DEFAULT_MAX_RATE
) -> Plan:
    """Nodes (already validated without errors) to a `Plan`."""
    c = _Compiler(params)
    settings = c.settings(scenario.settings[0] if scenario.settings else None)
    templates = {r.name.text: c.template(r, settings) for r in scenario.requests}
    phases: list[PhasePlan] = []
    start = Fraction(0)
    for index, phase in enumerate(scenario.phases):
        compiled = c.phase(phase, index, start)
        phases.append(compiled)
        start += c.exact(phase.duration)
    end = start
    watch = scenario.watches[0] if scenario.watches else None
    secret = _secret_params(scenario, params)
    return Plan(
        scenario=c.string(scenario.name),
        description=c.string(scenario.descriptions[0]) if scenario.descriptions else "",
        target=c.text(scenario.targets[0]) if scenario.targets else None,
        deployment=c.string(watch.deployment) if watch else None,
        namespace=c.string(watch.namespace) if watch and watch.namespace else None,
        settings=settings,
        templates=templates,
        phases=tuple(phases),
        before=c.stage(scenario.befores, "before"),
        after=c.stage(scenario.afters, "after"),
        expectations=tuple(
            c.expectation(e, "scenario", Fraction(0), end) for e in scenario.expectations
        ),
        guards=tuple(c.guard(a) for a in scenario.aborts),
        cleanup=tuple(c.cleanup(scenario.cleanups)),
        params={
            name: MASK if name in secret else _shown(value) for name, value in params.values.items()
        },
        max_rate=max_rate,
    )


def _secret_params(scenario: n.Scenario, params: Params) -> set[str]:
    """Params sent as a credential header's value: the plan masks them like the header."""
    headers = [h for block in scenario.settings for h in block.headers]
    headers += [h for r in scenario.requests if isinstance(r, n.HttpRequest) for h in r.headers]
    names = set()
    for header in headers:
        name = params.resolve(header.name)
        if (
            isinstance(header.value, n.ParamRef)
            and isinstance(name, n.Literal)
            and is_secret_header(name.string)
        ):
            names.add(header.value.name)
    return names


def _shown(value: n.Value) -> str:
    if isinstance(value, n.EnvRef):
        return MASK
    if isinstance(value, n.Literal):
        return value.string if value.kind is n.Kind.STRING else value.text
    return getattr(value, "text", "")


class _Compiler:
    def __init__(self, params: Params) -> None:
        self.params = params

    def literal(self, value: n.Value | None) -> n.Literal:
        resolved = self.params.resolve(value) if value is not None else None
        if not isinstance(resolved, n.Literal):
            raise TypeError(f"compile_plan needs a validated scenario; got {resolved!r}")
        return resolved

    def exact(self, value: n.Value | None) -> Fraction:
        return self.literal(value).exact

    def number(self, value: n.Value | None, default: float = 0.0) -> float:
        return default if value is None else float(self.exact(value))

    def string(self, value: n.Value | None) -> str:
        return self.literal(value).string

    def text(self, value: n.Value, *, secret: bool = False) -> Text:
        resolved = self.params.resolve(value)
        if isinstance(resolved, n.EnvRef):
            return Text(env=resolved.variable, secret=True)
        literal = self.literal(resolved)
        plain = literal.string if literal.kind is n.Kind.STRING else literal.text
        return Text(plain, secret=secret)

    def settings(self, block: n.Settings | None) -> Settings:
        if block is None:
            return Settings()
        values = {s.key: s.value for s in block.settings}
        defaults = Settings()
        return Settings(
            timeout_s=self.number(values.get("timeout"), defaults.timeout_s),
            max_inflight=int(self.number(values.get("max_inflight"), defaults.max_inflight)),
            connection_max_age_s=self.number(
                values.get("connection_max_age"), defaults.connection_max_age_s
            ),
            trace_sample=self.number(values.get("trace_sample"), defaults.trace_sample),
            stress_path=(
                self.string(values["stress_path"])
                if "stress_path" in values
                else defaults.stress_path
            ),
            headers=self.headers(block.headers),
            memory_in_flight_mb=(
                self.number(values["memory_in_flight"]) / (1024 * 1024)
                if "memory_in_flight" in values
                else None
            ),
        )

    def headers(self, headers: Iterable[n.Header]) -> tuple[tuple[str, Text], ...]:
        result = []
        for header in headers:
            name = self.string(header.name)
            result.append((name, self.text(header.value, secret=is_secret_header(name))))
        return tuple(result)

    def template(self, request: n.Request, settings: Settings) -> Template:
        if isinstance(request, n.StressRequest):
            return self.stress(request, settings)
        statuses = tuple(self.literal(s).text for s in request.expect_status) or ("2xx", "3xx")
        return Template(
            name=request.name.text,
            method=request.method,
            path=self.string(request.path),
            query=tuple((q.key.text, self.text(q.value)) for q in request.queries),
            headers=settings.headers + self.headers(request.headers),
            body=self.text(request.bodies[0]) if request.bodies else None,
            ok_status=statuses,
        )

    def stress(self, request: n.StressRequest, settings: Settings) -> Template:
        options = {s.option: s for s in request.settings}

        def option(key: n.StressOption, default: Fraction) -> Fraction:
            setting = options.get(key)
            return self.exact(setting.value) if setting and setting.value else default

        spec = StressSpec(
            cpu_intensity=int(option(n.StressOption.CPU, Fraction(1))),
            memory_mb=int(option(n.StressOption.MEMORY, Fraction(10 * 1024 * 1024)) / 1024**2),
            duration_s=int(option(n.StressOption.FOR, Fraction(1))),
            async_mode=n.StressOption.SYNC not in options,
            immediate_cleanup=n.StressOption.KEEP not in options,
        )
        query = [
            ("cpu_intensity", Text(str(spec.cpu_intensity))),
            ("memory_size", Text(str(spec.memory_mb))),
            ("duration", Text(str(spec.duration_s))),
            ("async_mode", Text("true" if spec.async_mode else "false")),
        ]
        if not spec.immediate_cleanup:
            query.append(("immediate_cleanup", Text("false")))
        return Template(
            name=request.name.text,
            method="POST",
            path=settings.stress_path,
            query=tuple(query),
            headers=settings.headers,
            stress=spec,
        )

    # -------------------------------------------------------- phases
    def phase(self, phase: n.Phase, index: int, start: Fraction) -> PhasePlan:
        name = self.string(phase.name)
        length = self.exact(phase.duration)
        end = start + length
        shape = phase.shapes[0]
        weights = self.weights(phase)
        mix = tuple((name, float(weight)) for name, weight in weights)
        base = PhasePlan(
            name=name,
            index=index,
            start_s=float(start),
            end_s=float(end),
            shape=shape.kind,
            shape_text=format_shape(
                replace(shape, args=tuple(self.params.resolve(a) if a else a for a in shape.args))
            ),
            spikes=tuple(
                f"spike {self.literal(s.rate).text} for {self.literal(s.duration).text} "
                f"at {self.literal(s.at).text}"
                for s in phase.spikes
            ),
            spike_starts_s=tuple(float(start + self.exact(s.at)) for s in phase.spikes),
            mix=mix,
            weights=tuple(integer_weights([weight for _, weight in weights])),
            expectations=tuple(self.expectation(e, name, start, end) for e in phase.expectations),
            kills=tuple(
                KillPlan(name, float(start + self.exact(k.at)), int(self.exact(k.count)))
                for k in phase.kills
            ),
        )
        kind = shape.kind
        if kind is n.ShapeKind.USERS:
            return replace(
                base,
                users=int(self.exact(shape.args[0])),
                think_s=self.number(shape.args[1]),
            )
        if kind is n.ShapeKind.BURST:
            size = int(self.exact(shape.args[0]))
            every = self.exact(shape.args[1])
            count = math.ceil(length / every)
            return self._counted(
                replace(base, burst_size=size, burst_every_s=float(every), burst_count=count),
                size * count,
            )
        windows = []
        for spike in phase.spikes:
            at = self.exact(spike.at)
            windows.append(Window(at, at + self.exact(spike.duration), self.exact(spike.rate)))
        pieces = with_spikes(self.rate_pieces(shape, length), windows)
        compiled, total = segments(pieces, start)
        return self._counted(replace(base, segments=tuple(compiled)), total)

    def _counted(self, phase: PhasePlan, total: int) -> PhasePlan:
        counts = mix_counts(phase.weights, total)
        scheduled = {name: count for (name, _), count in zip(phase.mix, counts, strict=True)}
        return replace(phase, scheduled=scheduled, scheduled_total=total)

    def weights(self, phase: n.Phase) -> list[tuple[str, Fraction]]:
        """The `send` mix with its weights exact, as written (`33.3333333%` is 333333333/10^7)."""
        if not phase.sends:
            return []
        return [
            (w.request.text, self.exact(w.weight) if w.weight is not None else Fraction(100))
            for w in phase.sends[0].mix
        ]

    def rate_pieces(self, shape: n.Shape, length: Fraction) -> list[Piece]:
        """The shape's own rate over the phase, offsets from its start."""
        match shape.kind:
            case n.ShapeKind.RATE:
                r = self.exact(shape.args[0])
                return [Piece(Fraction(0), length, r, r)]
            case n.ShapeKind.RAMP:
                first, last = self.exact(shape.args[0]), self.exact(shape.args[1])
                return [Piece(Fraction(0), length, first, last)]
            case n.ShapeKind.STEPS:
                first, last = self.exact(shape.args[0]), self.exact(shape.args[1])
                return stairs(first, last, int(self.exact(shape.args[2])), length)
            case _:
                return [Piece(Fraction(0), length, Fraction(0), Fraction(0))]

    # -------------------------------------------------------- expectations
    def expectation(
        self, item: n.Expectation, scope: str, start: Fraction, end: Fraction
    ) -> ExpectationPlan:
        text = format_expectation(item)
        if isinstance(item, n.Succeeds):
            within = self.number(item.within) if item.within is not None else None
            return ExpectationPlan(
                text=text,
                scope=scope,
                kind=ExpectationKind.SUCCEEDS,
                subject=Subject.SUCCEEDS,
                comparator=n.Comparator.EQ,
                value=1.0,
                window=n.WindowKind.WITHIN if within is not None else None,
                window_s=within,
                request=item.request.text,
            )
        written = " ".join(name.text for name in item.subject)
        kind = subject_kind(written)
        if kind is None:
            raise TypeError(f"compile_plan needs a validated scenario; got subject {written!r}")
        subject = Subject.READY_REPLICAS if written == "replicas" else Subject(written)
        plan = ExpectationPlan(
            text=text,
            scope=scope,
            kind=kind,
            subject=subject,
            comparator=item.comparator,
            value=float(self.exact(item.value)),
            request=item.request.text if item.request is not None else None,
        )
        window = item.window
        width = self.exact(window.duration) if window and window.duration is not None else None
        # The same arithmetic validation holds to the limit on a run's length.
        until = waits_until(
            kind,
            window.kind if window else None,
            start=start,
            end=end,
            value=self.exact(item.value),
            width=width,
        )
        if kind in {ExpectationKind.REACTION, ExpectationKind.POD_STARTUP}:
            # Decided up to D past the scope's end: the first rise, or the start-up of a pod
            # created at its end, may come that late (the run waits for it, as for `within`).
            assert until is not None
            return replace(plan, start_s=float(start), end_s=float(until))
        if window is None or until is None:
            return plan
        staged = scope in {"before", "after"}
        if window.kind is n.WindowKind.WITHIN:
            assert width is not None
            return replace(
                plan,
                window=n.WindowKind.WITHIN,
                window_s=float(width),
                start_s=None if staged else float(start),
                end_s=None if staged else float(until),
            )
        return replace(
            plan,
            window=window.kind,
            start_s=float(start),
            end_s=float(until),
        )

    def stage(self, blocks: Iterable[n.Block], scope: str) -> tuple[ExpectationPlan, ...]:
        return tuple(
            self.expectation(item, scope, Fraction(0), Fraction(0))
            for block in blocks
            for item in block.items
            if isinstance(item, n.Compare | n.Succeeds)
        )

    def guard(self, abort: n.Abort) -> GuardPlan:
        return GuardPlan(
            text=format_guard(abort),
            subject=GuardSubject(" ".join(name.text for name in abort.subject)),
            comparator=abort.comparator,
            value=float(self.exact(abort.value)),
            over_s=self.number(abort.over) if abort.over is not None else None,
            request=abort.request.text if abort.request is not None else None,
        )

    def cleanup(self, blocks: Iterable[n.Block]) -> list[CleanupStep]:
        steps = []
        for block in blocks:
            for item in block.items:
                if not isinstance(item, n.Send):
                    continue
                if item.method is not None:
                    steps.append(CleanupStep(method=item.method, path=self.string(item.path)))
                else:
                    steps.append(CleanupStep(template=item.mix[0].request.text))
        return steps
