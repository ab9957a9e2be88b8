"""Validation rules the golden corpus shows only by example: `url_problem`'s table, the options
that come from the command line (`--max-rate`, `--deployment`, the shard count), checks that
report once, the scenario name's safe set, and URL passwords masked in messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.language import check
from nimbus_scenarios.language.errors import Source, render_all
from nimbus_scenarios.language.validate import url_problem
from nimbus_scenarios.language.vocabulary import MAX_SCENARIO_NAME


def errors(
    body: str,
    *,
    max_rate: float = 10_000,
    watch_given: bool = False,
    shards: int = 1,
    sets: dict[str, str] | None = None,
) -> list[str]:
    """The error messages of a scenario whose statements are `body`, in source order."""
    text = f'scenario "t" {{\n  target "http://svc"\n{body}\n}}\n'
    checked = check(
        Source("t.scn", text), sets, max_rate=max_rate, watch_given=watch_given, shards=shards
    )
    return [d.message for d in checked.errors]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://svc", None),
        ("https://svc.example:8443/base", None),
        ("http://[::1]:8000", None),
        ("ftp://svc", "must be an http:// or https:// URL"),
        ("http://", "must be an http:// or https:// URL"),
        ("svc:8000", "must be an http:// or https:// URL"),
        ("http://svc:0", "has port 0"),
        ("http://svc:99999", "is not a valid URL"),
        ("http://svc?x=1", "must not have a query or fragment"),
        ("http://svc#top", "must not have a query or fragment"),
        ("http://svc?", "must not have a query or fragment"),
    ],
)
def test_url_problem_table(url: str, problem: str | None) -> None:
    """`target` and `run --url` accept only an http(s) base URL with a host and a usable port."""
    found = url_problem(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


def test_max_rate_bounds_rates_and_bursts() -> None:
    """`--max-rate` is the limit for a rate and for a burst's average, and the messages say so."""
    body = """  request h = GET "/h"
  phase "a" 1m {
    rate 20/s
    send h
  }
  phase "b" 1m {
    burst 100 every 5s
    send h
  }"""
    assert errors(body, max_rate=50) == []
    assert errors(body, max_rate=10) == [
        (
            "`rate` `20/s` is above the limit of 10/s per process "
            "(raise it with --max-rate, or shard the run)"
        ),
        (
            "100 requests every 5s averages above the limit of 10/s per process "
            "(raise it with --max-rate)"
        ),
    ]


USERS = """  param crowd = 100
  request h = GET "/h"
  phase "a" 1m {
    users $crowd
    send h
  }"""


def test_users_per_process_are_capped_and_shards_share_them() -> None:
    """10,000 users fit one process, 10,001 do not; shards divide them, and the message says
    how many shards would do."""
    assert errors(USERS, sets={"crowd": "10000"}) == []
    assert errors(USERS, sets={"crowd": "10001"}) == [
        (
            "`users 10001` is above the limit of 10,000 users per process; shard the run: "
            "`run --shards 2` gives each process at most 10,000; "
            "the value is from `--set crowd=10001`"
        )
    ]
    assert errors(USERS, sets={"crowd": "100000"}, shards=10) == []
    assert errors(USERS, sets={"crowd": "100000"}, shards=5) == [
        (
            "`users 100000` is above the limit of 10,000 users per process (20,000 in each of 5 "
            "shards); shard the run: `run --shards 10` gives each process at most 10,000; "
            "the value is from `--set crowd=100000`"
        )
    ]


def test_deployment_from_the_command_line_stands_for_watch() -> None:
    """Replica expectations, kills and replica guards need a watch, which --deployment gives."""
    body = """  request h = GET "/h"
  phase "a" 1m {
    rate 1/s
    send h
    expect replicas >= 2 within 30s
    at 10s kill 1 pods
  }
  abort when replicas > 5"""
    assert errors(body, watch_given=True) == []
    assert errors(body) == [
        'a replica expectation needs `watch deployment "NAME"` (or --deployment)',
        '`kill` needs `watch deployment "NAME"` to know which pods to delete',
        '`abort when replicas` needs `watch deployment "NAME"`',
    ]


def test_stairs_limit_is_reported_once_at_the_shape_that_crosses_it() -> None:
    """Three shapes of 9,000 stairs cross the 20,000 limit at the third; it alone is reported."""
    phases = "\n".join(
        f'  phase "p{i}" 1m {{\n    steps 1/s -> 2/s in 9000\n    send h\n  }}' for i in range(4)
    )
    found = errors(f'  request h = GET "/h"\n{phases}')
    assert found == [
        "the `steps` shapes reach 27,000 stairs in all here; the limit is 20,000 for a scenario"
    ]


def test_a_bad_param_default_is_reported_where_it_is_defined_only() -> None:
    """A param whose default is malformed gives one error, however often it is used."""
    body = """  param peak = 5/q
  request h = GET "/h"
  phase "a" 1m {
    rate $peak
    send h
  }
  phase "b" 1m {
    ramp $peak -> $peak
    send h
  }"""
    assert errors(body) == ["unknown rate unit `/q` in `5/q` (use /s, /m or /h)"]


def test_spikes_are_checked_against_their_own_phase() -> None:
    """A spike must end inside its phase and not overlap another; each spike is judged alone."""
    body = """  request h = GET "/h"
  phase "a" 30s {
    rate 1/s
    spike 10/s for 10s at 5s
    spike 10/s for 10s at 10s
    spike 10/s for 10s at 25s
    send h
  }"""
    assert errors(body) == [
        "this spike overlaps the one at line 6",
        "the spike runs from 25s to 35s, past the end of its 30s phase",
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59), st.integers(1, 30)), min_size=1, max_size=12))
def test_every_overlapping_pair_of_spikes_is_reported(spikes: list[tuple[int, int]]) -> None:
    """Each spike names every earlier spike it overlaps, in the order written, as comparing
    every pair would (the check sweeps them sorted by start instead)."""
    windows = [(at, min(length, 60 - at)) for at, length in spikes]
    lines = [f"    spike 10/s for {length}s at {at}s" for at, length in windows]
    body = '  request h = GET "/h"\n  phase "a" 60s {\n    rate 1/s\n'
    body += "\n".join(lines) + "\n    send h\n  }"
    first_line = 6  # after the scenario line, target, request, phase and shape
    expected = [
        f"this spike overlaps the one at line {first_line + i}"
        for j, (at, length) in enumerate(windows)
        for i, (other_at, other_length) in enumerate(windows[:j])
        if at < other_at + other_length and other_at < at + length
    ]
    assert errors(body) == expected


def named(name: str) -> list[str]:
    """The error messages of a one-phase scenario called `name`."""
    text = (
        f'scenario "{name}" {{\n  target "http://svc"\n  request h = GET "/h"\n'
        '  phase "p" 1m {\n    rate 1/s\n    send h\n  }\n}\n'
    )
    return [d.message for d in check(Source("t.scn", text)).errors]


@pytest.mark.parametrize(
    "name", ["heavy", "keda-scale_up.v2", "A", "0day", "_x", "-x", "x" * MAX_SCENARIO_NAME]
)
def test_safe_scenario_names_are_accepted(name: str) -> None:
    """ASCII letters, digits, `-`, `_` and `.` (not first), up to 100 characters."""
    assert named(name) == []


@pytest.mark.parametrize(
    "name", ["/srv/x", "../../../y", "a/b", ".hidden", "..", "my test", "café", "a\\\\b", "a:b"]
)
def test_names_outside_the_safe_set_are_refused(name: str) -> None:
    """A name that could leave `results/`, hide a file or trouble a shell is an error."""
    (message,) = named(name)
    assert "may hold only ASCII letters, digits, `-`, `_` and `.`" in message


def test_a_name_over_the_limit_is_refused_by_length() -> None:
    """101 characters: the message gives the length and the limit."""
    assert named("x" * (MAX_SCENARIO_NAME + 1)) == [
        "the scenario name is 101 characters long; the limit is 100 (it names the results file)"
    ]


def test_every_builtin_and_valid_corpus_name_is_safe() -> None:
    """The names in use all pass: the built-in scenarios and the valid corpus."""
    root = Path(__file__).resolve().parents[2]
    files = [*(root / "scenarios").glob("*.scn"), *(root / "tests/data/valid").glob("*.scn")]
    assert len(files) >= 20
    for path in files:
        checked = check(Source(str(path), path.read_text(encoding="utf-8")), watch_given=True)
        assert not [d for d in checked.errors if "scenario name" in d.message], path


def test_a_credential_url_in_a_request_path_is_refused_with_its_password_masked() -> None:
    """The path error quotes the URL with `***` for its password, in the message and in the
    source line shown under it."""
    text = (
        'scenario "t" {\n  target "http://svc"\n'
        '  request h = GET "http://bob:s3cretpw@other.example/some/long/path/x"\n'
        '  phase "p" 1m {\n    rate 1/s\n    send h\n  }\n}\n'
    )
    source = Source("t.scn", text)
    checked = check(source)
    (problem,) = checked.errors
    assert problem.message.startswith("a request path must start with `/`")
    assert "http://bob:***@other.example" in problem.message
    rendered = render_all(source, checked.errors)
    assert "s3cretpw" not in rendered
    assert 'GET "http://bob:***@other.example/some/long/path/x"' in rendered


def test_a_password_is_masked_before_a_quoted_value_is_cut_short() -> None:
    """A value cut to 40 characters shows no leading piece of a long password."""
    password = "p" * 60
    text = f'scenario "t" {{\n  target "http://u:{password}@svc?q"\n}}\n'
    source = Source("t.scn", text)
    rendered = render_all(source, check(source).errors)
    assert "ppp" not in rendered
    assert "http://u:***@svc?q" in rendered


def test_the_rate_cap_is_per_process() -> None:
    """Shards and workers each send their share: a rate is checked against the cap times the
    processes (`run --shards N` x `--workers W`), and the message gives each one's share."""
    body = """  request h = GET "/h"
  phase "a" 1m {
    rate 30/s
    send h
  }
  phase "b" 1m {
    burst 100 every 5s
    send h
  }"""
    assert errors(body, max_rate=10, shards=3) == []
    assert errors(body, max_rate=10, shards=2) == [
        (
            "`rate` `30/s` is above the limit of 10/s per process (15/s in each of 2 processes) "
            "(raise it with --max-rate, or shard the run)"
        ),
    ]
