"""The command line (`cli.py`): validate, plan and list over the built-in scenarios, the seed
generator's `--test` form, and a cold start that imports none of the runner's dependencies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nimbus_scenarios.catalog import builtin_names
from nimbus_scenarios.cli import build_parser, main, seed_form
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = sorted((ROOT / "scenarios").glob("*.scn"))
HEAVY_MODULES = ("kubernetes", "opentelemetry", "httpx", "aiohttp", "httptools")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_there_are_eight_builtins() -> None:
    """The repository ships the eight built-in scenarios the issue names."""
    assert [p.stem for p in BUILTIN] == [
        "burst",
        "cpu_stress",
        "heavy",
        "light",
        "medium",
        "memory_stress",
        "quickstart",
        "sustained",
    ]


def test_validate_all_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    """`validate scenarios/*.scn` exits 0, says ok for each file and warns about none."""
    paths = [p.relative_to(ROOT).as_posix() for p in BUILTIN]
    code, out, err = run(capsys, "validate", *[str(ROOT / p) for p in paths])
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"{ROOT / p}: ok" for p in paths]


def test_validate_builtins_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    """Built-ins can be named without a path; an unknown name suggests the nearest."""
    code, out, _ = run(capsys, "validate", "heavy", "light")
    assert code == 0
    assert out.count(": ok\n") == 2
    code, _, err = run(capsys, "plan", "hevy")
    assert code == 2
    assert "no scenario file or built-in scenario named `hevy`" in err
    assert "did you mean `heavy`?" in err


def test_plan_heavy_lasts_about_ten_minutes(capsys: pytest.CaptureFixture[str]) -> None:
    """`plan heavy --json` gives a run within 20% of 10 minutes, and the table agrees."""
    code, out, _ = run(capsys, "plan", "heavy", "--json")
    assert code == 0
    plan = json.loads(out)
    assert 480 <= plan["duration_s"] <= 720
    assert plan["phases_end_s"] == 600  # 1m + 2m + 2m + 5m
    code, table, _ = run(capsys, "plan", "heavy")
    assert code == 0
    assert "total: 10:00 of phases" in table


WARNED = sorted((ROOT / "tests" / "data" / "valid").glob("*.warn"))


@pytest.mark.parametrize("warn", WARNED, ids=lambda p: p.stem)
def test_plan_prints_every_warning_validate_prints(
    warn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate`, `plan` and `plan --json` give the same warnings in the same order: one line
    each in the plan (`line N: ...` for those with a place), the message in `validate`'s."""
    scn = str(warn.with_suffix(".scn"))
    code, _, err = run(capsys, "validate", scn)
    assert code == 0
    heads = [line for line in err.splitlines() if ": warning: " in line]
    assert heads
    code, table, err = run(capsys, "plan", scn)
    assert (code, err) == (0, "")
    prefix = "warning: "
    in_table = [line.removeprefix(prefix) for line in table.splitlines() if line.startswith(prefix)]
    code, out, _ = run(capsys, "plan", "--json", scn)
    assert code == 0
    assert json.loads(out)["warnings"] == in_table
    assert len(in_table) == len(heads)
    for head, line in zip(heads, in_table, strict=True):
        place = re.match(r".*\.scn:(\d+):\d+: warning: ", head)
        message = head.split(": warning: ", 1)[1]
        assert line == (f"line {place.group(1)}: {message}" if place else message)


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_plan_json_shape(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --json` has scenario, duration_s and phases with their offsets, shape and counts."""
    code, out, err = run(capsys, "plan", "--json", str(path))
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["scenario"] == path.stem
    assert isinstance(plan["duration_s"], float)
    assert plan["phases"]
    end = 0.0
    for phase in plan["phases"]:
        assert {"name", "start_s", "end_s", "shape", "scheduled", "scheduled_total"} <= set(phase)
        assert phase["start_s"] == end
        end = phase["end_s"]
        if phase["shape"] == "users":
            assert phase["scheduled"] is None
            assert phase["scheduled_total"] is None
        else:
            assert isinstance(phase["scheduled_total"], int)
            assert sum(phase["scheduled"].values()) == phase["scheduled_total"]
    assert plan["duration_s"] >= end


def test_users_phases_have_no_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    """cpu_stress's closed-model phases print null counts, and so does the plan total."""
    code, out, _ = run(capsys, "plan", "cpu_stress", "--json")
    assert code == 0
    plan = json.loads(out)
    shapes = [(p["shape"], p["scheduled_total"]) for p in plan["phases"]]
    assert shapes == [("users", None), ("users", None), ("idle", 0)]
    assert plan["scheduled_total"] is None


def description_of(path: Path) -> str:
    """The `description "..."` line of a scenario file, read with a plain regex."""
    match = re.search(r'^\s*description "(.*)"\s*$', path.read_text(encoding="utf-8"), re.M)
    assert match is not None, path
    return match.group(1)


def test_list_shows_every_builtin_with_its_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`list` prints one line per built-in: its name, its run length and its description."""
    code, out, err = run(capsys, "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == len(BUILTIN) == 8
    for line, path in zip(lines, BUILTIN, strict=True):
        name, length, description = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        assert name == path.stem
        assert re.fullmatch(r"\d+:\d\d(:\d\d)?", length)
        assert description == description_of(path)
    heavy = next(line for line in lines if line.startswith("heavy "))
    assert " 11:00 " in heavy  # 10 minutes of phases, the last window runs one more


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No command, an unknown option and a bad --max-rate are usage errors (exit 2)."""
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert "validate" in err  # the help lists the commands
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--frobnicate", "heavy"])
    assert exited.value.code == 2
    capsys.readouterr()
    code, _, err = run(capsys, "validate", "heavy", "--max-rate", "0")
    assert code == 2
    assert "nimbus-scenarios validate: error: --max-rate must be above zero" in err


def test_max_rate_raises_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    """A rate above the default cap is valid once --max-rate allows it."""
    code, _, err = run(capsys, "validate", "heavy", "--set", "peak=30000/s")
    assert code == 2
    assert "above the limit of 20000/s" in err
    code, _, err = run(capsys, "validate", "heavy", "--set", "peak=30000/s", "--max-rate", "40000")
    assert code == 0
    # Valid, with the plan's warning about that much stress memory in flight, as `plan` says.
    assert ": error:" not in err
    assert "memory in flight" in err
    code, out, _ = run(
        capsys, "plan", "heavy", "--json", "--set", "peak=30000/s", "--max-rate", "40000"
    )
    assert code == 0
    assert json.loads(out)["max_rate"] == 40000
    assert ["memory in flight" in w for w in json.loads(out)["warnings"]] == [True]


def imported_modules(stderr: str) -> set[str]:
    """Top-level package names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            names.add(module.split(".")[0])
    return names


def test_cold_validate_imports_no_heavy_modules() -> None:
    """A cold `python -m nimbus_scenarios validate scenarios/heavy.scn` skips the runner's deps."""
    done = run_cli("validate", "scenarios/heavy.scn", python_options=("-X", "importtime"))
    assert done.code == 0
    assert done.stdout == "scenarios/heavy.scn: ok\n"
    modules = imported_modules(done.stderr)
    assert {"nimbus_scenarios", "lark"} <= modules  # the probe sees real imports
    assert modules.isdisjoint(HEAVY_MODULES)


def test_plan_and_list_import_no_heavy_modules() -> None:
    """After `plan` and `list` run in a fresh interpreter, no runner dependency is loaded."""
    snippet = (
        "import sys, io, contextlib\n"
        "from nimbus_scenarios.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['plan', 'heavy', '--json']), main(['list']),"
        " main(['validate', 'scenarios/heavy.scn'])]\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print([int(code) for code in codes], loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "[0, 0, 0] []\n"


def test_seed_form_becomes_a_run_command() -> None:
    """`--url=U --test=light --monitor --cleanup` parses as `run light --url=U ...`."""
    argv = seed_form(["--url=http://127.0.0.1:8000", "--test=light", "--monitor", "--cleanup"])
    assert argv == ["run", "light", "--url=http://127.0.0.1:8000", "--monitor", "--cleanup"]
    args = build_parser().parse_args(argv)
    assert args.command == "run"
    assert args.scenario == "light"
    assert args.url == "http://127.0.0.1:8000"
    assert args.monitor is True
    assert args.cleanup is True
    spaced = seed_form(["--test", "heavy", "--url", "http://127.0.0.1:8000"])
    assert spaced == ["run", "heavy", "--url", "http://127.0.0.1:8000"]
    assert seed_form(["run", "light"]) == ["run", "light"]


def test_unknown_seed_test_exits_2_listing_the_built_ins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--test=nope` is a usage error (exit 2) that lists every built-in scenario."""
    assert main(["--url=http://127.0.0.1:8000", "--test=nope"]) == 2
    stderr = capsys.readouterr().err
    assert "'nope'" in stderr
    names = builtin_names()
    assert "light" in names
    for name in names:
        assert name in stderr
