"""The HTML report in headless Chromium: charts render, no errors, no requests, screenshots kept.

Each test writes a report to a temp file, opens it over `file://` through the DevTools protocol
and checks what the browser saw: console errors, uncaught exceptions, error log entries (CSP
violations), dialogs, and every request the page made (only the file itself is allowed). The
full-page screenshots go to `tests/artifacts/` for people to look at.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.results.model import RunResults
from tests.report.cdp import Chromium, PageReport, open_page
from tests.support.results import (
    aborted_results,
    full_results,
    hostile_results,
    infra_results,
    make_results,
    per_request_results,
    scaling_results,
)

# What the page drew: charts by key with their series paths (that have a `d`), markers, dots.
_FACTS = """
(() => {
  const charts = Array.from(document.querySelectorAll("svg.chart"));
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height}; };
  return {
    charts: charts.map((svg) => ({
      key: svg.dataset.chart,
      series: Array.from(svg.querySelectorAll("path.series"))
        .filter((p) => (p.getAttribute("d") || "").length > 10).length,
      box: box(svg),
      plotted: Array.from(svg.querySelectorAll("path.series"))
        .some((p) => p.getBBox().width > 100),
    })),
    strips: document.querySelectorAll("svg.strip").length,
    kills: document.querySelectorAll("svg.chart line.marker.kill").length,
    aborts: document.querySelectorAll("svg.chart line.marker.abort").length,
    held: document.querySelectorAll("svg.chart circle.held").length,
    scripts: document.scripts.length,
    images: document.images.length,
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    title: document.title,
    heading: document.querySelector("h1").textContent,
  };
})()
"""

_TIP = """
(() => {
  const tip = document.getElementById("tip");
  const cursors = Array.from(document.querySelectorAll("svg.chart line.cursor"));
  return {
    visible: getComputedStyle(tip).visibility,
    text: tip.innerText,
    cursors: cursors.filter((c) => c.getAttribute("visibility") === "visible").length,
  };
})()
"""


async def _inspect(
    ws_url: str, path: Path, screenshot: Path | None, *, hover: bool
) -> tuple[PageReport, dict[str, Any]]:
    async with open_page(ws_url, path.as_uri()) as page:
        await page.fit()
        facts: dict[str, Any] = await page.evaluate(_FACTS)
        if hover and facts["charts"]:
            box = facts["charts"][-1]["box"]  # the replica chart, two thirds along
            await page.hover(box["x"] + box["width"] * 0.66, box["y"] + box["height"] * 0.5)
            await page.settle()
            facts["tip"] = await page.evaluate(_TIP)
        if screenshot is not None:
            await page.screenshot(screenshot)
    return page.report, facts


def _open(
    chromium: Chromium, tmp_path: Path, name: str, results: RunResults, shot: Path | None
) -> tuple[PageReport, dict[str, Any]]:
    path = tmp_path / f"{name}.html"
    path.write_text(render_html(results), encoding="utf-8")
    return asyncio.run(
        asyncio.wait_for(_inspect(chromium.ws_url, path, shot, hover=True), timeout=60)
    )


def _assert_clean(report: PageReport) -> None:
    assert report.errors == [], report.errors
    assert report.foreign_requests == [], report.foreign_requests
    assert report.url in report.requests  # the page itself was loaded and seen


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_full_report_in_chromium(chromium: Chromium, tmp_path: Path, artifacts: Path) -> None:
    """The full report draws four aligned charts with data, hovers cleanly and fetches nothing."""
    shot = artifacts / "report-full.png"
    report, facts = _open(chromium, tmp_path, "full", full_results(), shot)
    _assert_clean(report)
    charts = {c["key"]: c for c in facts["charts"]}
    assert list(charts) == ["rate", "latency", "errors", "replicas"]
    assert charts["rate"]["series"] == 3  # target, scheduled, sent
    assert charts["latency"]["series"] == 3  # p50, p95, p99
    assert charts["errors"]["series"] >= 1  # failed bars
    assert charts["replicas"]["series"] == 2  # ready, desired
    assert all(c["plotted"] for c in facts["charts"])
    # one time axis: the charts are laid out exactly above each other
    assert len({(round(c["box"]["x"]), round(c["box"]["width"])) for c in facts["charts"]}) == 1
    assert facts["strips"] == 1
    assert facts["kills"] == 4
    assert facts["held"] == 3
    assert facts["images"] == 0
    assert facts["tip"]["visible"] == "visible"
    tip = facts["tip"]["text"]
    # just after the kill at +38s, where the plan's target is back to 8/s after the spike
    assert tip.startswith("+38.8s \u00b7 hold\ntarget 8.0/s"), tip
    assert "replicas 2 ready / 3 desired" in tip
    assert facts["tip"]["cursors"] == 4
    width, height = _png_size(shot)
    assert width == 1280
    assert height > 1500


def test_hostile_report_runs_nothing_injected(
    chromium: Chromium, tmp_path: Path, artifacts: Path
) -> None:
    """Markup in every string shows as text: no injected script runs and no image is fetched."""
    results = hostile_results()
    report, facts = _open(chromium, tmp_path, "hostile", results, artifacts / "report-hostile.png")
    _assert_clean(report)
    assert facts["pwned"] is None
    assert facts["scripts"] == 2  # the JSON data block and the hover program
    assert facts["images"] == 0
    assert facts["heading"] == results.scenario
    assert len(facts["charts"]) == 7  # with the scaling section's: two metrics and the pods
    assert facts["aborts"] == 7


def test_aborted_and_failed_runs_in_chromium(
    chromium: Chromium, tmp_path: Path, artifacts: Path
) -> None:
    """An aborted run and a run stopped at pre-flight both render without an error."""
    report, facts = _open(
        chromium,
        tmp_path,
        "aborted",
        aborted_results(),
        artifacts / "report-aborted.png",
    )
    _assert_clean(report)
    assert [c["key"] for c in facts["charts"]] == ["rate", "latency", "errors", "replicas"]
    assert facts["aborts"] == 4
    assert facts["charts"][-1]["series"] == 0  # no replica data
    report, facts = _open(chromium, tmp_path, "infra", infra_results(), None)
    _assert_clean(report)
    assert facts["charts"] == []
    assert facts["scripts"] == 0


async def _hover_targets(ws_url: str, path: Path, shares: tuple[float, ...]) -> list[str]:
    """The tooltip's first two lines when hovering the rate chart at each share of its width."""
    async with open_page(ws_url, path.as_uri()) as page:
        await page.fit()
        facts: dict[str, Any] = await page.evaluate(_FACTS)
        box = facts["charts"][0]["box"]
        tips = []
        for share in shares:
            await page.hover(box["x"] + box["width"] * share, box["y"] + box["height"] * 0.5)
            await page.settle()
            tip: dict[str, Any] = await page.evaluate(_TIP)
            tips.append(tip["text"])
    _assert_clean(page.report)
    return tips


def test_hover_reads_the_planned_ramp(chromium: Chromium, tmp_path: Path) -> None:
    """Hovering along a ramp phase reads a rising target: the curve, not the phase's mean."""
    text = (
        'scenario "ramp" {\n target "http://h"\n request r = GET "/"\n'
        ' phase "up" 20s {\n  ramp 2/s -> 20/s\n  send r\n }\n}\n'
    )
    path = tmp_path / "ramp.html"
    path.write_text(render_html(make_results(text)), encoding="utf-8")
    # x = 62 + 924 * t / 20 in a 1000-wide viewBox: t = 5 s and t = 15 s
    shares = ((62 + 924 * 5 / 20) / 1000, (62 + 924 * 15 / 20) / 1000)
    early, late = asyncio.run(
        asyncio.wait_for(_hover_targets(chromium.ws_url, path, shares), timeout=60)
    )
    assert early.splitlines()[1].startswith("target 6.5/s"), early
    assert late.splitlines()[1].startswith("target 15.5/s"), late


def test_per_request_section_in_chromium(
    chromium: Chromium, tmp_path: Path, artifacts: Path
) -> None:
    """The per-request chart draws a line per template on the run's axis, and hovering it
    reads each template's p95 of that second."""
    report, facts = _open(
        chromium, tmp_path, "requests", per_request_results(), artifacts / "report-requests.png"
    )
    _assert_clean(report)
    charts = {c["key"]: c for c in facts["charts"]}
    assert list(charts) == ["rate", "latency", "errors", "replicas", "requests"]
    assert charts["requests"]["series"] == 2  # work, health
    assert charts["requests"]["plotted"]
    assert round(charts["requests"]["box"]["width"]) == round(charts["latency"]["box"]["width"])
    tip = facts["tip"]["text"]  # hovered on the last chart, two thirds along: ramp, work only
    assert "p95 by request: work 40" in tip, tip
    assert "health" not in tip


_PODS = """
(() => Array.from(document.querySelectorAll('svg.chart[data-chart="pods"] g.pod')).map((g) => {
  const r = g.getBoundingClientRect();
  return {width: r.width, height: r.height, title: g.querySelector("title").textContent};
}))()
"""
_END = "JSON.parse(document.getElementById('nimbus-data').textContent).end"


async def _scaling_facts(ws_url: str, path: Path, shot: Path) -> tuple[PageReport, dict[str, Any]]:
    """What the page drew, its pod rows, and the read-out hovering the first trigger's chart
    at +33 s (after the second rise: desired 3, the trigger at 7.8)."""
    async with open_page(ws_url, path.as_uri()) as page:
        await page.fit()
        facts: dict[str, Any] = await page.evaluate(_FACTS)
        facts["pods"] = await page.evaluate(_PODS)
        end: float = await page.evaluate(_END)
        box = next(c["box"] for c in facts["charts"] if c["key"] == "metric-0")
        x = box["x"] + box["width"] * (62 + 924 * 33 / end) / 1000
        await page.hover(x, box["y"] + box["height"] * 0.5)
        await page.settle()
        facts["tip"] = await page.evaluate(_TIP)
        await page.screenshot(shot)
    return page.report, facts


def test_scaling_charts_in_chromium(chromium: Chromium, tmp_path: Path, artifacts: Path) -> None:
    """The scaling charts line up under the replica chart, draw a bar per pod, and hovering
    reads the autoscaler's decision and each trigger against its target."""
    path = tmp_path / "scaling.html"
    path.write_text(render_html(scaling_results()), encoding="utf-8")
    shot = artifacts / "report-scaling.png"
    report, facts = asyncio.run(
        asyncio.wait_for(_scaling_facts(chromium.ws_url, path, shot), timeout=60)
    )
    _assert_clean(report)
    charts = {c["key"]: c for c in facts["charts"]}
    assert list(charts) == ["rate", "latency", "errors", "replicas", "metric-0", "metric-1", "pods"]
    assert len({(round(c["box"]["x"]), round(c["box"]["width"])) for c in facts["charts"]}) == 1
    assert charts["metric-0"]["series"] == 2  # value, target
    assert charts["replicas"]["series"] == 3  # ready, desired, the autoscaler's desired
    assert [p["width"] > 5 for p in facts["pods"]] == [True] * 4
    assert facts["pods"][1]["title"].startswith("pod consumer-7d9f8b6c5-d3e4f: created +14.4s")
    tip = facts["tip"]["text"]
    assert "autoscaler desired 3" in tip, tip
    assert "s0-prometheus 7.8 / target 5 (per replica)" in tip, tip
    assert "cpu 71 / target 80 (% of requests)" in tip, tip
    assert facts["tip"]["cursors"] == 7
