"""`nimbus-scenarios run` (`cli_run.py`) through `cli.main` in this process: the summary on
stderr naming a failed expectation, and a target that does not answer named in one error line,
each with its exit code and a results file. A run stopped by a signal or `--max-duration` is
run end to end in tests/faults/test_signals.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from tests.support.checks import read_results
from tests.support.http import HttpServer, free_port
from tests.support.otlp import OtlpSink


def test_failing_latency_expectation_is_named_in_the_summary(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`expect p95 < 50ms` against a 200 ms server: exit 1, FAIL and its text on stderr."""
    scenario = tmp_path / "latency.scn"
    scenario.write_text(
        """
scenario "latency" {
  request slow = GET "/delay/200"
  phase "p" 1s {
    rate 20/s
    send slow
  }
  expect p95 < 50ms
}
""",
        encoding="utf-8",
    )
    results = tmp_path / "latency.json"
    code = main(["run", str(scenario), "--url", http_server.url, "--results", str(results)])
    stderr = capsys.readouterr().err
    assert code == 1
    assert "verdict FAILED (exit 1)" in stderr
    assert any("FAIL" in line and "expect p95 < 50ms" in line for line in stderr.splitlines())
    assert f"results: {results}" in stderr
    document = read_results(results)
    entry = next(e for e in document["expectations"] if e["text"] == "expect p95 < 50ms")
    assert entry["verdict"] == "failed"
    assert entry["observed"] >= 0.2


def test_target_down_exits_4_naming_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening at --url: exit 4, the URL and the error on stderr and in the results."""
    url = f"http://127.0.0.1:{free_port()}"
    scenario = tmp_path / "down.scn"
    scenario.write_text(
        'scenario "down" {\n  request h = GET "/h"\n  phase "p" 2s {\n    rate 10/s\n'
        "    send h\n  }\n}\n",
        encoding="utf-8",
    )
    results = tmp_path / "down.json"
    code = main(["run", str(scenario), "--url", url, "--results", str(results)])
    stderr = capsys.readouterr().err
    assert code == 4
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert url in error_lines[0]
    assert "connect" in error_lines[0]
    document = read_results(results)
    assert document["error"] is not None
    assert url in document["error"]
    assert document["totals"]["sent"] == 0


def test_explore_link_takes_its_datasource_and_org_from_flags(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--grafana-tempo-uid and --grafana-org shape the printed link; a bad org is exit 2 before
    any request is sent."""
    from nimbus_scenarios.report.html import render_html
    from nimbus_scenarios.results.io import load_results
    from nimbus_scenarios.telemetry.links import ExploreTarget, explore_link

    scenario = tmp_path / "linked.scn"
    scenario.write_text(
        'scenario "linked" {\n  request h = GET "/h"\n  phase "p" 1s {\n    rate 5/s\n'
        "    send h\n  }\n}\n",
        encoding="utf-8",
    )
    results = tmp_path / "linked.json"
    bad = ["run", str(scenario), "--url", http_server.url, "--grafana-org", "zero"]
    assert main([*bad, "--results", str(results)]) == 2
    assert "--grafana-org" in capsys.readouterr().err
    assert not results.exists()
    assert http_server.hits == []

    sink = OtlpSink().start()
    try:
        args = ["run", str(scenario), "--url", http_server.url, "--results", str(results)]
        args += ["--otlp-endpoint", sink.url, "--grafana-url", "http://grafana:3000"]
        code = main([*args, "--grafana-tempo-uid", "traces-eu", "--grafana-org", "4"])
    finally:
        sink.stop()
    stderr = capsys.readouterr().err
    assert code == 0
    trace_id = read_results(results)["trace_id"]
    expected = explore_link("http://grafana:3000", trace_id, ExploreTarget("traces-eu", 4))
    assert f"trace: {expected}" in stderr.splitlines()
    document = read_results(results)
    assert (document["grafana_tempo_uid"], document["grafana_org"]) == ("traces-eu", 4)
    html = render_html(load_results(results))
    assert expected.replace("&", "&amp;") in html


ONE_SECOND = """
scenario "loop" {
  request h = GET "/h"
  phase "p" 1s {
    rate 20/s
    send h
  }
}
"""


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_run_says_which_event_loop_it_ran_on(
    loop: str,
    http_server: HttpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`NIMBUS_EVENT_LOOP` picks the loop; the summary and the results document name it."""
    pytest.importorskip("uvloop")
    monkeypatch.setenv("NIMBUS_EVENT_LOOP", loop)
    scenario = tmp_path / "loop.scn"
    scenario.write_text(ONE_SECOND, encoding="utf-8")
    results = tmp_path / "loop.json"
    code = main(["run", str(scenario), "--url", http_server.url, "--results", str(results)])
    assert code == 0
    assert f"event loop: {loop}" in capsys.readouterr().err.splitlines()
    assert read_results(results)["event_loop"] == loop


def test_an_unknown_event_loop_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `NIMBUS_EVENT_LOOP` naming no loop exits 2 before anything is sent, naming the choices."""
    monkeypatch.setenv("NIMBUS_EVENT_LOOP", "tokio")
    scenario = tmp_path / "loop.scn"
    scenario.write_text(ONE_SECOND, encoding="utf-8")
    code = main(["run", str(scenario), "--url", f"http://127.0.0.1:{free_port()}"])
    assert code == 2
    assert "NIMBUS_EVENT_LOOP='tokio': expected one of auto, asyncio, uvloop" in (
        capsys.readouterr().err
    )


def test_run_prints_the_warnings_validate_prints_before_it_sends(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario that validates with a warning runs, and `run` shows the warning as `validate`
    does (file:line:col), before the run's own output."""
    scenario = tmp_path / "warns.scn"
    scenario.write_text(
        'scenario "warns" {\n  request h = GET "/h"\n  phase "quiet" 1s {\n    idle\n'
        '    send h\n  }\n  phase "p" 1s {\n    rate 5/s\n    send h\n  }\n}\n',
        encoding="utf-8",
    )
    assert main(["validate", str(scenario)]) == 0
    validated = capsys.readouterr().err
    assert f"{scenario}:5:5: warning:" in validated
    results = tmp_path / "warns.json"
    code = main(["run", str(scenario), "--url", http_server.url, "--results", str(results)])
    stderr = capsys.readouterr().err
    assert code == 0
    idle_warning = validated.split("\n\n")[0]
    assert "no `target`" in validated  # `validate` cannot know the run's --url
    assert stderr.startswith(idle_warning)
    assert "no `target`" not in stderr  # `run --url` gives it
    assert read_results(results)["phases"][1]["sent"] == 5
