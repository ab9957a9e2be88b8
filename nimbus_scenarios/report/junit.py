"""The JUnit XML report: each expectation of a run as a test case, for CI test views.

`render_junit(document)` turns a results document into one `<testsuite>` named
`nimbus-scenarios.<scenario>` (inside a `<testsuites>` root, which every common JUnit reader
accepts):

- one `<testcase>` per expectation, `classname` its scope (`before`, a phase name, `scenario`,
  `after`) and `name` its text; a failed one has `<failure message="observed X, expected CMP V">`
  with the verdict's detail as text, a not-judged one `<skipped message="not judged: ...">`;
- a `<testcase classname="run" name="abort">` with an `<error>` when the run aborted;
- a `<testcase classname="run" name="infrastructure">` with an `<error>` for an infrastructure
  error (pre-flight failed) or a replica source lost during the run.

The suite's `time` is the run's `duration_s`; a test case's `time` is how long its expectation
was watched: for a `within` window that held, until it held; for any other window, the window;
for a phase's load expectation, the time the phase ran; for the scenario's, the time from the
first phase's start to the last one's end; for `before`/`after` checks, until they held. The
counts (`tests`, `failures`, `errors`, `skipped`) are those of the cases. Run facts (run id,
verdict, exit code, trace id, target, Grafana link) are `<properties>`.

The XML is built with `xml.etree.ElementTree`, so markup in names and texts is escaped;
characters XML 1.0 cannot carry at all (control characters, lone surrogates) are written as
`\\xNN` / `\\uNNNN`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from nimbus_scenarios.report.html import expectation_value, split_expected

__all__ = ["render_junit"]

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: object) -> str:
    """`value` as text that XML 1.0 can carry (illegal characters spelled out)."""
    text = value if isinstance(value, str) else str(value)

    def spell(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _ILLEGAL.sub(spell, text)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _seconds(value: float | None) -> str:
    return f"{max(value or 0.0, 0.0):.3f}"


def _span(pair: object) -> tuple[float, float] | None:
    items = _list(pair)
    if len(items) != 2:
        return None
    start, end = _num(items[0]), _num(items[1])
    return None if start is None or end is None else (start, end)


def _phase_times(document: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    times = {}
    for item in _list(document.get("phases")):
        phase = _dict(item)
        ran = _span(phase.get("ran_s"))
        if ran is not None:
            times[str(phase.get("name"))] = ran
    return times


def _case_time(e: Mapping[str, Any], phases: Mapping[str, tuple[float, float]]) -> float:
    """How long expectation `e` was watched (see the module doc)."""
    scope = str(e.get("scope", ""))
    met = _num(e.get("met_at_s"))
    window = _span(e.get("window_s"))
    if window is not None:
        start, end = window
        if met is not None and e.get("window") == "within":
            return met - start
        return end - start
    if scope in {"before", "after"}:
        return met or 0.0
    if scope in phases:
        start, end = phases[scope]
        return end - start
    if scope == "scenario" and phases:
        return max(end for _, end in phases.values()) - min(s for s, _ in phases.values())
    return 0.0


def _failure_message(e: Mapping[str, Any]) -> str:
    kind = str(e.get("kind", ""))
    observed = expectation_value(kind, _num(e.get("observed")))
    comparator, expected = split_expected(kind, e.get("expected"))
    return f"observed {observed}, expected {comparator} {expected}".replace("  ", " ").strip()


def _timestamp(value: object) -> str | None:
    """ISO 8601 in UTC without the zone, as the JUnit schema spells it."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def _case(suite: ET.Element, classname: str, name: str, time: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=_clean(classname), name=_clean(name), time=_seconds(time)
    )


def render_junit(document: Mapping[str, Any]) -> str:
    """The JUnit XML report of one results document (an XML declaration, then `<testsuites>`)."""
    scenario = str(document.get("scenario", "?"))
    duration = _num(document.get("duration_s"))
    root = ET.Element("testsuites", name="nimbus-scenarios")
    suite = ET.SubElement(root, "testsuite", name=_clean(f"nimbus-scenarios.{scenario}"))
    properties = ET.SubElement(suite, "properties")
    for key in ("run_id", "verdict", "exit_code", "trace_id", "target", "grafana_url"):
        value = document.get(key)
        if value is not None and value != "":
            ET.SubElement(properties, "property", name=key, value=_clean(value))

    phases = _phase_times(document)
    tests = failures = errors = skipped = 0
    for item in _list(document.get("expectations")):
        e = _dict(item)
        tests += 1
        case = _case(
            suite,
            str(e.get("scope", "scenario")),
            str(e.get("text", "expectation")),
            _case_time(e, phases),
        )
        verdict = e.get("verdict")
        detail = str(e.get("detail") or "")
        if verdict == "failed":
            failures += 1
            failure = ET.SubElement(
                case, "failure", message=_clean(_failure_message(e)), type="failed"
            )
            failure.text = _clean(detail)
        elif verdict == "not_judged":
            skipped += 1
            ET.SubElement(case, "skipped", message=_clean(f"not judged: {detail or 'no data'}"))
        elif verdict != "passed":
            errors += 1
            ET.SubElement(
                case, "error", message=_clean(f"unknown verdict {verdict!r}"), type="verdict"
            ).text = _clean(detail)

    abort = _dict(document.get("abort"))
    if abort:
        tests += 1
        errors += 1
        at = _num(abort.get("at_s"))
        reason = str(abort.get("reason") or "aborted")
        case = _case(suite, "run", "abort", at or 0.0)
        message = f"aborted at +{at:.1f}s: {reason}" if at is not None else f"aborted: {reason}"
        ET.SubElement(case, "error", message=_clean(message), type="aborted").text = _clean(reason)

    infrastructure = document.get("error")
    lost_at = _num(_dict(document.get("replica_source")).get("lost_at_s"))
    if infrastructure or lost_at is not None:
        tests += 1
        errors += 1
        if infrastructure:
            message = str(infrastructure)
        else:
            description = _dict(document.get("replica_source")).get("description") or "replicas"
            message = f"replica source {description} lost at +{lost_at:.1f}s"
        case = _case(suite, "run", "infrastructure", 0.0)
        ET.SubElement(case, "error", message=_clean(message), type="infrastructure").text = _clean(
            message
        )

    attributes = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": _seconds(duration),
    }
    timestamp = _timestamp(document.get("started_at"))
    for element in (root, suite):
        for key, value in attributes.items():
            element.set(key, value)
    if timestamp:
        suite.set("timestamp", timestamp)
    suite.set("id", "0")
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
