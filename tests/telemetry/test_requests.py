"""Tests of `_requests`: the URL a request span shows, headers, and what the observer records."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    error_outcome,
    prepare,
    status_outcome,
)
from nimbus_scenarios.plan.model import Template, Text
from nimbus_scenarios.secrets import MASK
from nimbus_scenarios.telemetry._durations import DurationHistogram, duration_attributes
from nimbus_scenarios.telemetry._requests import RequestSpans, shown_url
from nimbus_scenarios.telemetry._spans import RunSpans
from nimbus_scenarios.telemetry._walltime import WallTime
from nimbus_scenarios.telemetry._wire import RequestSpan
from tests.telemetry.conftest import compile_text


def _template(*query: tuple[str, Text], path: str = "/process") -> Template:
    return Template(name="t", method="post", path=path, query=query)


def test_secret_and_env_query_values_show_the_one_mask() -> None:
    """Secret and `env(...)` query values are `secrets.MASK`, written readably; others as sent."""
    template = _template(
        ("cpu", Text("5")),
        ("token", Text("", env="NIMBUS_TOKEN")),
        ("key", Text("s3cr3t", secret=True)),
    )
    shown = shown_url("http://127.0.0.1:8000", template)
    assert shown == f"http://127.0.0.1:8000/process?cpu=5&token={MASK}&key={MASK}"
    assert "s3cr3t" not in shown


def test_values_are_encoded_as_prepare_sends_them() -> None:
    """Non-secret values (spaces, ampersands, unicode) and a query in the path read as sent."""
    template = _template(("q", Text("a b&c")), ("u", Text("é")), path="/search?fixed=1")
    sent = prepare("POST", "http://h:81/api/", "/search?fixed=1", [("q", "a b&c"), ("u", "é")])
    assert shown_url("http://h:81/api/", template) == sent.url


def test_a_password_in_the_target_is_masked() -> None:
    """`user:password@` in the base URL shows the password as the mask."""
    shown = shown_url("https://bob:hunter2@target.test", _template(("a", Text("1"))))
    assert shown == f"https://bob:{MASK}@target.test/process?a=1"


def test_a_base_that_is_not_a_url_is_shown_as_written() -> None:
    """A base URL `prepare` refuses still gives a readable URL (nothing sent has it anyway)."""
    assert shown_url("target.test/", _template()) == "target.test/process"


# ---------------------------------------------------------------------------- the hot path
WALL_START = 2_000_000_000.0


class Recorder:
    """`RequestSpans` with tracing to nowhere: what it submits and what the histogram counts."""

    def __init__(self, text: str, *, url: str | None = "http://127.0.0.1:8000") -> None:
        self.plan = compile_text(text)
        self.clock = ManualClock(wall_start=WALL_START)
        wall = WallTime(self.clock)
        self.spans = RunSpans(
            TracerProvider().get_tracer("test"), self.plan, url=url, run_id="given", wall=wall
        )
        self.submitted: list[RequestSpan] = []
        self.durations = DurationHistogram((0.1, 1.0), duration_attributes)
        self.requests = RequestSpans(
            self.plan,
            url=url,
            run_id="given",
            wall=wall,
            spans=self.spans,
            submit=self.submitted.append,
            durations=self.durations,
        )
        self.requests.run_started(self.plan, "run0")
        self.spans.phase_started(self.plan.phases[0], 0.0)

    def send(self, outcome: Outcome, *, sent: float = 1.0, done: float = 1.5) -> None:
        extra = self.requests.headers_for("p", "a")
        self.requests.observe("p", "a", 0.75, sent, done, outcome, outcome.status == 200, extra)


def _scenario(sample: str) -> str:
    return (
        'scenario "r" {\n  settings {\n    trace_sample ' + sample + "\n  }\n"
        '  request a = POST "/work?x=1" {\n    query token = env("TOKEN")\n  }\n'
        '  phase "p" 1s {\n    rate 1/s\n    send a\n  }\n}\n'
    )


def test_unsampled_requests_name_the_phase_and_record_only_their_duration() -> None:
    """At 0%: flags 00 and the phase span as parent; no span recorded, the duration counted."""
    recorder = Recorder(_scenario("0%"))
    phase = recorder.spans.parent("p")
    headers = recorder.requests.headers_for("p", "a")
    assert headers == (("traceparent", f"00-{recorder.spans.trace_hex}-{phase.span_hex}-00"),)
    recorder.send(status_outcome(200))
    assert recorder.submitted == []
    metric = recorder.durations.metric()
    assert metric is not None
    assert [p.count for p in metric.data.data_points] == [1]


def test_sampled_requests_become_spans_on_the_run_clock() -> None:
    """At 100%: a fresh span id per request; its span carries it, times on the run's clock."""
    recorder = Recorder(_scenario("100%"))
    headers = recorder.requests.headers_for("p", "a")
    assert headers is not None
    version, trace_id, span_id, flags = headers[0][1].split("-")
    assert (version, trace_id, flags) == ("00", recorder.spans.trace_hex, "01")
    assert span_id != recorder.spans.parent("p").span_hex
    recorder.send(status_outcome(200))
    recorder.send(status_outcome(503))
    recorder.send(error_outcome(ErrorKind.timeout))
    ok, refused, timed_out = recorder.submitted
    assert ok.start_ns == round((WALL_START + 1.0) * 1e9)
    assert ok.end_ns == round((WALL_START + 1.5) * 1e9)
    assert ok.lateness_ms == 250.0
    assert (ok.status, ok.error_type, ok.ok) == (200, None, True)
    assert (refused.status, refused.error_type, refused.ok) == (503, "503", False)
    assert (timed_out.status, timed_out.error_type) == (None, "timeout")
    assert ok.shape is refused.shape  # built once per phase and template
    assert ok.shape.parent == recorder.spans.parent("p").context
    assert ok.shape.name == "POST /work"
    assert ok.shape.attributes == {
        "nimbus.scenario": "r",
        "nimbus.phase": "p",
        "nimbus.template": "a",
        "nimbus.run_id": "run0",
        "http.request.method": "POST",
        "url.full": f"http://127.0.0.1:8000/work?x=1&token={MASK}",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "url.template": "/work",
    }


def test_without_tracing_only_durations_are_kept() -> None:
    """No span tree: no headers, and the observer counts durations (extra headers are None)."""
    plan = compile_text(_scenario("100%"))
    durations = DurationHistogram((0.1,), duration_attributes)
    requests = RequestSpans(
        plan,
        url=None,
        run_id="r",
        wall=WallTime(ManualClock()),
        spans=None,
        submit=None,
        durations=durations,
    )
    assert requests.headers_for("p", "a") is None
    requests.observe("p", "a", 0.0, 0.0, 0.05, status_outcome(200), True, None)
    metric = durations.metric()
    assert metric is not None
    (point,) = metric.data.data_points
    assert (point.count, point.bucket_counts) == (1, (1, 0))


def test_the_duration_histogram_times_every_finished_request() -> None:
    """Unlike the results' latency, a request with no response is timed too, to its error; each
    way of ending is its own series (outcome, status class, error.type)."""
    recorder = Recorder(_scenario("0%"))
    recorder.send(status_outcome(200))
    recorder.send(status_outcome(200), done=1.05)
    recorder.send(status_outcome(503))
    recorder.send(error_outcome(ErrorKind.timeout), done=31.0)
    recorder.send(error_outcome(ErrorKind.reset))
    metric = recorder.durations.metric()
    assert metric is not None
    found = {
        (p.attributes["outcome"], p.attributes["status_class"], p.attributes.get("error.type")): (
            p.count,
            p.bucket_counts,
        )
        for p in metric.data.data_points
    }
    assert found == {
        ("success", "2xx", None): (2, (1, 1, 0)),
        ("error", "5xx", "503"): (1, (0, 1, 0)),
        ("error", "none", "timeout"): (1, (0, 0, 1)),
        ("error", "none", "reset"): (1, (0, 1, 0)),
    }
    assert {p.attributes["request"] for p in metric.data.data_points} == {"a"}
    assert all(p.exemplars == [] for p in metric.data.data_points)  # nothing was sampled


def test_sampled_requests_leave_exemplars_naming_their_spans() -> None:
    """Trace-based exemplars: each sampled request's span id and the run's trace id."""
    recorder = Recorder(_scenario("100%"))
    recorder.send(status_outcome(200))
    recorder.send(error_outcome(ErrorKind.timeout), done=31.0)
    spans = {span.span_id: span for span in recorder.submitted}
    metric = recorder.durations.metric()
    assert metric is not None
    exemplars = [e for p in metric.data.data_points for e in p.exemplars]
    assert sorted(e.value for e in exemplars) == [0.5, 30.0]
    assert {e.span_id for e in exemplars} == set(spans)
    assert {e.trace_id for e in exemplars} == {int(recorder.spans.trace_hex, 16)}
    again = recorder.durations.metric()
    assert again is not None
    assert all(p.exemplars == [] for p in again.data.data_points)  # handed out once
