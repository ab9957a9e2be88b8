"""The JUnit XML report: each expectation of a run as a test case, for CI test views.

`render_junit(results)` turns a `RunResults` into one `<testsuite>` named
`nimbus-scenarios.<scenario>` (inside a `<testsuites>` root, which every common JUnit reader
accepts):

- one `<testcase>` per expectation, `classname` its scope (`before`, a phase name, `scenario`,
  `after`) and `name` its text; a per-request expectation (`expect p95 of work < 2s`) has
  `classname` `SCOPE.NAME` (`ramp.work`), so CI views group each request's cases, and a
  `request` property; a failed one has `<failure message="observed X, expected CMP V">`
  (values in the expectation's unit, from its comparator and value) with the verdict's detail as
  text, a not-judged one `<skipped message="not judged: ...">`;
- a `<testcase classname="run" name="abort">` with an `<error>` when the run aborted;
- a `<testcase classname="run" name="infrastructure">` with an `<error>` for an infrastructure
  error (pre-flight failed) or a replica source lost during the run.

The suite's `time` is the run's `duration_s`; a test case's `time` is how long its expectation
was watched: for a `within` window that held, until it held; for any other window, the window;
for a phase's load expectation, the time the phase ran; for the scenario's, the time from the
first phase's start to the last one's end; for `before`/`after` checks, until they held; the
abort case's, the abort offset. The counts (`tests`, `failures`, `errors`, `skipped`) are those
of the cases. Run facts (run id, verdict, exit code, trace id, target, Grafana link) are
`<properties>`; the suite's `timestamp` is the start in UTC without a zone.

The XML is built with `xml.etree.ElementTree`, so markup in names and texts is escaped;
characters XML 1.0 cannot carry at all (control characters, lone surrogates) are written as
`\\xNN` / `\\uNNNN`.

Its place: next to `report.html`, which it does not import; `report.files` writes both.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Final

from nimbus_scenarios.language.nodes import WindowKind
from nimbus_scenarios.report._format import expectation_value, expected_value, finite
from nimbus_scenarios.results.model import Judgement, RunResults, Verdict
from nimbus_scenarios.secrets import mask_url

__all__ = ["failure_message", "render_junit"]

_ILLEGAL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: object) -> str:
    """`value` as text that XML 1.0 can carry (illegal characters spelled out)."""
    text = value if isinstance(value, str) else str(value)

    def spell(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _ILLEGAL.sub(spell, text)


def _seconds(value: float | None) -> str:
    return f"{max(finite(value) or 0.0, 0.0):.3f}"


def _phase_times(results: RunResults) -> dict[str, tuple[float, float]]:
    return {p.name: p.ran_s for p in results.phases if p.ran_s is not None}


def _case_time(judgement: Judgement, phases: Mapping[str, tuple[float, float]]) -> float:
    """How long the expectation was watched (see the module doc)."""
    e = judgement.expectation
    met = judgement.met_at_s
    window = judgement.window_s
    if window is not None:
        start, end = window
        if met is not None and e.window is WindowKind.WITHIN:
            return met - start
        return end - start
    if e.scope in {"before", "after"}:
        return met or 0.0
    if e.scope in phases:
        start, end = phases[e.scope]
        return end - start
    if e.scope == "scenario" and phases:
        return max(end for _, end in phases.values()) - min(s for s, _ in phases.values())
    return 0.0


def failure_message(judgement: Judgement) -> str:
    """`observed 3.44s, expected < 2s`: both values in the expectation's unit."""
    e = judgement.expectation
    observed = expectation_value(e.kind, judgement.observed)
    return f"observed {observed}, expected {expected_value(e, symbol=False)}"


def _timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC without the zone, as the JUnit schema spells it."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def _case(suite: ET.Element, classname: str, name: str, time: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=_clean(classname), name=_clean(name), time=_seconds(time)
    )


def _properties(suite: ET.Element, results: RunResults) -> None:
    properties = ET.SubElement(suite, "properties")
    facts: tuple[tuple[str, object], ...] = (
        ("run_id", results.run_id),
        ("verdict", results.verdict.value),
        ("exit_code", int(results.exit_code)),
        ("trace_id", results.trace_id),
        ("target", mask_url(results.target)),
        ("grafana_url", results.grafana_url),
    )
    for key, value in facts:
        if value is not None and value != "":
            ET.SubElement(properties, "property", name=key, value=_clean(value))


def render_junit(results: RunResults) -> str:
    """The JUnit XML report of one results document (an XML declaration, then `<testsuites>`)."""
    root = ET.Element("testsuites", name="nimbus-scenarios")
    suite = ET.SubElement(root, "testsuite", name=_clean(f"nimbus-scenarios.{results.scenario}"))
    _properties(suite, results)

    phases = _phase_times(results)
    tests = failures = errors = skipped = 0
    for judgement in results.expectations:
        e = judgement.expectation
        tests += 1
        per_request = e.request is not None and e.kind.over_load
        classname = f"{e.scope}.{e.request}" if per_request else e.scope
        case = _case(suite, classname, e.text, _case_time(judgement, phases))
        if per_request:
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="request", value=_clean(e.request))
        detail = judgement.detail
        if judgement.verdict is Verdict.FAILED:
            failures += 1
            message = _clean(failure_message(judgement))
            ET.SubElement(case, "failure", message=message, type="failed").text = _clean(detail)
        elif judgement.verdict is Verdict.NOT_JUDGED:
            skipped += 1
            ET.SubElement(case, "skipped", message=_clean(f"not judged: {detail or 'no data'}"))

    abort = results.abort
    if abort is not None:
        tests += 1
        errors += 1
        at = finite(abort.at_s)
        reason = abort.reason or "aborted"
        case = _case(suite, "run", "abort", at or 0.0)
        message = f"aborted at +{at:.1f}s: {reason}" if at is not None else f"aborted: {reason}"
        ET.SubElement(case, "error", message=_clean(message), type="aborted").text = _clean(reason)

    lost_at = finite(results.lost_at_s)
    if results.error or lost_at is not None:
        tests += 1
        errors += 1
        if results.error:
            message = results.error
        else:
            source = results.replica_source
            description = (source.description if source is not None else "") or "replicas"
            message = f"replica source {description} lost at +{lost_at:.1f}s"
        case = _case(suite, "run", "infrastructure", 0.0)
        error = ET.SubElement(case, "error", message=_clean(message), type="infrastructure")
        error.text = _clean(message)

    attributes = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": _seconds(results.duration_s),
    }
    for element in (root, suite):
        for key, value in attributes.items():
            element.set(key, value)
    suite.set("timestamp", _timestamp(results.started_at))
    suite.set("id", "0")
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
