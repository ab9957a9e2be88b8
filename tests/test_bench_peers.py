"""The pure parts of `bench/peers.py` (the run itself is a bench, not a test): reading the
CLI's options, the rate search, ranges, verdicts and the docs section."""

from __future__ import annotations

import importlib.util
import os
import sys
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


# ---------------------------------------------------------------- CPU-quota pods (section 3)


def _fake_v1(root: Path) -> Path:
    cpu = root / "sys/fs/cgroup/cpu"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    return cpu


def test_pods_are_made_where_a_cgroup_cpu_controller_is(sup: ModuleType, tmp_path: Path) -> None:
    """cgroup v1's cpu controller first, else a v2 root that offers `cpu`; else the reason."""
    v1 = _fake_v1(tmp_path / "v1")
    assert sup.pod_support(tmp_path / "v1") == (1, v1)
    v2 = tmp_path / "v2" / "sys/fs/cgroup"
    v2.mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (v2 / "cgroup.subtree_control").write_text("memory\n")
    assert sup.pod_support(tmp_path / "v2") == (2, v2)
    (v2 / "cgroup.controllers").write_text("memory pids\n")
    assert "no cgroup cpu controller" in sup.pod_support(tmp_path / "v2")
    assert "no cgroup cpu controller" in sup.pod_support(tmp_path / "none")


def test_a_pod_s_quota_is_its_cpus_times_kubernetes_period(sup: ModuleType, tmp_path: Path) -> None:
    """v1 writes the period then the quota; v2 writes `cpu.max` and enables `cpu` for the
    children; the throttling figures come from `cpu.stat`."""
    cpu = _fake_v1(tmp_path / "v1")
    with sup.pod(0.5, tmp_path / "v1", remove_within_s=0) as pod:
        assert pod.path.parent == cpu
        assert (pod.path / "cpu.cfs_period_us").read_text() == "100000"
        assert (pod.path / "cpu.cfs_quota_us").read_text() == "50000"
        (pod.path / "cpu.stat").write_text("nr_periods 40\nnr_throttled 10\nthrottled_time 9\n")
        assert pod.throttling() == (40, 10)
        assert pod.procs == pod.path / "cgroup.procs"
    v2 = tmp_path / "v2" / "sys/fs/cgroup"
    v2.mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory\n")
    (v2 / "cgroup.subtree_control").write_text("memory\n")
    with sup.pod(1.25, tmp_path / "v2", remove_within_s=0) as pod:
        assert pod.version == 2
        assert (pod.path / "cpu.max").read_text() == "125000 100000"
        assert pod.throttling() == (0, 0)  # no cpu.stat yet
    assert (v2 / "cgroup.subtree_control").read_text() == "+cpu"
    with pytest.raises(RuntimeError, match="cannot be made"):
        sup.pod(1, tmp_path / "none").__enter__()


def test_pods_are_section_3_s_default_only_when_the_target_would_share_a_cpu(
    peers: ModuleType, sup: ModuleType, tmp_path: Path
) -> None:
    """auto: cores of their own when the machine has a CPU for the target, else pods when
    they can be made, else the shared cores with the reason; `pods` without support is None."""
    two = sup.Layout(frozenset({1}), frozenset({0}), frozenset({0, 1}))
    four = sup.Layout(frozenset({2}), frozenset({0}), frozenset({0, 1}))
    can = (1, tmp_path)
    assert peers.where_workers_run("auto", two, can) == ("pods", "")
    assert peers.where_workers_run("auto", four, can) == ("cores", "")
    assert peers.where_workers_run("auto", two, "no cgroups") == ("cores", "no cgroups")
    assert peers.where_workers_run("pods", four, can) == ("pods", "")
    assert peers.where_workers_run("pods", two, "no cgroups") == (None, "no cgroups")
    assert peers.where_workers_run("cores", two, can)[0] == "cores"


def test_in_pods_the_acceptance_is_the_pods_ratio_and_the_shared_one_a_reference(
    peers: ModuleType,
) -> None:
    """The workers line is judged on `ratio.workers` (the pods'); the shared cores' ratio is
    shown, labelled as the reference, and never judged."""
    figures = peers.Figures()
    for name, value in {
        "pod1.highest": 18_000.0,
        "pod2.highest": 34_000.0,
        "ratio.workers": 34_000 / 18_000,
        "workers1.highest": 38_000.0,
        "workers2.highest": 47_000.0,
        "ratio.workers_shared": 47_000 / 38_000,
    }.items():
        figures.put(name, value)
    line = "--workers 2 holds >= 1.7x the rate of --workers 1"
    assert dict(peers.verdicts([figures], ()))[line] == "PASS"
    rows = peers.table(peers.spans([figures]), (), 0.5)
    pod2 = next(r for r in rows if r.startswith("| --workers 2 in a pod of 1 CPU: highest"))
    assert pod2.endswith("| 1.89× |")  # noqa: RUF001
    shared = next(r for r in rows if "no quota (reference)" in r)
    assert shared.endswith("| 1.24× |")  # noqa: RUF001
    figures.put("ratio.workers", 1.2)
    assert dict(peers.verdicts([figures], ()))[line].startswith("FAIL")


@pytest.mark.skipif(
    isinstance(
        _load(
            "nimbus_bench_peers_support_probe", ROOT / "bench" / "_peers_support.py"
        ).pod_support(),
        str,
    ),
    reason="no writable cgroup cpu controller here",
)
def test_a_process_started_into_a_pod_runs_in_its_cgroup(sup: ModuleType) -> None:
    """`start(..., into=pod)` puts the child in the pod's cgroup before it runs its program."""
    import subprocess

    with sup.pod(0.5) as pod:
        child = sup.start(
            ["cat", "/proc/self/cgroup"],
            frozenset(os.sched_getaffinity(0)),
            stdout=subprocess.PIPE,
            into=pod,
        )
        out, _ = child.communicate(timeout=10)
        assert child.returncode == 0
        assert f"/{pod.path.name}" in out
        assert (
            int(
                (pod.path / ("cpu.cfs_quota_us" if pod.version == 1 else "cpu.max"))
                .read_text()
                .split()[0]
            )
            == 50_000
        )
    assert not pod.path.exists()
