"""`merge.py` over real shards: three `run --shard i/3` processes of one scenario, started
together, send exactly the plan between them (open and closed models); `merge` adds their counts,
judges the whole once on merged histograms, refuses documents that do not belong together or
leave shards out (unless `--allow-partial`, which is never passed), and finds the documents in
pod logs (printed by `--print-results` as chunked lines) with the same result as in files."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.merge import merge_results
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.arrivals import mix_counts
from nimbus_scenarios.results.io import from_json, from_json_data, load_results, to_json
from nimbus_scenarios.results.logwire import MAX_LINE_CHARS, PREFIX, load_documents
from nimbus_scenarios.results.model import RunVerdict, ShardInfo, Verdict
from tests.support.cli import Child, write_scenario
from tests.support.http import HttpServer
from tests.support.results import blind_scaling, full_results, full_scaling
from tests.support.wait import wait_until

SCENARIO = """\
scenario "sharded" {
  request hit = GET "/hit"
  request other = GET "/other"
  phase "steady" 2s {
    rate 61/s
    send 70% hit, 30% other
  }
  phase "ramp" 2s {
    ramp 10/s -> 40/s
    send hit
  }
  phase "bursts" 2s {
    burst 7 every 1s
    send hit
  }
  phase "users" 1s {
    users 5 think 100ms
    send other
  }
  expect achieved >= 99%
  expect errors < 1%
}
"""
SHARDS = 3


Sharded = tuple[HttpServer, list[Path]]


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sharded]:
    """Three shard processes of one scenario against one recording server, from one start."""
    folder = tmp_path_factory.mktemp("shards")
    scenario = write_scenario(folder, SCENARIO, "sharded.scn")
    results = [folder / f"shard-{i}.json" for i in range(SHARDS)]
    server = HttpServer().start()
    try:
        # The common start is written once every shard has passed its pre-flight (its `GET /`)
        # and waits for it, as `submit` does: a shard that started after it would drop what it
        # missed (late start), however slow the machine is to start the processes.
        start_file = folder / "start-at"
        args = ["run", str(scenario), "--url", server.url, "--start-at-from", f"file/{start_file}"]
        with contextlib.ExitStack() as running:
            children = [
                running.enter_context(
                    Child(
                        *args,
                        *("--shard", f"{i}/{SHARDS}", "--results", str(results[i])),
                        "--print-results",
                    )
                )
                for i in range(SHARDS)
            ]
            ready = wait_until(lambda: len(server.paths_exactly("/")) == SHARDS, timeout_s=60)
            assert ready, [child.stderr for child in children]
            # 3 s ahead: more than a shard's 1 s poll of the file, on a loaded machine too.
            start_file.write_text(f"{time.time() + 3.0:.3f}", encoding="utf-8")
            finished = [child.finish(timeout_s=60) for child in children]
        for done in finished:
            assert done.code == 0, done.stderr
        logs = folder / "kubectl-logs.txt"
        logs.write_text("".join(done.stdout for done in finished), encoding="utf-8")
        for i, done in enumerate(finished):
            (folder / f"pod-{i}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        yield server, results
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shard_logs(sharded_run: Sharded) -> Path:
    """Every shard's stdout, concatenated as `kubectl logs` of the pods would show it."""
    return sharded_run[1][0].parent / "kubectl-logs.txt"


def _plan_totals() -> dict[str, int | None]:
    plan = compile_source(Source("sharded.scn", SCENARIO))
    return {p.name: p.scheduled_total for p in plan.phases}


def test_shards_together_send_the_plan(sharded_run: Sharded) -> None:
    """Open-model phases: the shards' sent counts add up exactly to the plan's, per phase."""
    _, results = sharded_run
    documents = [json.loads(path.read_text()) for path in results]
    for name, planned in _plan_totals().items():
        if planned is None:
            continue
        sent = sum(p["sent"] for d in documents for p in d["phases"] if p["name"] == name)
        assert sent == planned, name


def test_server_saw_the_plan_and_the_mix(sharded_run: Sharded) -> None:
    """The server received the plan's requests within 1%, with the 70/30 mix of the whole run."""
    server, results = sharded_run
    documents = [json.loads(path.read_text()) for path in results]
    totals = _plan_totals()
    users_sent = sum(p["sent"] for d in documents for p in d["phases"] if p["name"] == "users")
    steady, ramp, bursts = totals["steady"], totals["ramp"], totals["bursts"]
    assert steady is not None
    assert ramp is not None
    assert bursts is not None
    hit_share, other_share = mix_counts([7, 3], steady)
    hits, others = len(server.paths("/hit")), len(server.paths("/other"))
    assert abs(hits - (hit_share + ramp + bursts)) <= 0.01 * hits
    assert abs(others - (other_share + users_sent)) <= 0.01 * others
    assert hits == hit_share + ramp + bursts  # nothing failed, so exactly


def test_users_are_split_between_shards(sharded_run: Sharded) -> None:
    """Closed-model users: 5 users over 3 shards run as 2, 2 and 1."""
    _, results = sharded_run
    documents = sorted(
        (json.loads(path.read_text()) for path in results), key=lambda d: d["shard"]["index"]
    )
    sent = [next(p["sent"] for p in d["phases"] if p["name"] == "users") for d in documents]
    # Each user sends about 1s / (think 0.1s + a fast answer) requests.
    per_user = [s / n for s, n in zip(sent, (2, 2, 1), strict=True)]
    assert max(per_user) <= 2 * min(per_user)


def test_merge_adds_counts_and_judges_the_whole(sharded_run: Sharded, tmp_path: Path) -> None:
    """`merge` writes one document whose counts are the plan's and whose verdict is judged anew."""
    _, results = sharded_run
    merged_path = tmp_path / "merged.json"
    code = main(["merge", *map(str, results), "-o", str(merged_path)])
    merged = json.loads(merged_path.read_text())
    assert code == 0
    assert merged["verdict"] == "passed"
    for name, planned in _plan_totals().items():
        phase = next(p for p in merged["phases"] if p["name"] == name)
        assert phase["sent"] == phase["succeeded"] + phase["failed"]
        if planned is not None:
            assert phase["scheduled"] == planned
            assert phase["sent"] + phase["dropped"] == planned
    achieved = next(e for e in merged["expectations"] if e["text"] == "expect achieved >= 99%")
    assert achieved["verdict"] == "passed"
    assert achieved["observed"] == pytest.approx(100.0)
    assert len(merged["merged_from"]) == SHARDS


def test_merged_percentiles_equal_one_histogram_of_all_data(
    sharded_run: Sharded,
) -> None:
    """Merged latency percentiles are those of one histogram holding every shard's requests."""
    _, results = sharded_run
    shards = [load_results(path) for path in results]
    merged = merge_results(shards)
    for name in ("steady", "ramp"):
        union = LatencyHistogram(3)
        for shard in shards:
            shard_phase = next(p for p in shard.stats.phases if p.name == name)
            union.add(LatencyHistogram.decode(shard_phase.histograms.latency_us))
        expected = union.summary()
        got = next(p for p in merged.phases if p.name == name).load.latency_ms
        assert got is not None
        for key in ("p50", "p90", "p95", "p99", "max"):
            assert getattr(got, key) == getattr(expected, key), (name, key)


def test_merge_refuses_different_scenarios(
    sharded_run: Sharded,
) -> None:
    """Results of another scenario, or the same shard twice, are refused with a clear error."""
    _, results = sharded_run
    first = load_results(results[0])
    other = json.loads(results[1].read_text())
    other["scenario"] = "another"
    with pytest.raises(ResultsError, match="different scenarios"):
        merge_results([first, from_json_data(other)])
    changed = json.loads(results[1].read_text())
    changed["scenario_hash"] = "0" * 64
    with pytest.raises(ResultsError, match="different scenario sources"):
        merge_results([first, from_json_data(changed)])
    with pytest.raises(ResultsError, match="same shard"):
        merge_results([first, first])


def test_merge_command_exit_code_on_mismatch(
    sharded_run: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI exits 2 and names the problem when the inputs do not belong together."""
    _, results = sharded_run
    other = json.loads(results[1].read_text())
    other["scenario"] = "another"
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps(other))
    code = main(["merge", str(results[0]), str(bad), "-o", str(tmp_path / "m.json")])
    assert code == 2
    assert "different scenarios" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_merge_reads_results_printed_in_pod_logs(
    sharded_run: Sharded, shard_logs: Path, tmp_path: Path
) -> None:
    """`--print-results` prints each document as `nimbus-results` lines (results.logwire), none
    over `MAX_LINE_CHARS` and no one-line JSON; read back from the pods' concatenated stdout,
    they are the documents each shard wrote to its file; merge finds them in the logs."""
    lines = shard_logs.read_text().splitlines()
    printed = [line for line in lines if line.startswith(f"{PREFIX} v1 ")]
    assert len(printed) >= SHARDS
    assert max(map(len, printed)) <= MAX_LINE_CHARS
    assert not any('"schema_version"' in line for line in lines)
    written = {load_results(path).run_id: load_results(path) for path in sharded_run[1]}
    assert {r.run_id: r for r in load_documents(shard_logs)} == written
    merged_path = tmp_path / "from-logs.json"
    assert main(["merge", str(shard_logs), "-o", str(merged_path)]) == 0
    merged = json.loads(merged_path.read_text())
    assert len(merged["merged_from"]) == SHARDS
    steady = next(p for p in merged["phases"] if p["name"] == "steady")
    assert steady["sent"] == _plan_totals()["steady"]


def test_merging_pod_logs_gives_what_merging_files_gives(
    sharded_run: Sharded, tmp_path: Path
) -> None:
    """`merge pod-0.log pod-1.log pod-2.log` (each pod's stdout and stderr, as `kubectl logs`
    shows them) writes the same merged document, verdict and exit code as `merge` of the
    shards' results files."""
    _, results = sharded_run
    pods = [results[0].parent / f"pod-{i}.log" for i in range(SHARDS)]
    from_logs, from_files = tmp_path / "logs.json", tmp_path / "files.json"
    assert main(["merge", *map(str, pods), "-o", str(from_logs)]) == 0
    assert main(["merge", *map(str, results), "-o", str(from_files)]) == 0
    assert load_results(from_logs) == load_results(from_files)
    assert load_results(from_logs).verdict is RunVerdict.PASSED


def test_merge_refuses_missing_shards_and_names_them(
    sharded_run: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two of three shards, or shard 2 alone: exit 2 naming the missing indexes, nothing
    written; every index once is what a merge needs."""
    _, results = sharded_run
    output = tmp_path / "m.json"
    assert main(["merge", str(results[0]), str(results[2]), "-o", str(output)]) == 2
    assert "shard 1 of 3 is missing" in capsys.readouterr().err
    assert main(["merge", str(results[2]), "-o", str(output)]) == 2
    assert "shards 0, 1 of 3 are missing" in capsys.readouterr().err
    assert not output.exists()


def test_a_partial_merge_is_judged_on_its_share_and_never_passes(
    sharded_run: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--allow-partial` with shards 0 and 2: `achieved` against their planned share, verdict
    `partial` and exit 4 although nothing failed; the notes and the summary say so."""
    _, results = sharded_run
    output = tmp_path / "partial.json"
    argv = ["merge", str(results[0]), str(results[2]), "-o", str(output), "--allow-partial"]
    assert main(argv) == 4
    merged = json.loads(output.read_text())
    assert (merged["verdict"], merged["exit_code"]) == ("partial", 4)
    shards = [json.loads(results[i].read_text()) for i in (0, 2)]
    share = sum(p["planned"] for d in shards for p in d["phases"] if p["planned"] is not None)
    whole = sum(total for total in _plan_totals().values() if total is not None)
    assert share < whole
    steady = next(p for p in merged["phases"] if p["name"] == "steady")
    assert steady["planned"] == sum(
        p["planned"] for d in shards for p in d["phases"] if p["name"] == "steady"
    )
    achieved = next(e for e in merged["expectations"] if e["text"] == "expect achieved >= 99%")
    assert (achieved["verdict"], achieved["observed"]) == ("passed", pytest.approx(100.0))
    (note,) = [n for n in merged["notes"] if n.startswith("partial merge")]
    assert "2 of 3 shards (missing: 1)" in note
    assert f"{share:,} of the plan's {whole:,} requests in open-model phases" in note
    summary = capsys.readouterr().err
    assert "verdict PARTIAL (exit 4)" in summary
    assert "note: partial merge: 2 of 3 shards" in summary


def test_a_partial_merge_without_shard_0_leaves_replicas_unjudged(sharded_run: Sharded) -> None:
    """Without shard 0, which alone judges replicas and hypotheses, those are `not_judged`;
    the load expectations are judged; the verdict is still `partial`."""
    _, results = sharded_run
    shards = [load_results(results[i]) for i in (1, 2)]
    replicas = dataclasses.replace(
        shards[0].plan.expectations[0], kind=ExpectationKind.REPLICAS, text="expect replicas"
    )
    plan = dataclasses.replace(
        shards[0].plan, expectations=(*shards[0].plan.expectations, replicas)
    )
    shards = [dataclasses.replace(s, plan=plan) for s in shards]
    merged = merge_results(shards, allow_partial=True)
    assert (merged.verdict, merged.exit_code) == (RunVerdict.PARTIAL, ExitCode.INFRASTRUCTURE)
    verdicts = {j.expectation.text: j for j in merged.expectations}
    assert verdicts["expect replicas"].verdict is Verdict.NOT_JUDGED
    assert "shard 0 is missing" in verdicts["expect replicas"].detail
    assert verdicts["expect errors < 1%"].verdict is Verdict.PASSED
    assert (
        "replica expectations and the before/after hypotheses are not judged" in (merged.notes[0])
    )


def test_a_partial_merge_that_fails_exits_1(sharded_run: Sharded) -> None:
    """A failed expectation over the shards present is a failure (exit 1), partial or not."""
    _, results = sharded_run
    shards = [load_results(results[i]) for i in (0, 1)]
    strict = dataclasses.replace(
        shards[0].plan.expectations[1], comparator=Comparator.LT, value=0.0
    )  # `errors < 0%` cannot hold
    plan = dataclasses.replace(
        shards[0].plan, expectations=(shards[0].plan.expectations[0], strict)
    )
    judged = [
        dataclasses.replace(
            s,
            plan=plan,
            expectations=tuple(
                dataclasses.replace(j, expectation=strict)
                if j.expectation.text.startswith("expect errors")
                else j
                for j in s.expectations
            ),
        )
        for s in shards
    ]
    merged = merge_results(judged, allow_partial=True)
    assert (merged.verdict, merged.exit_code) == (RunVerdict.FAILED, ExitCode.FAILED)


def test_a_merged_document_cannot_be_merged_again(sharded_run: Sharded, tmp_path: Path) -> None:
    """A merge's output is refused as an input: merged again with the shards it lacked, a
    partial merge would pass as a whole one."""
    _, results = sharded_run
    partial = tmp_path / "p.json"
    argv = ["merge", str(results[0]), str(results[2]), "-o", str(partial), "--allow-partial"]
    assert main(argv) == 4
    with pytest.raises(ResultsError, match="already a merged document"):
        merge_results([load_results(partial), load_results(results[1])])
    with pytest.raises(ResultsError, match="already a merged document"):
        merge_results([load_results(partial)])


def test_a_bad_histogram_is_refused_with_its_file_and_path(
    sharded_run: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad base64 in a phase histogram: exit 2 naming the file and the JSON path."""
    _, results = sharded_run
    data = json.loads(results[1].read_text())
    data["stats"]["phases"][0]["histograms"]["latency_us"] = "!!!not base64"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code = main(["merge", str(results[0]), str(bad), str(results[2]), "-o", str(tmp_path / "m")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}: not a valid results document: $.stats.phases[0].histograms.latency_us" in err
    assert "bad base64" in err


def test_merge_keeps_shard_0s_scaling_section() -> None:
    """Every shard watches the same Deployment; the merged document keeps shard 0's `scaling`
    (as its replica data), whatever order the shards come in, and writes it back equal."""
    first = full_results(shard=ShardInfo(0, 2), run_id="s0", scaling=full_scaling())
    second = full_results(shard=ShardInfo(1, 2), run_id="s1", scaling=blind_scaling())
    merged = merge_results([second, first])
    assert merged.scaling == first.scaling
    assert from_json(to_json(merged)) == merged
    partial = merge_results([second], allow_partial=True)
    assert partial.scaling == second.scaling  # without shard 0, the lowest shard present
