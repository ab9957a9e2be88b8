"""`of NAME`, the per-request scope: its syntax, what validation says about it, and `fmt`.

The golden corpora show each error once by example; these tests pin the rules behind them: the
scope of a phase is its own mix (another phase sending NAME does not count), the scope of the
whole run is every phase's mix, and only statistics of requests take `of`.
"""

from __future__ import annotations

import pytest

from nimbus_scenarios.language import check
from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.language.fmt import format_expectation, format_guard, format_scenario
from nimbus_scenarios.language.syntax import parse

REQUESTS = """\
  watch deployment "svc"
  request work = GET "/work"
  request health = GET "/health"
  request report = GET "/report"
"""


def scenario(body: str) -> str:
    """Scenario text with three request templates and `body` after them."""
    return f'scenario "t" {{\n  target "http://svc"\n{REQUESTS}{body}\n}}\n'


def errors(body: str) -> list[str]:
    """The error messages of `scenario(body)`, in source order."""
    return [d.message for d in check(Source("t.scn", scenario(body))).errors]


def phase(name: str, send: str, *lines: str) -> str:
    """A one-minute phase at 1/s sending `send`, with `lines` after the `send`."""
    body = "".join(f"    {line}\n" for line in lines)
    return f'  phase "{name}" 1m {{\n    rate 1/s\n    send {send}\n{body}  }}\n'


@pytest.mark.parametrize(
    "line",
    [
        "expect p50 of work < 1s",
        "expect p90 of work < 1s",
        "expect p95 of work < 1s",
        "expect p99 of work < 1s",
        "expect max of work < 1s",
        "expect mean of work < 1s",
        "expect errors of work < 1%",
        "expect achieved of work >= 99%",
    ],
)
def test_every_load_expectation_takes_of_a_request_its_phase_sends(line: str) -> None:
    """Latency, `errors` and `achieved` in a phase: `of NAME` is fine when the mix sends NAME."""
    assert errors(phase("p", "90% work, 10% health", line)) == []


def test_a_phase_scope_is_its_own_mix_not_another_phases() -> None:
    """`health` sent by a later phase does not make it sent in this one; the message says what
    this phase does send."""
    body = phase("ramp", "work", "expect errors of health < 1%") + phase("hold", "health")
    assert errors(body) == ['`health` is never sent in phase "ramp" (it sends `work`)']


def test_the_message_lists_every_request_of_the_mix() -> None:
    """A mix of two: both named, in the order written."""
    found = errors(phase("mix", "30% health, 70% work", "expect p95 of report < 1s"))
    assert found == ['`report` is never sent in phase "mix" (it sends `health` and `work`)']


def test_an_idle_phase_sends_nothing() -> None:
    """An idle phase without `send`: `of NAME` there is never sent."""
    body = phase("p", "work") + '  phase "calm" 1m {\n    idle\n    expect p95 of work < 1s\n  }\n'
    assert errors(body) == ['`work` is never sent in phase "calm" (it sends nothing)']


def test_scenario_level_needs_some_phase_to_send_the_request() -> None:
    """At scenario level, expectations and guards: any phase's mix will do."""
    body = phase("a", "work") + phase("b", "health")
    fine = [
        "  expect p99 of health < 500ms",
        "  expect errors of work < 1%",
        "  abort when errors of health > 50% over 30s",
        "  abort when p99 of work > 5s over 30s",
    ]
    assert errors(body + "\n".join(fine)) == []
    missing = ["  expect achieved of report > 90%", "  abort when mean of report > 1s over 10s"]
    assert (
        errors(body + "\n".join(missing))
        == ["`report` is never sent: no phase sends it (the phases send `work` and `health`)"] * 2
    )


def test_an_unknown_name_suggests_the_nearest_template() -> None:
    """A typo gives `unknown request` with a did-you-mean, and no second 'never sent' error."""
    source = Source("t.scn", scenario(phase("p", "work", "expect p95 of wrok < 1s")))
    found = check(source).errors
    assert [(d.message, d.hint) for d in found] == [("unknown request `wrok`", "work")]
    assert (found[0].span.line, found[0].span.column) == (10, 19)


EXPECTATION_REFUSAL = (
    "counts pods, not requests, so it takes no `of work`; `of NAME` limits latency "
    "(`p50`..`p99`, `max`, `mean`), `errors` or `achieved` to one request template"
)
GUARD_REFUSAL = (
    "counts pods, not requests, so it takes no `of work`; `of NAME` limits an `errors` or "
    "latency guard to one request template"
)


@pytest.mark.parametrize(
    ("line", "subject"),
    [
        ("expect replicas of work >= 1 within 1m", "replicas"),
        ("expect ready replicas of work >= 1 at end", "ready replicas"),
        ("expect desired replicas of work > 0 throughout", "desired replicas"),
    ],
)
def test_replica_expectations_take_no_of(line: str, subject: str) -> None:
    """Replica counts are about pods: `of NAME` is an error that says what it applies to."""
    assert errors(phase("p", "work", line)) == [f"`{subject}` {EXPECTATION_REFUSAL}"]


def test_abort_when_replicas_takes_no_of() -> None:
    """The guard's message names what a guard can limit (no `achieved` guard exists)."""
    assert errors(phase("p", "work") + "  abort when replicas of work > 5") == [
        f"`replicas` {GUARD_REFUSAL}"
    ]


def test_replicas_in_before_take_no_of_either() -> None:
    """`before` holds replica expectations: `of` there is refused like in a phase."""
    body = "  before {\n    expect replicas of work == 1 within 1m\n  }\n" + phase("p", "work")
    assert errors(body) == [f"`replicas` {EXPECTATION_REFUSAL}"]


def test_an_unknown_subject_is_reported_alone() -> None:
    """`latency of work` is an unknown subject; its `of` is not checked on top of that."""
    found = errors(phase("p", "work", "expect latency of nothing < 1s"))
    assert len(found) == 1
    assert found[0].startswith("unknown expectation `latency`")


@pytest.mark.parametrize(
    "line", ["expect p95 of < 2s", "expect p95 of", 'expect p95 of "work" < 2s']
)
def test_of_without_a_name_is_a_syntax_error_that_says_so(line: str) -> None:
    """The message names what is missing instead of lark's bare 'expected a name'."""
    with pytest.raises(ScenarioError) as raised:
        parse(Source("t.scn", scenario(phase("p", "work", line))))
    assert "`of` needs the name of a request template" in str(raised.value)


def test_of_is_a_reserved_word() -> None:
    """Like every keyword, `of` cannot name a request."""
    text = 'scenario "t" {\n  request of = GET "/"\n' + phase("p", "of") + "}\n"
    found = [d.message for d in check(Source("t.scn", text)).errors]
    assert found == ["`of` is a reserved word and cannot name a request"]


def test_nodes_carry_the_request_and_equality_ignores_spans() -> None:
    """`Compare.request` and `Abort.request` hold the name; layout does not change equality,
    the request does."""
    tight = scenario(
        phase("p", "work", "expect p95 of work < 2s") + "  abort when p99 of work > 5s over 30s"
    )
    loose = tight.replace("p95 of work", "p95   of    work").replace("p99 of", "p99  of")
    other = tight.replace("p95 of work", "p95 of health")
    first = parse(Source("a.scn", tight))
    expectation = first.phases[0].expectations[0]
    assert isinstance(expectation, n.Compare)
    assert expectation.request == n.Name("work")
    assert first.aborts[0].request == n.Name("work")
    assert first == parse(Source("b.scn", loose))
    assert first != parse(Source("c.scn", other))


def test_format_expectation_and_guard_include_of() -> None:
    """The judgement text comes from these: it must say which request."""
    parsed = parse(
        Source(
            "t.scn",
            scenario(
                phase("p", "work", "expect errors of work <= 0.5%", "expect p95 < 2s")
                + "  abort when errors of work > 50% over 30s"
            ),
        )
    )
    scoped, blended = parsed.phases[0].expectations
    assert format_expectation(scoped) == "expect errors of work <= 0.5%"
    assert format_expectation(blended) == "expect p95 < 2s"
    assert format_guard(parsed.aborts[0]) == "abort when errors of work > 50% over 30s"


def test_fmt_round_trips_every_new_form() -> None:
    """Loosely written `of` forms: fmt is canonical, a fixed point, and parses back equal."""
    body = (
        phase(
            "p",
            "90% work,10% health",
            "expect   p95   of work<2s",
            "expect errors of  health < 1%",
            "expect achieved of work >=99%",
        )
        + "  expect p99 of health < 500ms  # health only\n"
        + "  abort when errors of work > 50% over 30s\n"
        + "  abort when p99   of work>5s over 30s"
    )
    source = Source("t.scn", scenario(body))
    once = format_scenario(parse(source), source)
    assert "    expect p95 of work < 2s\n" in once
    assert "    expect achieved of work >= 99%\n" in once
    assert "  expect p99 of health < 500ms  # health only\n" in once
    assert "  abort when p99 of work > 5s over 30s\n" in once
    again = Source("f.scn", once)
    assert format_scenario(parse(again), again) == once
    assert parse(again) == parse(source)
