"""`submit.logs`: what the console shows of a pod's log while it is followed (the runner's
status lines; its JSON events only with --verbose, or in short when they warn; one line for the
results document, never its 12 KB lines of base64), and the results read back from the whole
log, where a missing or corrupt chunk is exit 4 naming the shard and the chunk."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator

import pytest

from nimbus_scenarios.errors import ClusterError, ResultsError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.pods import PodPhase, PodStatus
from nimbus_scenarios.kube.runs import LogStream
from nimbus_scenarios.results.logwire import MAX_LINE_CHARS, encode_lines
from nimbus_scenarios.results.model import RunResults
from nimbus_scenarios.submit.collect import ShardLog, collect
from nimbus_scenarios.submit.logs import (
    LineKind,
    LogFollower,
    Printer,
    echo_line,
    last_words,
    line_kind,
    shard_results,
)
from tests.submit.conftest import Logs
from tests.support.logs import as_shard, forge, longest_results

STATUS = ["[00:00] phase steady: rate 10/s", "scenario demo  run abc  verdict PASSED (exit 0)"]
WARNING = json.dumps(
    {"reason": "stopped by SIGTERM", "at_s": 4.2, "event": "run_aborted", "level": "warning",
     "run_id": "abc", "scenario": "demo", "timestamp": "2026-01-01T00:00:00Z"}
)  # fmt: skip


@pytest.fixture(scope="module")
def shard_one() -> RunResults:
    """The longest built-in scenario's results as shard 1 of 2: a document of several lines."""
    return as_shard(longest_results(), 1, 2)


def events_of(log: str) -> list[str]:
    """The runner's JSON event lines in real `run --print-results` output."""
    return [line for line in log.splitlines() if line.startswith("{") and '"event"' in line]


class _Response:
    """What `LogStream` reads: a finished HTTP response, in small pieces."""

    def __init__(self, text: str) -> None:
        self._data = text.encode("utf-8")

    def stream(self, size: int, decode_content: bool) -> Iterator[bytes]:
        for start in range(0, len(self._data), size):
            yield self._data[start : start + size]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def echoed(log: list[str], *, verbose: bool = False) -> list[str]:
    """What a follower of a pod whose log is `log` prints."""
    out = io.StringIO()
    text = "".join(f"{line}\n" for line in log)
    follower = LogFollower(
        lambda: LogStream(_Response(text)), "[1] ", Printer(out), verbose=verbose
    )
    follower.start()
    follower.finish(10.0)
    return out.getvalue().splitlines()


def test_each_kind_of_line_is_told_apart(shard_logs: Logs, shard_one: RunResults) -> None:
    """Real results lines (also behind a collector's timestamp), real structlog events of a
    run, and the runner's human lines."""
    lines = encode_lines(shard_one)
    assert [line_kind(line) for line in lines] == [LineKind.RESULTS] * len(lines)
    stamped = f"2026-01-01T00:00:00.000000000Z {lines[0]}"
    assert line_kind(stamped) is LineKind.RESULTS
    events = events_of(shard_logs["passing"][0])
    assert len(events) >= 3
    assert {line_kind(line) for line in events} == {LineKind.EVENT}
    assert {line_kind(line) for line in [*STATUS, "{not json", "{}"]} == {LineKind.STATUS}


def test_the_echo_shows_status_lines_and_one_line_for_the_results(
    shard_logs: Logs, shard_one: RunResults
) -> None:
    """A real runner's output with a document of several lines: the status lines, a warning in
    short, one `results: N lines`; no base64 and no info events."""
    lines = encode_lines(shard_one)
    assert len(lines) > 2
    events = events_of(shard_logs["passing"][1])
    log = [*events[:2], STATUS[0], WARNING, *lines, *events[2:], STATUS[1]]
    shown = echoed(log)
    assert shown == [
        f"[1] {STATUS[0]}",
        '[1] warning: run_aborted reason="stopped by SIGTERM" at_s=4.2',
        f"[1] results: {len(lines)} lines",
        f"[1] {STATUS[1]}",
    ]


def test_verbose_echoes_the_events_as_they_are_but_never_the_results(
    shard_logs: Logs, shard_one: RunResults
) -> None:
    lines = encode_lines(shard_one)
    events = events_of(shard_logs["passing"][1])
    shown = echoed([*events, *lines, STATUS[1]], verbose=True)
    assert shown == [
        *(f"[1] {event}" for event in events),
        f"[1] results: {len(lines)} lines",
        f"[1] {STATUS[1]}",
    ]
    assert max(len(line) for line in shown) < MAX_LINE_CHARS // 4


def test_a_damaged_first_results_line_is_still_not_echoed(shard_one: RunResults) -> None:
    first = encode_lines(shard_one)[0]
    cut = first[: first.index(" chunk=") + 4]  # cut short in its fields
    assert echo_line(cut) is None
    shown = echoed([cut, STATUS[1]])
    assert len(shown) == 2
    assert shown[0].startswith("[1] results: (a line that cannot be read")
    assert len(shown[0]) < 200


def test_last_words_are_for_people(shard_logs: Logs) -> None:
    """What a runner said last: its status lines and warnings, not info events or results."""
    log = shard_logs["passing"][0].splitlines()
    text = "\n".join([STATUS[0], WARNING, *log])
    said = last_words(text)
    assert said == f'{STATUS[0]} | warning: run_aborted reason="stopped by SIGTERM" at_s=4.2'


def test_the_results_are_read_from_the_log_text(shard_one: RunResults) -> None:
    log = [STATUS[0], WARNING, *encode_lines(shard_one), STATUS[1]]
    assert shard_results("\n".join(log), "shard 1") == [shard_one]
    assert shard_results("\n".join(STATUS), "shard 1") == []


# ---------------------------------------------------------------- damaged in transit: exit 4


def ended(name: str, index: int) -> PodStatus:
    return PodStatus(name, index, PodPhase.SUCCEEDED, terminated="Completed", exit_code=0)


def collect_one(shard_one: RunResults, lines: list[str]) -> ClusterError:
    """Collect a 2-shard run whose shard 1 left `lines` (shard 0 is whole): the error."""
    zero = dataclasses.replace(shard_one, shard=dataclasses.replace(shard_one.shard, index=0))  # type: ignore[arg-type]
    logs = [
        ShardLog(0, ended("p-0", 0), "\n".join(encode_lines(zero))),
        ShardLog(1, ended("p-1", 1), "\n".join([STATUS[0], *lines, STATUS[1]])),
    ]
    with pytest.raises(ClusterError) as raised:
        collect(logs, 2)
    assert raised.value.exit_code == ExitCode.INFRASTRUCTURE
    return raised.value


def test_a_missing_chunk_is_exit_4_naming_the_shard_and_the_chunk(
    shard_one: RunResults,
) -> None:
    lines = list(encode_lines(shard_one))
    count = len(lines)
    del lines[1]
    message = str(collect_one(shard_one, lines))
    assert message.startswith("shard 1 (pod p-1): ")
    assert f"chunk 2 of {count} is missing" in message
    assert "damaged on its way here" in message
    assert "shard 0" not in message


def test_a_corrupt_chunk_is_exit_4_naming_the_shard_and_the_chunk(
    shard_one: RunResults,
) -> None:
    lines = list(encode_lines(shard_one))
    count = len(lines)
    last = lines[-1]
    lines[-1] = last[:-8] + ("A" if last[-8] != "A" else "B") + last[-7:]
    message = str(collect_one(shard_one, lines))
    assert message.startswith("shard 1 (pod p-1): ")
    assert f"chunk {count}/{count} is corrupt" in message


def test_chunks_that_do_not_add_up_are_exit_4(shard_one: RunResults) -> None:
    """Each line intact, the document not: a chunk of another document in its place."""
    lines = list(encode_lines(shard_one))
    other = encode_lines(dataclasses.replace(shard_one, run_id="other1"))
    lines[0] = forge(other[0], run=lines[0].split("run=")[1].split(" ")[0])
    lines[0] = forge(lines[0], sha256=lines[1].split("sha256=")[1].split(" ")[0])
    message = str(collect_one(shard_one, lines))
    assert message.startswith("shard 1 (pod p-1): ")
    assert "sha256" in message


def test_a_log_without_results_still_says_what_the_runner_said(shard_one: RunResults) -> None:
    message = str(collect_one(shard_one, [WARNING]))
    assert "shard 1 (pod p-1) ended Succeeded (exit 0) with no results in its log" in message
    assert "warning: run_aborted" in message


def test_shard_results_raises_results_error_beginning_with_the_name(
    shard_one: RunResults,
) -> None:
    lines = list(encode_lines(shard_one))[1:]
    with pytest.raises(ResultsError, match=r"^shard 1 \(pod p\): .*chunk 1 of \d+ is missing"):
        shard_results("\n".join(lines), "shard 1 (pod p)")
