"""The HTML report without a browser: structure, escaping, missing data and the report files."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.report import html as report_html
from nimbus_scenarios.report.html import (
    expectation_value,
    render_html,
    split_expected,
    write_reports,
)
from tests.report.conftest import HOSTILE, hostile_document, load_document, minimal_document


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
    return re.findall(r'<svg class="chart" data-chart="(\w+)"', page)


def test_full_report_structure() -> None:
    """A finished run has the header facts, four charts on one axis, and both tables."""
    document = load_document("run_full")
    page = render_html(document)
    assert page.startswith("<!DOCTYPE html>")
    assert _charts(page) == ["rate", "latency", "errors", "replicas"]
    assert page.count('class="strip"') == 1
    for text in (
        "checkout-autoscale",
        document["run_id"],
        document["trace_id"],
        'href="http://grafana.example.test:3000/explore?schemaVersion=1&amp;orgId=1&amp;panes=',
        "4bf92f3577b34da6a3ce929d0e0e4736%22",  # the trace in the Explore link
        '<span class="badge bad">failed</span>',
        "1 (an expectation failed)",
        "consumer-7d9f8b6c5-x2k4q",
    ):
        assert text in page, text
    # the viewBoxes are equally wide, so the charts share one x scale
    assert len(set(re.findall(r'viewBox="0 0 (\d+) ', page))) == 1
    # three replica expectations held on the time axis (the `before` one counts from its stage)
    assert page.count('<circle class="held"') == 3
    # the kill is marked in every chart
    assert page.count('class="marker kill"') == 4
    header_rows = 2
    assert page.count("<tr>") == header_rows + len(document["expectations"]) + len(
        document["phases"]
    )


def test_expectation_values_in_their_units() -> None:
    """Observed and expected values read in the expectation's unit."""
    assert expectation_value("latency", 3.441) == "3.44s"
    assert expectation_value("latency", 0.003653) == "3.65ms"
    assert expectation_value("errors", 52.380952) == "52.4%"
    assert expectation_value("achieved", 100.0) == "100%"
    assert expectation_value("replicas", 2.0) == "2"
    assert expectation_value("succeeds", 0.0) == "did not succeed"
    assert expectation_value("latency", None) == "nothing"
    assert split_expected("latency", "< 0.001") == ("<", "1ms")
    assert split_expected("errors", ">= 95") == (">=", "95%")
    assert split_expected("replicas", "not a number") == ("", "not a number")


def test_self_contained_and_locked_down() -> None:
    """No external resource anywhere; a CSP allows only the page's own script and style by hash."""
    page = render_html(load_document("run_full"))
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
    scripts = parsed.raw["script"]
    data, program = scripts  # the JSON data block, then the one program
    for source, directive in ((program, "script-src"), (parsed.raw["style"][0], "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "fetch(" not in program
    assert "XMLHttpRequest" not in program
    assert "innerHTML" not in program
    assert data.startswith("{")


def test_hostile_strings_are_escaped() -> None:
    """Markup in every document string stays text: no extra elements, attributes or scripts."""
    document = hostile_document()
    page = render_html(document)
    parsed = _parse(page)
    tags = {tag for tag, _ in parsed.tags}
    assert "img" not in tags
    assert "textarea" not in tags
    assert len(parsed.raw["script"]) == 2
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript:")
    assert "&lt;script&gt;window.__pwned=1" in page
    assert "javascript:window.__pwned=3//" in page  # shown as text, not linked
    data = parsed.raw["script"][0]
    assert "<" not in data
    assert "</script" not in data.lower()
    # the names survive as text
    assert _charts(page) == ["rate", "latency", "errors", "replicas"]
    assert page.count("shop &lt;script&gt;") >= 2  # title and heading


def test_aborted_run() -> None:
    """An aborted run marks the abort in every chart, hatches what did not run, lists why."""
    document = load_document("run_aborted")
    page = render_html(document)
    assert '<span class="badge warn">aborted</span>' in page
    assert page.count('class="marker abort"') == 4
    assert 'fill="url(#hatch-rate)"' in page
    assert "not run" in page
    assert "cut short" in page
    assert "Aborted at +3.0s." in page
    assert "no replica data" in page


def test_infrastructure_error_has_no_charts() -> None:
    """A run stopped at pre-flight shows the error and says there is nothing to chart."""
    page = render_html(load_document("run_infra"))
    assert _charts(page) == []
    assert "nothing to chart" in page
    assert "does not answer (connect error)" in page
    assert "<script>" not in page  # no data, no hover program


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({}, id="minimal"),
        pytest.param({"seconds": []}, id="no-seconds"),
        pytest.param({"seconds": None, "phases": None, "expectations": None}, id="nulls"),
        pytest.param({"replicas": [[1.0, 1, 1]], "replica_source": {"lost_at_s": 2.0}}, id="lost"),
        pytest.param(
            {
                "phases": [{"name": "p", "start_s": 0, "end_s": 5, "ran": True, "ran_s": [0, 5]}],
                "seconds": [{"second": 2, "sent": 3, "latency_ms": None}, {"second": "x"}],
                "kills": [{"at_s": 1, "error": "forbidden"}, {"at_s": None}],
                "abort": {"reason": None, "at_s": None},
                "expectations": [{"verdict": "weird"}, "not a dict"],
                "duration_s": float("nan"),
            },
            id="odd-values",
        ),
    ],
)
def test_missing_and_odd_data_render(change: dict[str, Any]) -> None:
    """Documents with parts missing, null or malformed still render a page."""
    document = minimal_document()
    document.update(change)
    page = render_html(document)
    assert page.rstrip().endswith("</html>")
    assert "bare" in page


def test_phase_without_latency_and_gaps() -> None:
    """Seconds without completions break the latency lines instead of dropping to zero."""
    document = load_document("run_full")
    for second in document["seconds"][5:8]:
        second["latency_ms"] = None
    page = render_html(document)
    latency = page.split('data-chart="latency"')[1].split("</svg>")[0]
    paths = re.findall(r'<path class="series" d="([^"]+)"', latency)
    assert len(paths) == 3
    assert all(p.count("M") >= 2 for p in paths)


def test_long_run_uses_clock_labels_and_stays_fast() -> None:
    """A two-hour run renders in well under a second with h:mm:ss ticks."""
    document = load_document("run_full")
    document["phases"] = [
        {
            "name": "soak",
            "start_s": 0,
            "end_s": 7200,
            "ran": True,
            "ran_s": [0, 7200],
            "target_rate": 50.0,
            "shape": "rate 50/s",
        }
    ]
    document["seconds"] = [
        {
            "second": s,
            "scheduled": 50,
            "sent": 50,
            "dropped": 0,
            "succeeded": 49,
            "failed": 1,
            "latency_ms": {"count": 50, "p50": 20.0, "p95": 80.0, "p99": 150.0, "max": 300.0},
        }
        for s in range(7200)
    ]
    started = time.perf_counter()
    page = render_html(document)
    assert time.perf_counter() - started < 2.0
    assert ">1:00:00<" in page
    assert ">2:00:00<" in page


def test_write_reports(tmp_path: Path) -> None:
    """Both reports are written where asked, and nothing else is left in the directory."""
    document = load_document("run_full")
    html_path = tmp_path / "out" / "report.html"
    junit_path = tmp_path / "junit.xml"
    written = write_reports(document, html_path, junit_path)
    assert written == [html_path, junit_path]
    assert html_path.read_text(encoding="utf-8") == render_html(document)
    assert junit_path.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["junit.xml", "out", "report.html"]
    assert write_reports(document, None, None) == []


def test_write_reports_writes_nothing_when_rendering_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If one report cannot be rendered, neither file is written (or replaced)."""
    from nimbus_scenarios.report import junit

    def broken(document: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(junit, "render_junit", broken)
    html_path = tmp_path / "report.html"
    html_path.write_text("old")
    with pytest.raises(RuntimeError):
        write_reports(load_document("run_full"), html_path, tmp_path / "junit.xml")
    assert html_path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_lone_surrogate_is_written() -> None:
    """A lone surrogate from the JSON does not stop the page from being encoded."""
    document = load_document("run_full")
    document["scenario"] = "x\ud800y"
    page = render_html(document)
    page.encode("utf-8")
    assert report_html._text("a\udfffb") == "a?b"
    assert HOSTILE not in page


def test_grafana_link_forms() -> None:
    """With a trace id Grafana links to the trace; without one, to Grafana; never to a non-URL."""
    document = load_document("run_full")
    document["trace_id"] = None
    page = render_html(document)
    assert '<a href="http://grafana.example.test:3000" rel="noopener noreferrer"' in page
    assert ">open Grafana</a>" in page
    document["grafana_url"] = "data:text/html,<b>x</b>"
    page = render_html(document)
    assert "open Grafana" not in page
    assert "<code>data:text/html,&lt;b&gt;x&lt;/b&gt;</code>" in page


def test_assets_ship_and_cannot_end_their_elements() -> None:
    """The inlined CSS and JS come from the package and cannot close their own elements."""
    css = report_html._asset("report.css")
    js = report_html._asset("report.js")
    assert css
    assert js
    assert "</style" not in css.lower()
    assert "</script" not in js.lower()
    assert "<!--" not in js


def test_written_files_are_readable(tmp_path: Path) -> None:
    """Reports get the mode open() would give them, not mkstemp's 0600."""
    mask = os.umask(0o022)
    try:
        (written,) = write_reports(load_document("run_aborted"), tmp_path / "r.html", None)
    finally:
        os.umask(mask)
    assert written.stat().st_mode & 0o777 == 0o644
