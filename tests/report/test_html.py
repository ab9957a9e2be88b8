"""The HTML report without a browser: structure, the CSP, escaping, odd data, the target curve,
per-request counts, a round trip through the results file, and the report files."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nimbus_scenarios.engine.records import SecondRecord
from nimbus_scenarios.report import files, html
from nimbus_scenarios.report.files import write_reports
from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.results.io import from_json, to_json, write_results
from nimbus_scenarios.results.model import Abort, KillResult, RunResults, ShardInfo, Stage
from tests.support.results import (
    HOSTILE,
    TRACE_ID,
    aborted_results,
    full_results,
    hostile_results,
    infra_results,
    make_results,
    play,
    replica_source,
)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each `<script>` and `<style>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _charts(page: str) -> list[str]:
    return re.findall(r'<svg class="chart" data-chart="([\w-]+)"', page)


def _chart(page: str, key: str) -> str:
    return page.split(f'data-chart="{key}"')[1].split("</svg>", maxsplit=1)[0]


def _body_rows(page: str, table: str) -> int:
    body = page.split(f'<table class="grid {table}"')[1].split("</tbody>", maxsplit=1)[0]
    return body.count("<tr>") - 1  # less the header row


def _points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


def test_full_report_structure() -> None:
    """A finished run has the header facts, four charts on one axis, and all its tables."""
    results = full_results()
    page = render_html(results)
    assert page.startswith("<!DOCTYPE html>")
    assert _charts(page) == ["rate", "latency", "errors", "replicas"]
    assert page.count('class="strip"') == 1
    for text in (
        "checkout-autoscale",
        results.run_id,
        TRACE_ID,
        'href="http://grafana.example.test:3000/explore?schemaVersion=1&amp;orgId=1&amp;panes=',
        f"{TRACE_ID}%22",  # the trace in the Explore link
        '<span class="badge bad">failed</span>',
        "1 (an expectation failed)",
        "consumer-7d9f8b6c5-x2k4q",
        "<code>peak=8/s</code>",
        "2026-11-26 09:44:43 UTC",
        "results schema 2",
    ):
        assert text in page, text
    # the viewBoxes are equally wide, so the charts share one x scale
    assert len(set(re.findall(r'viewBox="0 0 (\d+) ', page))) == 1
    # three replica expectations held on the time axis (the `before` one counts from its stage)
    assert page.count('<circle class="held"') == 3
    # the kill is marked in every chart
    assert page.count('class="marker kill"') == 4
    assert _body_rows(page, "expectations") == len(results.expectations)
    assert _body_rows(page, "phases") == len(results.phases)


def test_expectation_rows_read_in_their_units() -> None:
    """Observed and expected values come from the typed comparator and value, in their unit."""
    page = render_html(full_results())
    rows = page.split('<table class="grid expectations"')[1]
    assert '<td class="num">3.44s</td><td class="num">&lt; 2s</td>' in rows
    assert '<td class="num">5.69s</td><td class="num">&lt; 1.5s</td>' in rows
    assert '<td class="num">100%</td><td class="num">\u2265 95%</td>' in rows
    assert '<td class="num">at +19.8s</td><td class="num">+10.0s \u2192 +35.0s</td>' in rows
    assert '<td class="num">after 4ms</td>' in rows  # a `before` check: from its stage's start
    assert "2 failed, 8 passed" in page


def test_self_contained_and_locked_down() -> None:
    """No external resource anywhere; a CSP allows only the page's own script and style by hash."""
    page = render_html(full_results())
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        assert "src" not in attrs, tag
        if tag == "link":
            assert attrs.get("href") == "data:,"
        if "href" in attrs and tag != "link":
            assert tag == "a"
            assert (attrs["href"] or "").startswith("http://grafana.example.test:3000/explore?")
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page), "only url(#id) references"
    (csp,) = [
        a["content"] for t, a in parsed.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None
    assert "default-src 'none'" in csp
    programs = [a for t, a in parsed.tags if t == "script" and a.get("type") is None]
    assert len(programs) == 1
    data, program = parsed.raw["script"]  # the JSON data block, then the one program
    for source, directive in ((program, "script-src"), (parsed.raw["style"][0], "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "fetch(" not in program
    assert "XMLHttpRequest" not in program
    assert "innerHTML" not in program
    assert data.startswith("{")


def test_hostile_strings_are_escaped() -> None:
    """Markup in every document string stays text: no extra elements, attributes or scripts."""
    results = hostile_results()
    page = render_html(results)
    parsed = _parse(page)
    tags = {tag for tag, _ in parsed.tags}
    assert "img" not in tags
    assert "textarea" not in tags
    assert len(parsed.raw["script"]) == 2
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript:")
    assert "&lt;script&gt;window.__pwned=1" in page
    assert "<code>javascript:window.__pwned=3//</code>" in page  # shown as text, not linked
    data = parsed.raw["script"][0]
    assert "<" not in data
    assert "</script" not in data.lower()
    assert "phase" in data  # the hostile phase names are in the island, escaped
    assert _charts(page) == [
        "rate",
        "latency",
        "errors",
        "replicas",
        "metric-0",
        "metric-1",
        "pods",
    ]
    assert page.count("shop &lt;script&gt;") >= 2  # title and heading
    assert page.count("pod-&lt;script&gt;") >= 2  # the kill's title and the events list
    assert "req &lt;script&gt;" in page  # a cleanup request
    # the scaling section's strings: metric names, pod names, reasons, load changes, notes
    assert "Trigger s0-prometheus&lt;script&gt;" in page
    assert "pod consumer-7d9f8b6c5-a1b2c-&lt;script&gt;" in page
    assert "terminated: &lt;script&gt;" in page
    assert "m&lt;script&gt;" in page
    assert "note &lt;script&gt;" in page


def test_aborted_run() -> None:
    """An aborted run marks the abort in every chart, hatches what did not run, lists why."""
    page = render_html(aborted_results())
    assert '<span class="badge warn">aborted</span>' in page
    assert page.count('class="marker abort"') == 4
    assert 'fill="url(#hatch-rate)"' in page
    assert "not run" in page
    assert "cut short" in page
    assert "Aborted at +3.0s.</strong>" in page
    assert "no replica data" in page
    assert "x&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#39;" in page
    assert "ok &lt;i&gt;" in page


def test_infrastructure_error_has_no_charts() -> None:
    """A run stopped at pre-flight shows the error and says there is nothing to chart."""
    page = render_html(infra_results())
    assert _charts(page) == []
    assert "nothing to chart" in page
    assert "does not answer (connect error)" in page
    assert "<script" not in page  # no data, no hover program
    assert "No expectations were judged (the run stopped before judging)." in page


def _odd(results: RunResults) -> RunResults:
    """Values a document can hold but a person would not expect: NaN, None, empty parts."""
    first = results.expectations[0]
    return dataclasses.replace(
        results,
        duration_s=math.nan,
        abort=Abort("", None, Stage.PHASES),
        kills=(KillResult("hold", math.nan, 1), KillResult("hold", 38.0, 0, error="forbidden")),
        expectations=(dataclasses.replace(first, observed=math.nan, met_at_s=math.inf),),
        replica_source=replica_source(lost_at_s=2.0),
    )


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(infra_results(), id="nothing-ran"),
        pytest.param(dataclasses.replace(full_results(), seconds=()), id="no-seconds"),
        pytest.param(dataclasses.replace(full_results(), replicas=()), id="no-replicas"),
        pytest.param(_odd(full_results()), id="odd-values"),
    ],
)
def test_missing_and_odd_data_render(results: RunResults) -> None:
    """Documents with parts missing, empty or not finite still render a whole page."""
    page = render_html(results)
    assert page.rstrip().endswith("</html>")
    assert results.scenario in page
    assert "nan" not in page.lower().replace("nimbus", "")


def test_phase_without_latency_and_gaps() -> None:
    """Seconds without completions break the latency lines instead of dropping to zero."""
    results = full_results()
    seconds = tuple(
        dataclasses.replace(s, latency_ms=None) if 5 <= s.second < 8 else s for s in results.seconds
    )
    page = render_html(dataclasses.replace(results, seconds=seconds))
    paths = re.findall(r'<path class="series" d="([^"]+)"', _chart(page, "latency"))
    assert len(paths) == 3
    assert all(p.count("M") >= 2 for p in paths)


def test_ramp_target_line_rises() -> None:
    """The target line follows the plan: across a ramp phase it climbs, not a flat mean."""
    text = (
        'scenario "ramp" {\n target "http://h"\n request r = GET "/"\n'
        ' phase "up" 20s {\n  ramp 2/s -> 20/s\n  send r\n }\n}\n'
    )
    page = render_html(make_results(text))
    (d,) = re.findall(r'<path class="series target" d="([^"]+)"', _chart(page, "rate"))
    points = _points(d)
    assert len(points) == 2
    (x0, y0), (x1, y1) = points
    assert x1 > x0
    assert y1 < y0 - 50  # SVG y grows downwards: a rising rate goes up the chart
    assert "target (planned)" in page


def test_spike_and_shard_share_in_the_target_line() -> None:
    """A spike raises the target line for its time; a shard labels the line as its share."""
    full = render_html(full_results())
    (d,) = re.findall(r'<path class="series target" d="([^"]+)"', _chart(full, "rate"))
    heights = {round(y, 1) for _, y in _points(d)}
    assert len(heights) >= 4  # warmup 4/s, the ramp's end 8/s, the 16/s spike, idle 0/s
    shard = render_html(full_results(shard=ShardInfo(1, 2)))
    assert "target (this shard&#39;s share)" in shard
    assert "1 of 2" in shard


def test_per_request_counts() -> None:
    """The run's per-request-template counts are a table, with status codes; phases below."""
    results = full_results()
    page = render_html(results)
    requests = page.split('<table class="grid requests" data-scope="run">')[1].split("</table>")[0]
    for request in results.totals.requests:
        assert f'<td class="pname">{request.name}</td>' in requests
    missing = next(r for r in results.totals.requests if r.name == "missing")
    assert f"404\u00d7{missing.status_counts[404]}" in requests
    assert f'<td class="num hot">{missing.failed}</td>' in requests
    assert '<table class="grid requests" data-scope="ramp">' in page
    assert _body_rows(page, 'requests" data-scope="ramp') == 3  # work, health, missing


def test_per_request_counts_show_truncated_bodies() -> None:
    """A template's truncated answers have their own column, after timed out."""
    results = full_results()
    work = dataclasses.replace(results.totals.requests[0], truncated=7, timed_out=3)
    totals = dataclasses.replace(results.totals, requests=(work, *results.totals.requests[1:]))
    page = render_html(dataclasses.replace(results, totals=totals))
    requests = page.split('<table class="grid requests" data-scope="run">')[1].split("</table>")[0]
    assert "<th>timed out</th><th>truncated</th><th>dropped</th>" in requests
    row = requests.split(f'<td class="pname">{work.name}</td>')[1].split("</tr>")[0]
    assert re.search(r">3</td><td[^>]*>7</td>", row), row


def test_round_trip_through_the_results_file(tmp_path: Path) -> None:
    """A document written with results.io and read back renders exactly the same page."""
    for results in (full_results(), aborted_results(), infra_results()):
        path = write_results(results, tmp_path / "run.json")
        back = from_json(path.read_text(encoding="utf-8"))
        assert back == results
        assert render_html(back) == render_html(results)
    assert render_html(from_json(to_json(full_results(shard=ShardInfo(1, 3))))) == render_html(
        full_results(shard=ShardInfo(1, 3))
    )


def test_long_run_uses_clock_labels_and_stays_fast() -> None:
    """A two-hour run renders in well under two seconds with h:mm:ss ticks."""
    text = 'scenario "soak" {\n target "http://h"\n request r = GET "/"\n'
    text += ' phase "soak" 2h {\n  rate 50/s\n  send r\n }\n}\n'
    plan_results = make_results(text, seconds=())
    seconds: tuple[SecondRecord, ...] = play(
        plan_results.plan, 7200.0, failing=lambda s: s % 2, latency=lambda _s: (20.0, 80.0, 150.0)
    )
    results = dataclasses.replace(plan_results, seconds=seconds)
    started = time.perf_counter()
    page = render_html(results)
    assert time.perf_counter() - started < 2.0
    assert ">1:00:00<" in page
    assert ">2:00:00<" in page


def test_write_reports(tmp_path: Path) -> None:
    """Both reports are written where asked, and nothing else is left in the directory."""
    results = full_results()
    html_path = tmp_path / "out" / "report.html"
    junit_path = tmp_path / "junit.xml"
    written = write_reports(results, html_path, junit_path)
    assert written == [html_path, junit_path]
    assert html_path.read_text(encoding="utf-8") == render_html(results)
    assert junit_path.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["junit.xml", "out", "report.html"]
    assert write_reports(results, None, None) == []


def test_write_reports_writes_nothing_when_rendering_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If one report cannot be rendered, neither file is written (or replaced)."""

    def broken(results: RunResults) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(files, "render_junit", broken)
    html_path = tmp_path / "report.html"
    html_path.write_text("old")
    with pytest.raises(RuntimeError):
        write_reports(full_results(), html_path, tmp_path / "junit.xml")
    assert html_path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_lone_surrogate_is_written() -> None:
    """A lone surrogate from the JSON does not stop the page from being encoded."""
    results = dataclasses.replace(full_results(), scenario="x\ud800y", notes=("n\udfff",))
    page = render_html(results)
    page.encode("utf-8")
    assert "x?y" in page
    assert HOSTILE not in page


def test_grafana_link_forms() -> None:
    """With a trace id Grafana links to the trace; without one, to Grafana; never to a non-URL."""
    page = render_html(full_results(trace_id=None))
    assert '<a href="http://grafana.example.test:3000" rel="noopener noreferrer"' in page
    assert ">open Grafana</a>" in page
    page = render_html(full_results(grafana_url="data:text/html,<b>x</b>"))
    assert "open Grafana" not in page
    assert "<code>data:text/html,&lt;b&gt;x&lt;/b&gt;</code>" in page
    assert "grafana" not in render_html(full_results(grafana_url=None)).split("<main>")[1][:2000]


def test_assets_ship_and_cannot_end_their_elements() -> None:
    """The inlined CSS and JS come from the package and cannot close their own elements."""
    css = html.asset("report.css")
    js = html.asset("report.js")
    assert css
    assert js
    assert "</style" not in css.lower()
    assert "</script" not in js.lower()
    assert "<!--" not in js
    assert "targetAt" in js  # the hover read-out interpolates the planned curve


def test_written_files_are_readable(tmp_path: Path) -> None:
    """Reports get the mode open() would give them, not mkstemp's 0600."""
    mask = os.umask(0o022)
    try:
        (written,) = write_reports(aborted_results(), tmp_path / "r.html", None)
    finally:
        os.umask(mask)
    assert written.stat().st_mode & 0o777 == 0o644
