"""Validation of what is judged: expectations (their subject, value and window, and where each
kind may stand: `before`/`after`, a phase, the scenario) and the `abort when` guards.

The judge and the runner rely on these rules: a replica expectation always has a window and a
watched deployment, load expectations never have one, `reaction` and `pod startup` have a
watched deployment, a duration and no window, `abort when pod restarts` has a watched
deployment and no window, and `NAME succeeds` appears only in the steady-state blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import closest
from nimbus_scenarios.language.validate.scope import Sending, check_scope, refuse_scope
from nimbus_scenarios.language.validate.values import Checker
from nimbus_scenarios.language.vocabulary import (
    GUARD_SUBJECTS,
    METRIC_SUBJECTS,
    POD_STARTUP_STATISTICS,
    REPLICA_SUBJECTS,
    SCALING_SUBJECTS,
    ExpectationKind,
    subject_kind,
)

__all__ = ["check_abort", "check_expectation", "check_hypothesis"]


def check_hypothesis(check: Checker, block: n.Block, where: str) -> None:
    """A `before` or `after` block: replica expectations and `NAME succeeds` only."""
    for item in block.items:
        if isinstance(item, n.Compare):
            kind = subject_kind(_subject(item.subject))
            if kind not in {ExpectationKind.REPLICAS, None}:
                check.error(
                    f"`{where}` holds replica expectations and `NAME succeeds` checks; "
                    f"`{_subject(item.subject)}` is judged over phases (put it in a phase or "
                    "at scenario level)",
                    item.span,
                )
                continue
        check_expectation(check, item, scope=where)  # type: ignore[arg-type]


def check_expectation(
    check: Checker,
    item: n.Expectation,
    *,
    scope: str,
    phase_length: Fraction | None = None,
    sending: Sending | None = None,
) -> None:
    """One `expect` line in `scope` (`before`, `after`, `phase` or `scenario`); `sending` is
    what is sent there, for `of NAME` (None in `before`/`after`, which send no load)."""
    if isinstance(item, n.Succeeds):
        if scope not in {"before", "after"}:
            check.error("`expect NAME succeeds` belongs in `before` or `after`", item.span)
        check.known_request(item.request)
        if item.within is not None:
            check.duration(item.within, "`within`")
        return
    subject = _subject(item.subject)
    kind = subject_kind(subject)
    if kind is None:
        _unknown_subject(check, item.subject)
        return
    if kind in {ExpectationKind.REACTION, ExpectationKind.POD_STARTUP}:
        _scaling_expectation(check, item, subject)
        return
    if kind is ExpectationKind.REPLICAS:
        refuse_scope(check, item.request, subject, guard=False)
        _replica_expectation(check, item, scope, phase_length)
        return
    check_scope(check, item.request, sending)
    if item.window is not None:
        check.error(
            f"`{subject}` is judged over all requests in its scope and takes no window",
            item.window.span,
        )
    if kind is ExpectationKind.LATENCY:
        check.duration(item.value, f"`{subject}`", positive=False)
    else:
        check.percent(item.value, f"`{subject}`")


_KNOWN = (*METRIC_SUBJECTS, *REPLICA_SUBJECTS, "reaction", "pod startup pNN|max")


def _unknown_subject(check: Checker, names: tuple[n.Name, ...]) -> None:
    subject = _subject(names)
    span = _subject_span(names)
    words = [name.text for name in names]
    if words[:2] == ["pod", "startup"]:
        if len(words) == 2:
            check.error(
                "`pod startup` needs a statistic, like `pod startup p95`: "
                + _either(POD_STARTUP_STATISTICS),
                span,
            )
        else:
            check.error(
                f"`pod startup` takes {_either(POD_STARTUP_STATISTICS)}; found `{words[2]}`",
                names[2].span,
                closest(words[2], POD_STARTUP_STATISTICS),
            )
        return
    if subject == "pod restarts":
        check.error(
            "`pod restarts` is a guard, not an expectation: `abort when pod restarts > N`",
            span,
        )
        return
    check.error(
        "unknown expectation `"
        + subject
        + "`; expected one of "
        + ", ".join(f"`{s}`" for s in _KNOWN),
        span,
        closest(subject, (*METRIC_SUBJECTS, *REPLICA_SUBJECTS, *SCALING_SUBJECTS)),
    )


def _either(words: tuple[str, ...]) -> str:
    quoted = [f"`{word}`" for word in words]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _scaling_expectation(check: Checker, item: n.Compare, subject: str) -> None:
    """`reaction` and `pod startup pNN|max`: a duration, no window, no `of NAME`, a watch."""
    if item.request is not None:
        check.error(
            f"`{subject}` is about the autoscaler and the pods, not requests, so it takes no "
            f"`of {item.request.text}`",
            item.request.span,
        )
    if item.window is not None:
        wait = (
            "it waits up to its duration past the end of its phase"
            if subject == "reaction"
            else "it covers the pods created in its phase (or the run)"
        )
        check.error(f"`{subject}` takes no window: {wait}", item.window.span)
    check.duration(item.value, f"`{subject}`", positive=subject == "reaction")
    if not check.has_watch:
        check.error(
            f'`{subject}` needs `watch deployment "NAME"` (or --deployment): it is judged on '
            "what the run records of the autoscaler and the pods",
            item.span,
        )


def _replica_expectation(
    check: Checker, item: n.Compare, scope: str, phase_length: Fraction | None
) -> None:
    check.integer(item.value, "a replica count", 0, 10_000)
    if not check.has_watch:
        check.error(
            'a replica expectation needs `watch deployment "NAME"` (or --deployment)',
            item.span,
        )
    window = item.window
    if window is None:
        check.error(
            "a replica expectation needs a window: `within D`, `throughout` or `at end`",
            item.span,
        )
        return
    # `before` and `after` have no length of their own for `throughout` or `at end` to mean.
    if scope in {"before", "after"} and window.kind is not n.WindowKind.WITHIN:
        check.error(f"in `{scope}`, replica expectations use `within D`", window.span)
        return
    if window.kind is n.WindowKind.WITHIN:
        check.duration(window.duration, "`within`")


def check_abort(check: Checker, abort: n.Abort, sending: Sending | None = None) -> None:
    """One `abort when` guard: load subjects need a window (`over D`), `replicas` has none;
    `of NAME` must be sent by some phase (`sending`, the whole run's)."""
    subject = _subject(abort.subject)
    kind = subject_kind(subject)
    if subject == "errors" or kind is ExpectationKind.LATENCY:
        check_scope(check, abort.request, sending)
        if kind is ExpectationKind.LATENCY:
            check.duration(abort.value, f"`{subject}`", positive=False)
        else:
            check.percent(abort.value, "`errors`")
        if abort.over is None:
            check.error(f"`abort when {subject} ...` needs a window: `over 30s`", abort.span)
        else:
            check.duration(abort.over, "`over`")
        return
    if subject in {"replicas", "pod restarts"}:
        refuse_scope(check, abort.request, subject, guard=True)
        if subject == "replicas":
            check.integer(abort.value, "a replica count", 0, 10_000)
        else:
            check.integer(abort.value, "a restart count", 0, 1_000_000)
        if abort.over is not None:
            why = " (it counts restarts since the run started)" if subject != "replicas" else ""
            check.error(f"`abort when {subject} ...` takes no window{why}", abort.over.span)
        if not check.has_watch:
            check.error(f'`abort when {subject}` needs `watch deployment "NAME"`', abort.span)
        return
    check.error(
        "`abort when` takes errors, p50..p99, max, mean, replicas or pod restarts; "
        f"found `{subject}`",
        _subject_span(abort.subject),
        closest(subject, GUARD_SUBJECTS),
    )


def _subject(names: Iterable[n.Name]) -> str:
    return " ".join(name.text for name in names)


def _subject_span(names: tuple[n.Name, ...]) -> n.Span:
    first, last = names[0].span, names[-1].span
    return n.Span(first.line, first.column, last.end_line, last.end_column)
