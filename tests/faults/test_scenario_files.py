"""Scenario files from elsewhere, through the command line: a device or a pipe that never ends
(`/dev/zero`, a FIFO fed without end), a scenario name that would put its results file outside
`results/`, and a password written in the `target` URL or in a request path, which must show as
`***` in every output while the target still receives it."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli import REPO, assert_no_traceback, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer

SIMPLE = """\
scenario "simple" {
  request h = GET "/h"
  phase "load" 1s {
    rate 10/s
    send h
  }
}
"""


@contextmanager
def fed_fifo(path: Path, data: bytes, *, repeat: int = 1) -> Iterator[Path]:
    """A FIFO at `path` that a thread feeds `data` `repeat` times (bounded), once a reader
    opens it; the thread ends when the reader goes (a broken pipe) or the data is written."""
    os.mkfifo(path)
    done = threading.Event()

    def feed() -> None:
        try:
            with path.open("wb") as pipe:  # blocks until the reader opens its end
                for _ in range(repeat):
                    pipe.write(data)
        except BrokenPipeError:
            pass  # the reader stopped reading: what the test wants
        finally:
            done.set()

    writer = threading.Thread(target=feed, name="fifo-writer", daemon=True)
    writer.start()
    try:
        yield path
    finally:
        if not done.is_set():  # no reader came: open and close one so that the writer ends
            reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.close(reader)
        writer.join(10)
        assert not writer.is_alive()


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_device_without_end_is_read_only_to_the_limit(command: str) -> None:
    """`/dev/zero` (size 0 to `stat`, endless to `read`): exit 2 at the 128 KB limit, at once,
    where it used to read until MemoryError."""
    finished = run_cli(command, "/dev/zero", timeout_s=30)
    assert finished.code == 2, finished.stderr
    assert (
        "/dev/zero: error: the file is larger than 128 KB; scenario files are limited to 128 KB"
        in finished.stderr
    )
    assert finished.elapsed_s < 10
    assert_no_traceback(finished.stderr)


def test_a_fifo_fed_without_end_is_read_only_to_the_limit(tmp_path: Path) -> None:
    """A FIFO fed 64 MB of comments: exit 2 once 128 KB and a byte have been read; a FIFO holding
    a valid scenario (`validate <(...)`) still validates."""
    with fed_fifo(tmp_path / "endless.scn", b"#" * (1 << 20), repeat=64) as fifo:
        finished = run_cli("validate", str(fifo), timeout_s=30)
    assert finished.code == 2, finished.stderr
    assert "the file is larger than 128 KB; scenario files are limited to 128 KB" in (
        finished.stderr
    )
    assert_no_traceback(finished.stderr)
    with fed_fifo(tmp_path / "valid.scn", SIMPLE.encode()) as fifo:
        valid = run_cli("validate", str(fifo), timeout_s=30)
    assert valid.code == 0, valid.stderr


@pytest.mark.parametrize("name", ["/tmp/nimbus-escape", "../../../nimbus-escape"])
def test_a_scenario_name_cannot_put_results_outside_results(
    server: HttpServer, tmp_path: Path, name: str
) -> None:
    """A name that is a path is refused by `validate`, `plan` and `run` (exit 2, nothing sent),
    so a run without `--results` writes nothing and creates no directory outside `results/`."""
    scenario = write_scenario(tmp_path, SIMPLE.replace('"simple"', f'"{name}"'))
    outside = (REPO / "results" / name).parent.resolve()
    before = set(outside.glob("nimbus-escape*"))
    for args in (["validate"], ["plan"], ["run", "--url", server.url]):
        finished = run_cli(args[0], str(scenario), *args[1:])
        assert finished.code == 2, finished.stderr
        assert f"the scenario name `{name}` may hold only ASCII letters" in finished.stderr
        assert_no_traceback(finished.stderr)
    assert set(outside.glob("nimbus-escape*")) == before
    assert server.hits == []


def test_a_password_in_a_url_is_masked_everywhere(server: HttpServer, tmp_path: Path) -> None:
    """`user:pass@` in the `target` literal: the run uses it (10 requests, exit 0) and `***`
    stands for it in `validate`, `plan`, `plan --json`, the run's output, its results (source,
    target, plan), HTML and JUnit reports and the stdout fallback; a request path holding a
    credential URL is refused with the password masked in the message and the line shown."""
    password = f"pw-{uuid.uuid4().hex}"
    target = server.url.replace("http://", f"http://admin:{password}@")
    text = SIMPLE.replace("{\n", f'{{\n  target "{target}"\n', 1)
    scenario = write_scenario(tmp_path, text)
    outputs: dict[str, str] = {}
    for label, args in {
        "validate": ["validate", str(scenario)],
        "plan": ["plan", str(scenario)],
        "plan --json": ["plan", str(scenario), "--json"],
    }.items():
        finished = run_cli(*args)
        assert finished.code == 0, finished.stderr
        outputs[label] = finished.stdout + finished.stderr
    assert json.loads(outputs["plan --json"])["target"] == target.replace(password, "***")

    results, html, junit = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.xml"
    ran = run_cli(
        "run", str(scenario), "--results", str(results), "--html", str(html), "--junit", str(junit)
    )
    document = assert_outcome(ran, results, code=0, verdict="passed")
    assert (document["totals"]["sent"], document["totals"]["succeeded"]) == (10, 10)
    assert len(server.paths("/h")) == 10
    assert document["target"] == target.replace(password, "***")
    assert f'target "{target.replace(password, "***")}"' in document["scenario_source"]
    outputs["run"] = ran.stdout + ran.stderr
    for path in (results, html, junit):
        outputs[path.name] = path.read_text(encoding="utf-8")
    fallback = run_cli("run", str(scenario), "--results", "/dev/full")
    assert fallback.code == 0, fallback.stderr
    assert '"schema_version"' in fallback.stdout
    outputs["stdout fallback"] = fallback.stdout + fallback.stderr

    in_path = write_scenario(
        tmp_path,
        SIMPLE.replace('GET "/h"', f'GET "http://bob:{password}@other.example/h"'),
        "p.scn",
    )
    for command in ("validate", "plan", "run"):
        refused = run_cli(command, str(in_path))
        assert refused.code == 2, refused.stderr
        assert "a request path must start with `/`; found `http://bob:***@other.example/h`" in (
            refused.stderr
        )
        assert 'GET "http://bob:***@other.example/h"' in refused.stderr
        assert_no_traceback(refused.stderr)
        outputs[f"{command}: credential path"] = refused.stdout + refused.stderr

    for label, output in outputs.items():
        assert password not in output, f"the password leaked into {label}"
