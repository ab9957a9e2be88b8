"""`run --local` end to end: a replica expectation the fleet cannot meet fails the run."""

from __future__ import annotations

from pathlib import Path

from tests.support.checks import read_results
from tests.support.cli import run_cli

SCENARIO = """\
# Written from the language page: two requests a second cannot bring three replicas.
scenario "unmet" {
  request health = GET "/health"

  phase "calm" 6s {
    rate 2/s
    send health
    expect ready replicas >= 3 within 5s
  }

  expect errors < 1%
}
"""


def test_unmet_replica_expectation_exits_1_and_names_it(tmp_path: Path) -> None:
    """Against the local fleet, `ready replicas >= 3 within 5s` at 2 req/s fails: exit 1, named."""
    scenario = tmp_path / "unmet.scn"
    scenario.write_text(SCENARIO)
    results = tmp_path / "results.json"
    done = run_cli("run", str(scenario), "--local", "--results", str(results))
    assert done.code == 1, done.stderr
    assert "FAIL  calm: expect ready replicas >= 3 within 5s" in done.stderr
    document = read_results(results)
    assert document["verdict"] == "failed"
    replica = next(e for e in document["expectations"] if e["kind"] == "replicas")
    assert replica["verdict"] == "failed"
    assert replica["observed"] == 1
    assert replica["met_at_s"] is None
    errors = next(e for e in document["expectations"] if e["kind"] == "errors")
    assert errors["verdict"] == "passed"
    assert document["replicas"][0][1:] == [1, 1]
    assert document["replica_source"]["description"].startswith("local fleet")
