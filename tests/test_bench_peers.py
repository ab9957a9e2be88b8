"""The pure parts of `bench/peers.py` (the run itself is a bench, not a test): reading the
CLI's options, the rate search, ranges, verdicts and the docs section."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from nimbus_scenarios.cli import build_parser
from nimbus_scenarios.engine.factory import TRANSPORT_KINDS

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def peers() -> ModuleType:
    """bench/peers.py, imported from its path; it puts bench/ on sys.path for its support
    module, which is taken off again (bench/ holds scripts named like common modules)."""
    saved = list(sys.path)
    try:
        return _load("nimbus_bench_peers", ROOT / "bench" / "peers.py")
    finally:
        sys.path[:] = saved


@pytest.fixture(scope="module")
def sup(peers: ModuleType) -> ModuleType:
    """bench/_peers_support.py, as peers.py imported it."""
    return sys.modules["_peers_support"]


def _run_help() -> str:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "run" in a.choices)
    return subparsers.choices["run"].format_help()


def test_the_cli_s_transports_and_default_are_read_from_run_help(sup: ModuleType) -> None:
    """The transport choices come from the real `run --help`, the default from its help text."""
    options = sup.parse_run_help(_run_help())
    assert options.transports == tuple(TRANSPORT_KINDS)
    assert options.default_transport in TRANSPORT_KINDS


def test_workers_and_an_event_loop_option_are_found_when_the_cli_has_them(
    sup: ModuleType,
) -> None:
    """A `run` with `--workers` and `--loop {...}` is detected; one without them is not."""
    text = (
        "usage: nimbus-scenarios run [--transport {aiohttp,lean}] [--workers N|auto]\n"
        "                            [--loop {uvloop,asyncio}]\n"
        "options:\n"
        "  --transport {aiohttp,lean}\n"
        "                        HTTP client for the load (default lean,\n"
        "                        the fastest measured)\n"
        "  --workers N|auto      worker processes\n"
        "  --loop {uvloop,asyncio}\n"
        "                        the event loop (default uvloop)\n"
    )
    options = sup.parse_run_help(text)
    assert options.transports == ("aiohttp", "lean")
    assert options.default_transport == "lean"
    assert options.workers
    assert (options.loop_option, options.loops) == ("--loop", ("uvloop", "asyncio"))
    bare = sup.parse_run_help("options:\n  --transport {aiohttp}\n   HTTP client\n")
    assert not bare.workers
    assert bare.loop_option is None
    assert bare.default_transport is None


def _capacity_search(sup: ModuleType, capacity: float, start: float, **limits: float) -> object:
    tried: list[float] = []

    def held(rate: float) -> bool:
        tried.append(rate)
        return rate <= capacity

    settings = {"step": 2000.0, "resolution": 250.0, "max_trials": 20, "budget_s": 1e9}
    settings.update(limits)
    return sup.search_highest(held, start=start, trial_s=1.0, **settings)


@pytest.mark.parametrize(
    ("capacity", "start"), [(13_100.0, 6000.0), (13_100.0, 20_000.0), (900.0, 4000.0)]
)
def test_the_search_finds_the_capacity_to_its_resolution(
    sup: ModuleType, capacity: float, start: float
) -> None:
    """Walking up (or down) from the start, then bisecting, ends within one resolution step."""
    found = _capacity_search(sup, capacity, start)
    assert found.best <= capacity < found.best + 250
    assert found.stopped == "resolved"
    assert all(held == (rate <= capacity) for rate, held in found.trials)


def test_the_search_reports_zero_when_nothing_is_held(sup: ModuleType) -> None:
    """A generator that holds no rate at all gives 0, after a bounded walk down."""
    found = _capacity_search(sup, 0.0, 6000.0)
    assert found.best == 0
    assert len(found.trials) <= 20


def test_the_search_stops_at_its_trial_limit(sup: ModuleType) -> None:
    """The trial limit bounds the search and is given as the reason it stopped."""
    found = _capacity_search(sup, 1e9, 1000.0, max_trials=4)
    assert len(found.trials) == 4
    assert found.best == 7000
    assert found.stopped.startswith("trial limit")


def test_the_search_starts_no_trial_that_would_end_past_its_budget(sup: ModuleType) -> None:
    """With a budget of 10 s and 3 s per trial, three trials run (the fourth would end at 12 s)."""
    now = [0.0]

    def held(rate: float) -> bool:
        now[0] += 3.0
        return True

    found = sup.search_highest(
        held,
        start=1000,
        step=1000,
        resolution=250,
        max_trials=50,
        budget_s=10,
        trial_s=3,
        clock=lambda: now[0],
    )
    assert [rate for rate, _ in found.trials] == [1000, 2000, 3000]
    assert found.stopped.startswith("time budget")


def test_ranges_show_one_value_or_low_to_high(sup: ModuleType) -> None:
    """A figure equal over repeats prints once; otherwise its range; nothing prints a dash."""
    assert sup.Span((0.5, 0.5)).show(sup.pct0) == "50%"
    assert sup.Span((0.7, 0.5, 0.6)).show(sup.pct0) == "50%–70%"  # noqa: RUF001
    assert sup.Span(()).show(sup.pct0) == "-"


def test_a_verdict_fails_when_any_repeat_misses_and_skips_when_unmeasured(
    peers: ModuleType,
) -> None:
    """PASS needs every repeat that measured the figure; SKIP when none did."""
    good, bad = peers.Figures(), peers.Figures()
    good.put("ratio.highest", 2.3)
    bad.put("ratio.highest", 1.9)
    verdicts = dict(peers.verdicts([good], ()))
    assert verdicts["highest rate held on one core >= 2x Locust FastHttpUser's full speed"] == (
        "PASS"
    )
    verdicts = dict(peers.verdicts([good, bad], ()))
    assert verdicts["highest rate held on one core >= 2x Locust FastHttpUser's full speed"] == (
        "FAIL (1 of 2 repeats miss it)"
    )
    assert verdicts["--workers 2 holds >= 1.7x the rate of --workers 1"].startswith("SKIP")


def test_the_docs_section_is_appended_once_then_replaced_in_place(sup: ModuleType) -> None:
    """The first write appends the marked section; the next replaces only what is inside."""
    document = "# Performance\n\nintro\n"
    first = sup.replace_section(document, "table one", "## Peers")
    assert first.startswith(document.rstrip("\n"))
    assert f"## Peers\n\n{sup.BEGIN}\ntable one\n{sup.END}\n" in first
    second = sup.replace_section(first + "\nafter\n", "table two", "## Peers")
    assert "table one" not in second
    assert second.count(sup.BEGIN) == 1
    assert second.endswith(f"{sup.BEGIN}\ntable two\n{sup.END}\n\nafter\n")
    with pytest.raises(ValueError, match="without"):
        sup.replace_section(f"{sup.END}\n{sup.BEGIN}\n", "x", "## Peers")


def test_a_memory_run_short_of_a_million_requests_is_incomplete_not_judged(
    peers: ModuleType,
) -> None:
    """RSS growth counts only over 1,000,000 requests: a time-capped run is INCOMPLETE."""
    capped, full = peers.Figures(), peers.Figures()
    capped.put("rss.httpx", 1.0)
    capped.put("rss_sent.httpx", 138_000)
    full.put("rss.httpx", 31.0)
    full.put("rss_sent.httpx", 1_000_000)
    line = "RSS growth < 30 MB over 1,000,000 requests (httpx)"
    assert dict(peers.verdicts([capped], ("httpx",)))[line].startswith("INCOMPLETE")
    assert dict(peers.verdicts([full], ("httpx",)))[line].startswith("FAIL")


# ---------------------------------------------------------------- section 3: halves of a CPU


def test_halves_are_section_3_s_default_only_when_the_target_would_share_a_cpu(
    peers: ModuleType, sup: ModuleType
) -> None:
    """auto: a CPU per worker when the machine leaves the target one of its own, else halves
    of one CPU; an explicit choice is kept."""
    two = sup.Layout(frozenset({1}), frozenset({0}), frozenset({0, 1}))
    four = sup.Layout(frozenset({2}), frozenset({0}), frozenset({0, 1}))
    assert peers.where_workers_run("auto", two) == "halves"
    assert peers.where_workers_run("auto", four) == "cores"
    assert peers.where_workers_run("cores", two) == "cores"
    assert peers.where_workers_run("halves", four) == "halves"


def test_in_halves_the_acceptance_is_their_ratio_and_the_shared_one_a_reference(
    peers: ModuleType,
) -> None:
    """The workers line is judged on `ratio.workers` (the halves'); the shared cores' ratio is
    shown, labelled as the reference, and never judged."""
    figures = peers.Figures()
    for name, value in {
        "half1.highest": 18_000.0,
        "half2.highest": 34_000.0,
        "ratio.workers": 34_000 / 18_000,
        "workers1.highest": 38_000.0,
        "workers2.highest": 47_000.0,
        "ratio.workers_shared": 47_000 / 38_000,
    }.items():
        figures.put(name, value)
    line = "--workers 2 holds >= 1.7x the rate of --workers 1"
    assert dict(peers.verdicts([figures], ()))[line] == "PASS"
    rows = peers.table(peers.spans([figures]), ())
    half2 = next(r for r in rows if r.startswith("| --workers 2, half a CPU each: highest"))
    assert half2.endswith("| 1.89× |")  # noqa: RUF001
    shared = next(r for r in rows if "the target's too (reference)" in r)
    assert shared.endswith("| 1.24× |")  # noqa: RUF001
    figures.put("ratio.workers", 1.2)
    assert dict(peers.verdicts([figures], ()))[line].startswith("FAIL")


def _on_cpus(pid: int) -> frozenset[int]:
    return frozenset(os.sched_getaffinity(pid))


def _loops() -> list[int]:
    """The busy loops running now (their command is recognisable)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"while time.monotonic() < end" in command:
            found.append(int(entry.name))
    return found


def test_busy_loops_are_pinned_bounded_and_stopped(sup: ModuleType) -> None:
    """The loops run on the CPUs given, each in a session of its own, end by themselves after
    their limit, and are gone once the block is left."""
    cpus = frozenset({min(os.sched_getaffinity(0))})
    with sup.busy_loops(2, cpus, 30.0):
        loops = _loops()
        assert len(loops) == 2
        assert all(frozenset(os.sched_getaffinity(pid)) == cpus for pid in loops)
        assert all(sup.group_pids(pid) == [pid] for pid in loops)  # a session each
    assert not _loops()
    with sup.busy_loops(1, cpus, 0.2):
        deadline = time.monotonic() + 10
        while _loops() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _loops()  # ended by itself, before the block was left
