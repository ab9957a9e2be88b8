"""The HTML report's per-request section (`report.per_request`, the per-request chart of
`report.charts`): when it shows, each template's p95 line on the run's time axis, and the
failures by template and by failing status or error kind, in the run and in each phase."""

from __future__ import annotations

import dataclasses
import json
import re

from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.report.per_request import per_request
from nimbus_scenarios.report.timeline import build_timeline
from tests.report.test_html import _chart, _charts, _points
from tests.support.results import full_results, make_results, per_request_results


def _paths(svg: str) -> dict[str, str]:
    """Each titled series path of a chart: its title -> its path data."""
    return {
        title: d
        for d, title in re.findall(
            r'<path class="series" d="([^"]+)"[^>]*><title>([^<]+)</title>', svg
        )
    }


def test_each_template_has_a_p95_line_on_the_run_axis() -> None:
    """The section's chart draws one p95 line per template, on the latency chart's axis:
    work's line lies above health's, and both start where the run's line starts."""
    results = per_request_results()
    page = render_html(results)
    assert _charts(page) == ["rate", "latency", "errors", "replicas", "requests"]
    section = page.split('<section id="requests">')[1].split("</section>")[0]
    assert 'data-chart="requests"' in section
    chart = _chart(page, "requests")
    assert "p95 latency per request (from the scheduled time, by completion second)" in chart
    lines = _paths(chart)
    work = _points(lines["work: p95 latency per second, from the scheduled time"])
    health = [
        (float(x), float(y))
        for x, y in re.findall(r'<circle class="alone" cx="([\d.]+)" cy="([\d.]+)"', chart)
    ]
    assert "health: p95 latency per second, from the scheduled time" in chart
    assert max(y for _, y in work) < min(y for _, y in health)  # SVG y grows downwards
    _p99, p95, _ = re.findall(r'<path class="series" d="([^"]+)"', _chart(page, "latency"))
    assert work[0][0] == _points(p95)[0][0]
    timeline = build_timeline(results)
    assert [r.name for r in timeline.requests] == ["work", "health"]
    # health answered in every other second: no line joins them, each is a dot
    assert chart.count('<circle class="alone"') == 5
    health_seconds = [s.second for s in timeline.requests[1].seconds]
    assert len(health_seconds) == 5  # one in four of warm's 20 requests; none in ramp
    assert max(health_seconds) < 10


def test_failures_by_status_and_error_kind_in_the_run_and_each_phase() -> None:
    """Columns are the failing statuses, then the error kinds; 200s are not failures."""
    results = per_request_results()
    work = results.totals.requests[0]
    section = per_request(results)
    assert section is not None
    assert section.total.columns == ("500", "timeout")
    row = section.total.rows[0]
    assert (row.name, row.failed, row.hot) == ("work", str(work.failed), True)
    assert row.cells == (str(work.status_counts[500]), str(work.errors_by_kind["timeout"]))
    health = section.total.rows[1]
    assert (health.failed, health.cells, health.hot) == ("0", ("\u2013", "\u2013"), False)
    warm, ramp = section.phases
    assert warm.quiet
    assert ramp.columns == ("500", "timeout")
    page = render_html(results)
    table = page.split('<table class="grid request-errors" data-scope="run">')[1]
    table = table.split("</table>")[0]
    assert '<th scope="col">500</th><th scope="col">timeout</th>' in table
    assert f'<td class="num hot">{work.failed}</td>' in table
    assert '<p class="empty" data-errors="warm">No request failed.</p>' in page
    assert 'class="grid request-errors" data-scope="ramp"' in page


def test_hover_data_has_each_templates_p95() -> None:
    """The hover read-out's data holds each template's p95 by second."""
    page = render_html(per_request_results())
    data = json.loads(page.split('id="nimbus-data">')[1].split("</script>")[0])
    names = [name for name, _ in data["requests"]]
    assert names == ["work", "health"]
    assert 390 < data["requests"][0][1]["15"] < 410


def test_hidden_for_one_template_that_never_failed() -> None:
    """One template, no failure: no section (it would repeat the phase table), no chart."""
    text = 'scenario "one" {\n request r = GET "/"\n phase "p" 5s {\n  rate 2/s\n  send r\n }\n}\n'
    results = make_results(text)
    assert per_request(results) is None
    page = render_html(results)
    assert 'id="requests"' not in page
    assert "requests" not in _charts(page)


def test_older_documents_show_the_tables_without_the_chart() -> None:
    """A document without per-template seconds still shows the failures, from its counts; a
    status the template's `ok` list does not hold (404 here) is a failure column."""
    results = full_results()
    assert results.stats.requests == ()
    page = render_html(results)
    assert 'id="requests"' in page
    assert "requests" not in _charts(page)
    section = per_request(results)
    assert section is not None
    assert "404" in section.total.columns
    older = per_request_results()
    older = dataclasses.replace(older, stats=dataclasses.replace(older.stats, requests=()))
    assert "requests" not in _charts(render_html(older))
