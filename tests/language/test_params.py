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
        ("mem", "20MiB", "a size"),
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
    found = check(KINDS, {"peak": "20000/s", "cores": "11"}).errors
    messages = [(d.span.line, d.message) for d in found]
    assert messages == [
        (16, "`cpu` must be from 1 to 10; found 11"),
        (
            19,
            (
                "`rate` `20000/s` is above the limit of 10000/s per process "
                "(raise it with --max-rate, or shard the run)"
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
        "a request path must start with `/`; found `5/s`"
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
    """A 4000-digit number within the size limit is refused as not a rate, without slowness."""
    value = "9" * 4000 + "/s"
    started = time.perf_counter()
    (message,) = errors_of({"peak": value})
    assert time.perf_counter() - started < 0.5
    assert message.startswith("`--set peak=9999999999999999999999999999999999999...`: `peak` is")


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
