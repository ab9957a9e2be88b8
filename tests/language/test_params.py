"""`--set NAME=VALUE` overrides: same kind as the default, known names only, bounded size."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.language.params import MAX_OVERRIDE_CHARS, parse_overrides
from nimbus_scenarios.pipeline import check, compile_source

ROOT = Path(__file__).resolve().parents[2]

# One param of every kind, each used where that kind is required.
KINDS = Source(
    "kinds.scn",
    """scenario "kinds" {
  target "http://svc.example"
  watch deployment "svc"
  param peak = 20/s
  param length = 30s
  param cores = 3
  param share = 40%
  param rest = 60%
  param mem = 20MB
  param path = "/work"
  param verbose = true

  request work = GET $path {
    query verbose = $verbose
  }
  request crunch = stress cpu $cores memory $mem for 2s

  phase "p" $length {
    rate $peak
    send $share work, $rest crunch
  }
}
""",
)


def plan_of(overrides: dict[str, str]) -> dict[str, object]:
    """The JSON plan of the KINDS scenario with `overrides` applied."""
    from nimbus_scenarios.plan.render import plan_json

    return plan_json(compile_source(KINDS, overrides))


def errors_of(overrides: dict[str, str]) -> list[str]:
    """The error messages `check` finds in the KINDS scenario with `overrides`."""
    return [d.message for d in check(KINDS, overrides).errors]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_set_rate_changes_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set peak=80/s` on `heavy` raises the ramp's end and the hold rate in the plan."""
    code, out, err = run(capsys, "plan", "heavy", "--json", "--set", "peak=80/s")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    phases = {p["name"]: p for p in plan["phases"]}
    assert plan["params"] == {"peak": "80/s"}
    assert phases["ramp"]["shape_text"] == "ramp 2/s -> 80/s"
    assert phases["ramp"]["scheduled_total"] == 4920  # (2 + 80) / 2 x 120s
    assert phases["hold"]["scheduled_total"] == 9600  # 80/s x 120s
    code, out, _ = run(capsys, "plan", "heavy", "--json")
    assert code == 0
    default = {p["name"]: p for p in json.loads(out)["phases"]}
    assert default["hold"]["scheduled_total"] == 2400  # 20/s x 120s


def test_set_wrong_kind_names_the_expected_kind(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set peak=fast` exits 2 and says that `peak` is a rate."""
    code, out, err = run(capsys, "plan", "heavy", "--set", "peak=fast")
    assert (code, out) == (2, "")
    assert "`--set peak=fast`: `peak` is a rate, like `20/s` or `300/m`" in err
    assert "`fast` is not a rate" in err
    code, _, err = run(capsys, "validate", "heavy", "--set", "peak=fast")
    assert code == 2
    assert err.endswith("heavy.scn: 1 error\n")


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("peak", "30s", "a rate"),
        ("peak", "20", "a rate"),
        ("length", "20/s", "a duration"),
        ("length", "30", "a duration"),
        ("cores", "3s", "a number"),
        ("cores", '"3"', "a number"),
        ("share", "40", "a percentage"),
        ("share", "0.4", "a percentage"),
        ("mem", "20", "a size"),
        ("verbose", "yes", "a bool"),
        ("verbose", "1", "a bool"),
    ],
)
def test_set_kind_mismatch(name: str, value: str, kind: str) -> None:
    """An override of another kind than the param's default is an error naming the kind."""
    assert errors_of({name: value}) == [
        f"`--set {name}={value}`: `{name}` is {kind}, "
        + {
            "a rate": "like `20/s` or `300/m`",
            "a duration": "like `30s` or `1m30s`",
            "a number": "like `12`",
            "a percentage": "like `12.5%`",
            "a size": "like `150MB`",
            "a bool": "`true` or `false`",
        }[kind]
        + f"; `{value}` is not {kind}"
    ]


@pytest.mark.parametrize(
    ("overrides", "path", "check_value"),
    [
        ({"peak": "5/s"}, ("phases", 0, "scheduled_total"), 150),  # 5/s x 30s
        ({"peak": "600/m"}, ("phases", 0, "scheduled_total"), 300),  # 10/s x 30s
        ({"length": "1m"}, ("phases", 0, "scheduled_total"), 1200),  # 20/s x 60s
        ({"cores": "7"}, ("templates", "crunch", "stress", "cpu_intensity"), 7),
        ({"share": "10%", "rest": "90%"}, ("phases", 0, "scheduled", "work"), 60),  # 1:9 of 600
        ({"mem": "0.25GB"}, ("templates", "crunch", "stress", "memory_mb"), 256),
        ({"path": "/v2/work"}, ("templates", "work", "path"), "/v2/work"),
        ({"verbose": "false"}, ("templates", "work", "query", "verbose"), "false"),
    ],
)
def test_set_same_kind_is_used(
    overrides: dict[str, str], path: tuple[str | int, ...], check_value: object
) -> None:
    """An override of the right kind replaces the default wherever the param is referenced."""
    node: object = plan_of(overrides)
    for key in path:
        node = node[key]  # type: ignore[index]
    assert node == check_value


def test_set_share_keeps_weights_checked() -> None:
    """A weight changed by `--set` is still checked: the mix must add up to 100%."""
    assert errors_of({"share": "50%"}) == ["the weights add up to 110%, not 100%"]


def test_set_value_out_of_range_is_reported_where_used() -> None:
    """A right-kind override outside a range fails validation at the place the param is used."""
    found = check(KINDS, {"peak": "30000/s", "cores": "11"}).errors
    messages = [(d.span.line, d.message) for d in found]
    assert messages == [
        (16, "`cpu` must be from 1 to 10; found 11; the value is from `--set cores=11`"),
        (
            19,
            (
                "`rate` `30000/s` is above the limit of 20000/s per process "
                "(raise it with --max-rate, or shard the run); "
                "the value is from `--set peak=30000/s`"
            ),
        ),
    ]


@pytest.mark.parametrize("text", ["/bare/path", '"/quoted/path"'])
def test_string_param_accepts_bare_and_quoted(text: str) -> None:
    """A string param takes its override bare or in double quotes, with the same result."""
    plan = plan_of({"path": text})
    assert plan["templates"]["work"]["path"] == text.strip('"')  # type: ignore[index]


def test_string_param_takes_any_bare_text() -> None:
    """A string override is never read as another kind: `5/s` is the text `5/s`."""
    check_result = check(KINDS, {"path": "5/s"})
    value = check_result.params.values["path"]
    assert getattr(value, "string", None) == "5/s"
    # ... and is then checked like any path written in the file
    assert [d.message for d in check_result.errors] == [
        "a request path must start with `/`; found `5/s`; the value is from `--set path=5/s`"
    ]


def test_quoted_string_escapes() -> None:
    """A quoted string override uses the file's escapes; an unknown escape is an error."""
    plan = plan_of({"path": '"/a\\"b\\\\c"'})
    assert plan["templates"]["work"]["path"] == '/a"b\\c'  # type: ignore[index]
    assert errors_of({"path": '"/a\\qb"'}) == [
        '`--set path=...`: unknown escape `\\q` in a string (use \\", \\\\, \\n or \\t)'
    ]


def test_unknown_name_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set peek=...` is an error that lists the params and suggests `peak`."""
    code, _, err = run(capsys, "validate", "heavy", "--set", "peek=10/s")
    assert code == 2
    assert "`--set peek=...`: the scenario has no param `peek` (its params: peak)" in err
    assert "did you mean `peak`?" in err


def test_unknown_name_without_params() -> None:
    """An override for a scenario with no params says so and suggests nothing."""
    source = Source(
        "x.scn", 'scenario "x" {\n  request a = GET "/"\n  phase "p" 1s {\n    idle\n  }\n}\n'
    )
    (problem,) = check(source, {"peak": "1/s"}).errors
    assert (
        problem.message == "`--set peak=...`: the scenario has no param `peak` (its params: none)"
    )
    assert problem.hint is None


@pytest.mark.parametrize("item", ["peak", "=5/s", "  =5/s", ""])
def test_malformed_set_is_a_usage_error(item: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A `--set` item without NAME=VALUE exits 2 with the expected form in the message."""
    code, out, err = run(capsys, "plan", "heavy", "--set", item)
    assert (code, out) == (2, "")
    assert err == f"--set: error: `--set {item}` must have the form NAME=VALUE\n"


def test_empty_value_is_a_kind_error() -> None:
    """`--set peak=` is well formed but the empty text is not a rate."""
    assert parse_overrides(["peak="]) == {"peak": ""}
    assert errors_of({"peak": ""}) == [
        "`--set peak=`: `peak` is a rate, like `20/s` or `300/m`; `` is not a rate"
    ]


def test_value_at_the_size_limit_is_read() -> None:
    """A value of exactly the limit is accepted by the parser (and then judged by kind)."""
    value = "/" + "a" * (MAX_OVERRIDE_CHARS - 1)
    assert parse_overrides([f"path={value}"]) == {"path": value}
    assert plan_of({"path": value})["templates"]["work"]["path"] == value  # type: ignore[index]


def test_oversized_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A value one character over the limit is refused with the length in the message."""
    value = "1" * MAX_OVERRIDE_CHARS + "/s"
    code, out, err = run(capsys, "plan", "heavy", "--set", f"peak={value}")
    assert (code, out) == (2, "")
    assert err == (
        "--set: error: `--set peak=...` is 4,098 characters long; values are limited to 4,096\n"
    )


def test_huge_value_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    """A 10 MB `--set` value is refused in well under a second, by the parser and the CLI."""
    value = "9" * (10 * 1024 * 1024)
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="values are limited to 4,096"):
        parse_overrides([f"peak={value}/s"])
    code, _, err = run(capsys, "validate", "heavy", "--set", f"peak={value}/s")
    elapsed = time.perf_counter() - started
    assert code == 2
    assert "10,485,762 characters long" in err
    assert len(err) < 200
    assert elapsed < 0.5


def test_long_number_in_a_value_is_bounded() -> None:
    """A 4000-digit number within the size limit is refused as too long, as in a file."""
    value = "9" * 4000 + "/s"
    (message,) = errors_of({"peak": value})
    assert message == (
        "`--set peak=9999999999999999999999999999999999999...`: the number "
        "`9999999999999999999999999999999999999...` is too long; "
        "`peak` is a rate, like `20/s` or `300/m`"
    )


def test_override_of_env_param_is_a_plain_string() -> None:
    """A param whose default is `env(...)` takes a string override, shown in the plan."""
    source = Source(
        "env.scn",
        'scenario "env" {\n  target "http://svc.example"\n  param tok = env("TOK")\n'
        '  request a = GET "/" {\n    header "X-Tok" = $tok\n  }\n'
        '  phase "p" 1s {\n    rate 1/s\n    send a\n  }\n}\n',
    )
    from nimbus_scenarios.plan.render import plan_json

    masked = plan_json(compile_source(source))
    assert masked["templates"]["a"]["headers"] == {"X-Tok": "***"}
    given = plan_json(compile_source(source, {"tok": "abc"}))
    assert given["templates"]["a"]["headers"] == {"X-Tok": "abc"}


def test_valid_corpus_params_accept_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set` on a corpus file through the CLI changes the plan it prints."""
    scn = "tests/data/valid/params.scn"
    code, out, err = run(
        capsys,
        "plan",
        "--json",
        str(ROOT / scn),
        "--set",
        "len=1m",
        "--set",
        "size=1",
    )
    assert (code, err) == (0, "")
    phases = {p["name"]: p for p in json.loads(out)["phases"]}
    assert phases["burst"]["burst"] == {"size": 1, "every_s": 5.0, "count": 12}
    assert phases["ramp"]["scheduled_total"] == 660  # (2 + 20) / 2 x 60s


def _file_message(text: str) -> str:
    """What `validate` says about `text` written as a rate param's value in a file."""
    source = Source(
        "f.scn",
        f'scenario "f" {{\n  target "http://svc.example"\n  param peak = {text}\n'
        '  request a = GET "/"\n  phase "p" 1s {\n    rate $peak\n    send a\n  }\n}\n',
    )
    (problem,) = check(source).errors
    return problem.message


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("peak", "1234567890123456789012345678901234567890", None),  # said "is not a rate"
        ("peak", "1234567890123456789012345678901234567890/s", None),
        ("mem", "20MiB", "20MB"),
        ("peak", "5/sec", "5/s"),
        ("length", "1m1m", "2m"),
        ("length", "1s1m", "1m1s"),
        ("peak", "1m1m", None),  # `2m` is no rate: the hint would mislead
    ],
)
def test_bad_number_gives_the_files_message(name: str, value: str, hint: str | None) -> None:
    """A value that starts like a number but cannot be read says what a file says about it,
    then what the param takes; the file's hint is kept where it is of the param's kind."""
    (problem,) = check(KINDS, {name: value}).errors
    expected = {"peak": "a rate, like `20/s` or `300/m`", "mem": "a size, like `150MB`"}.get(
        name, "a duration, like `30s` or `1m30s`"
    )
    short = value if len(value) <= 40 else value[:37] + "..."
    assert problem.message == (
        f"`--set {name}={short}`: {_file_message(value)}; `{name}` is {expected}"
    )
    assert problem.hint == hint


STATUSES = Source(
    "statuses.scn",
    """scenario "statuses" {
  target "http://svc.example"
  param ok = 2xx
  param code = 200
  param count = 2
  request a = GET "/a" {
    expect status $ok
  }
  request b = GET "/b" {
    expect status $code
    expect status 3xx
  }
  phase "p" 2s {
    users $count
    send a
  }
  phase "q" 1s {
    rate 1/s
    send b
  }
}
""",
)


def _statuses(overrides: dict[str, str]) -> dict[str, object]:
    """The statuses each template of STATUSES counts as success, with `overrides` applied."""
    from nimbus_scenarios.plan.render import plan_json

    templates = plan_json(compile_source(STATUSES, overrides))["templates"]
    assert isinstance(templates, dict)
    return {name: templates[name]["ok_status"] for name in ("a", "b")}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"a": ["2xx"], "b": ["200", "3xx"]}),
        ({"ok": "404"}, {"a": ["404"], "b": ["200", "3xx"]}),  # was refused: "not a class"
        ({"ok": "4xx"}, {"a": ["4xx"], "b": ["200", "3xx"]}),
        ({"code": "5xx"}, {"a": ["2xx"], "b": ["5xx", "3xx"]}),
        ({"code": "503", "ok": "201"}, {"a": ["201"], "b": ["503", "3xx"]}),
    ],
)
def test_status_params_take_a_code_or_a_class(
    overrides: dict[str, str], expected: dict[str, object]
) -> None:
    """`expect status` takes `404` and `4xx`, so a param used there takes either from `--set`,
    whether its default is a class (`2xx`) or a code (`200`)."""
    assert _statuses(overrides) == expected


def errors_of_statuses(overrides: dict[str, str]) -> list[str]:
    """The error messages `check` finds in the STATUSES scenario with `overrides`."""
    return [d.message for d in check(STATUSES, overrides).errors]


def test_status_override_that_is_neither_is_refused_without_contradiction() -> None:
    """`--set ok=abc` says what a status is, and does not call `404` "not a status"."""
    assert errors_of_statuses({"ok": "abc"}) == [
        (
            "`--set ok=abc`: `ok` is a status, a code like `404` or a class like `4xx`; "
            "`abc` is not a status"
        )
    ]


def test_status_code_out_of_range_is_reported_where_used_and_names_set() -> None:
    """A code override is checked by `expect status` (100 to 599) at the `$ok` it replaces."""
    (problem,) = check(STATUSES, {"ok": "42"}).errors
    assert (problem.span.line, problem.span.column) == (7, 19)
    assert problem.message == (
        "`expect status` must be a status from 100 to 599 or a class such as `2xx`; "
        "found `42`; the value is from `--set ok=42`"
    )


def test_number_param_used_elsewhere_takes_no_class() -> None:
    """A code-like number param also used as a count stays a number: `5xx` is refused."""
    assert errors_of_statuses({"count": "5xx"}) == [
        "`--set count=5xx`: `count` is a number, like `12`; `5xx` is not a number"
    ]


def test_set_twice_is_an_error_naming_both(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set x=1 --set x=2` exits 2 naming both; which was meant cannot be known."""
    with pytest.raises(ScenarioError) as raised:
        parse_overrides(["peak=1/s", "len=1m", "peak=2/s"])
    assert str(raised.value) == (
        "--set: error: `--set peak=1/s` and `--set peak=2/s` both set `peak`; give it once"
    )
    for command in ("validate", "plan"):
        code, out, err = run(capsys, command, "heavy", "--set", "peak=5/s", "--set", "peak=5/s")
        assert (code, out) == (2, "")
        assert err == (
            "--set: error: `--set peak=5/s` and `--set peak=5/s` both set `peak`; give it once\n"
        )


def test_value_failing_validation_names_its_set(capsys: pytest.CaptureFixture[str]) -> None:
    """A right-kind override that validation refuses points at each `$peak` in the file and
    says that the value came from `--set peak=...`; the same value written in the file does not."""
    code, out, err = run(capsys, "validate", "heavy", "--set", "peak=30000/s")
    assert (code, out) == (2, "")
    blocks = err.rstrip("\n").split("\n\n")
    assert len(blocks) == 2
    for block, (line, column) in zip(blocks, [(28, 17), (33, 10)], strict=True):
        head, shown, caret = block.splitlines()[:3]
        assert f"heavy.scn:{line}:{column}: error: " in head
        assert head.endswith(
            "is above the limit of 20000/s per process (raise it with --max-rate, or shard "
            "the run); the value is from `--set peak=30000/s`"
        )
        assert shown.endswith("$peak")
        assert caret.split(" | ", 1)[1] == " " * (column - 1) + "^^^^^"
    assert err.endswith("heavy.scn: 2 errors\n")
    written = Source("w.scn", KINDS.text.replace("param peak = 20/s", "param peak = 30000/s"))
    (problem,) = check(written).errors
    assert problem.message == (
        "`rate` `30000/s` is above the limit of 20000/s per process "
        "(raise it with --max-rate, or shard the run)"
    )


@pytest.mark.parametrize(
    ("sets", "code", "says"),
    [
        (["ok=404"], 0, ""),
        (["code=5xx"], 0, ""),
        (["ok=abc"], 2, "`ok` is a status, a code like `404` or a class like `4xx`"),
        (["count=1234567890123456789012345678901234567890"], 2, "is too long"),
        (["count=1", "count=2"], 2, "both set `count`; give it once"),
        (["ok=42"], 2, "the value is from `--set ok=42`"),
    ],
)
def test_set_through_the_command_line(
    sets: list[str], code: int, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `--set` rough edge through `validate` and `plan`: exit 0, or 2 with the message."""
    path = tmp_path / "statuses.scn"
    path.write_text(STATUSES.text, encoding="utf-8")
    args = [x for item in sets for x in ("--set", item)]
    for command in ("validate", "plan"):
        exit_code, _, err = run(capsys, command, str(path), *args)
        assert exit_code == code
        assert says in err
        assert "Traceback" not in err
