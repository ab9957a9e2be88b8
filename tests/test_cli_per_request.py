"""Per-request judging end to end, through `cli.main` against the loopback server with real
time: a slow `work` hidden in a fast `health` blend fails `expect p95 of work` while the blended
`expect p95` passes, and a guard on `work` alone aborts the run (exit 3) while `health` is fine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.cli import main
from tests.support.checks import read_results
from tests.support.http import HttpServer

SLOW_WORK = """
scenario "per-request" {
  request work = GET "/delay/300"
  request health = GET "/health"
  phase "mixed" 3s {
    rate 40/s
    send 4% work, 96% health
    expect p95 < 250ms
    expect p95 of work < 250ms
    expect p95 of health < 250ms
    expect errors of health < 1%
    expect achieved of work >= 90%
  }
  expect p99 of health < 250ms
}
"""


def _run(tmp_path: Path, text: str, url: str) -> tuple[int, str, dict[str, Any]]:
    scenario = tmp_path / "case.scn"
    scenario.write_text(text, encoding="utf-8")
    results = tmp_path / "case.json"
    code = main(["run", str(scenario), "--url", url, "--results", str(results)])
    return code, str(results), read_results(results)


def test_slow_work_fails_its_own_p95_while_the_blend_passes(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The blend's p95 is health's few ms; work's is 300 ms: exit 1, the failed line names work,
    and the per-request table shows work's latency apart."""
    code, _, document = _run(tmp_path, SLOW_WORK, http_server.url)
    stderr = capsys.readouterr().err
    assert code == 1, stderr
    verdicts = {e["text"]: e["verdict"] for e in document["expectations"]}
    assert verdicts == {
        "expect p95 < 250ms": "passed",
        "expect p95 of work < 250ms": "failed",
        "expect p95 of health < 250ms": "passed",
        "expect errors of health < 1%": "passed",
        "expect achieved of work >= 90%": "passed",
        "expect p99 of health < 250ms": "passed",
    }
    failed = [line for line in stderr.splitlines() if line.strip().startswith("FAIL ")]
    assert len(failed) == 1
    assert "expect p95 of work < 250ms" in failed[0]
    table = stderr.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("request "))
    rows = {line.split()[0]: line for line in table[header + 1 : header + 3]}
    assert set(rows) == {"work", "health"}
    assert int(rows["work"].split()[-1].removesuffix("ms")) >= 300


GUARDED = """
scenario "guarded" {
  request work = GET "/status/500"
  request health = GET "/health"
  phase "mixed" 20s {
    rate 40/s
    send 10% work, 90% health
  }
  abort when errors > 50% over 2s
  abort when errors of work > 50% over 2s
}
"""


def test_a_guard_on_one_request_aborts_while_the_others_are_fine(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every work request fails (10% of the blend, so the blended guard holds): the guard on
    work fires within seconds, exit 3, and health never failed."""
    code, _, document = _run(tmp_path, GUARDED, http_server.url)
    stderr = capsys.readouterr().err
    assert code == 3, stderr
    abort = document["abort"]
    assert "abort when errors of work > 50% over 2s" in abort["reason"]
    assert "of work failed" in abort["reason"]
    assert abort["at_s"] < 10.0
    requests = {r["name"]: r for r in document["totals"]["requests"]}
    assert requests["health"]["failed"] == 0
    assert requests["health"]["succeeded"] > 0
    assert requests["work"]["failed"] == requests["work"]["sent"] > 0
