"""Shared pieces of `bench/peers.py`: the target, process-group CPU and RSS, Locust, the CLI's
options, the rate search, ranges and the docs section.

Its place: bench support, not the package. Nothing here sends traffic anywhere but 127.0.0.1,
every wait is bounded, and every process it starts runs in its own session so that it (and
whatever it forks: nginx's worker, `run --workers`' worker processes) is stopped as a group by
the id of the process started here.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

NGINX = Path("/usr/sbin/nginx")
STATUS_PATH = "/peers-status"
LOCUST_VERSION = "2.47.0"
LOCUST_VENV = HERE / ".venv-locust"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location = {status} {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
}}
"""

AIOHTTP_SERVER = """\
import sys
from aiohttp import web

async def ok(request):
    return web.Response(text="ok")

app = web.Application()
app.router.add_route("*", "/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


# ---------------------------------------------------------------- the machine's CPUs


@dataclass(frozen=True, slots=True)
class Layout:
    """Which CPUs the target and the generators get."""

    server: frozenset[int]
    one_core: frozenset[int]
    two_cores: frozenset[int]

    @property
    def shared(self) -> bool:
        """Whether the two generator cores include the target's (a 2-core machine)."""
        return bool(self.server & self.two_cores)

    def describe(self) -> str:
        return (
            f"target on CPU {cpu_list(self.server)}; one-core generators on CPU "
            f"{cpu_list(self.one_core)}; two-core generators on CPUs {cpu_list(self.two_cores)}"
            + (" (shared with the target)" if self.shared else "")
        )


def cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def layout() -> Layout:
    """Target on its own CPU: the second on a 2-core machine, the third on a larger one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) == 1:
        only = frozenset(cpus)
        return Layout(only, only, only)
    two = frozenset(cpus[:2])
    server = frozenset({cpus[2]}) if len(cpus) >= 3 else frozenset({cpus[1]})
    return Layout(server, frozenset({cpus[0]}), two)


def machine() -> str:
    """CPU model, cores, Python and kernel, for the record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Linux {platform.release()}"
    )


# ---------------------------------------------------------------- the benches' scenario


def one_phase_scenario(rate: float, duration: float, name: str = "peers") -> str:
    """A one-phase open-model scenario: `rate R/s` of `GET /` for ``duration`` seconds, with
    room for every request in flight and connections kept for the whole run."""
    return f"""\
scenario "{name}" {{
  settings {{
    max_inflight 5000
    timeout 10s
    connection_max_age 60s
  }}
  request get = GET "/"
  phase "load" {duration:g}s {{
    rate {rate:g}/s
    send get
  }}
}}
"""


# ---------------------------------------------------------------- processes


@contextmanager
def busy_loops(count: int, cpus: frozenset[int], limit_s: float) -> Iterator[None]:
    """``count`` processes that keep a CPU busy, pinned to ``cpus``, each in its own session
    (so the scheduler shares ``cpus`` equally between them and the command measured beside
    them); each ends by itself after ``limit_s`` seconds, and all are stopped on the way out."""
    code = (
        f"import time\nend = time.monotonic() + {limit_s!r}\n"
        "while time.monotonic() < end:\n    pass\n"
    )
    loops = [start([sys.executable, "-c", code], cpus) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            stop(loop)


def _pinned(cpus: frozenset[int]) -> Callable[[], None]:
    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def start(
    argv: Sequence[str],
    cpus: frozenset[int],
    *,
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """Start a process pinned to ``cpus`` in a session of its own (its group id is its pid),
    in the repository's root: `python -m nimbus_scenarios` runs this tree's package."""
    return subprocess.Popen(
        list(argv),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=env,
        start_new_session=True,
        # preexec_fn is safe here: the reader threads only read pipes and take no locks a
        # forked child could need.
        preexec_fn=_pinned(cpus),  # noqa: PLW1509
    )


def stop(process: subprocess.Popen[str], timeout_s: float = 5.0) -> None:
    """Stop a process started by `start` and everything in its group: TERM, then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None and not group_pids(process.pid):
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + timeout_s
        while group_pids(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_pids(process.pid):
            return


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def group_cpu(pgid: int) -> float:
    """CPU seconds of a process group: each live member's own, plus its reaped children's."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[2]) == pgid:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / CLK_TCK


def group_rss_mb(pgid: int) -> float:
    """Resident memory of a process group's live members, in MB."""
    pages = 0
    for pid in group_pids(pgid):
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError):
            continue
    return pages * PAGE_SIZE / 1024 / 1024


class LineReader:
    """Reads a child's pipe in a thread; each line with the monotonic time it arrived."""

    def __init__(self, stream: object, on_line: Callable[[str, float], None] | None = None):
        self.lines: list[tuple[float, str]] = []
        self._on_line = on_line
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            now = time.monotonic()
            self.lines.append((now, line))
            if self._on_line is not None:
                self._on_line(line, now)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def text(self) -> str:
        return "".join(line for _, line in self.lines)


# ---------------------------------------------------------------- the target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Target:
    """The running server: its name, base URL, process group and request counter."""

    name: str
    url: str
    pgid: int
    counted: bool

    def requests(self) -> int | None:
        """The server's own count of requests so far (nginx's stub_status), if it has one."""
        if not self.counted:
            return None
        with urllib.request.urlopen(self.url.rstrip("/") + STATUS_PATH, timeout=5) as response:
            lines = response.read().decode().splitlines()
        return int(lines[2].split()[2])

    def cpu(self) -> float:
        return group_cpu(self.pgid)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What is read at each end of a measured window."""

    at: float
    cpu: float
    server_cpu: float
    server_requests: int | None


def snapshot(target: Target, pgid: int) -> Snapshot:
    return Snapshot(time.monotonic(), group_cpu(pgid), target.cpu(), target.requests())


@dataclass(frozen=True, slots=True)
class Window:
    """CPU of a generator and of the target, and the requests the target counted, between two
    snapshots."""

    seconds: float
    cpu_s: float
    server_cpu_s: float
    server_requests: int | None

    @staticmethod
    def between(first: Snapshot, last: Snapshot) -> Window:
        counted = None
        if first.server_requests is not None and last.server_requests is not None:
            # each read of the status page is itself a request: the second one is counted
            counted = last.server_requests - first.server_requests - 1
        return Window(
            last.at - first.at, last.cpu - first.cpu, last.server_cpu - first.server_cpu, counted
        )

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_cpu_share(self) -> float:
        return self.server_cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_rate(self) -> float | None:
        if self.server_requests is None or self.seconds <= 0:
            return None
        return self.server_requests / self.seconds


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """Return once 127.0.0.1:`port` accepts connections; RuntimeError if `process` exits first
    or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on 127.0.0.1:{port} within {timeout_s:g} s")


@contextmanager
def target_server(kind: str, cpus: frozenset[int]) -> Iterator[Target]:
    """nginx (one worker, with a request counter) or aiohttp.web, pinned to ``cpus``; stopped on
    the way out, whatever the way out is."""
    use_nginx = kind == "nginx" or (kind == "auto" and NGINX.exists())
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="nimbus-peers-"))
    if use_nginx:
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, port=port, status=STATUS_PATH))
        argv = [str(NGINX), "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
        name = "nginx (1 worker)"
    else:
        script = workdir / "server.py"
        script.write_text(AIOHTTP_SERVER)
        argv = [sys.executable, str(script), str(port)]
        name = "aiohttp.web (no request counter)"
    process = start(argv, cpus)
    try:
        wait_for_port(port, process)
        yield Target(name, f"http://127.0.0.1:{port}/", process.pid, use_nginx)
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- the CLI's options


@dataclass(frozen=True, slots=True)
class CliOptions:
    """What `nimbus-scenarios run --help` offers that the bench can vary."""

    transports: tuple[str, ...]
    default_transport: str | None
    loop_option: str | None
    loops: tuple[str, ...]
    workers: bool
    loop_env: str | None = None
    """The environment variable that picks the event loop, when the package reads one instead
    of (or as well as) an option."""
    uvloop: bool | None = None
    """Whether uvloop can be imported where the CLI runs (None: not asked)."""


def _choices(help_text: str, option: str) -> tuple[str, ...] | None:
    match = re.search(re.escape(option) + r"\s+\{([^}]*)\}", help_text)
    if match is None:
        return None
    return tuple(c.strip() for c in match.group(1).split(",") if c.strip())


def _option_help(help_text: str, option: str) -> str:
    """The help entry of ``option`` (from its line in the options list to the next option's),
    whitespace folded."""
    entry: list[str] = []
    for line in help_text.splitlines():
        stripped = line.strip()
        if entry and stripped.startswith("-"):
            break
        if entry or stripped.startswith(option):
            entry.append(stripped)
    return " ".join(entry)


def parse_run_help(help_text: str) -> CliOptions:
    """Read the options the bench can vary from the text of `run --help`."""
    transports = _choices(help_text, "--transport") or ()
    default = re.search(r"\(default ([\w.-]+)", _option_help(help_text, "--transport"))
    loop_option: str | None = None
    loops: tuple[str, ...] = ()
    for option in ("--loop", "--event-loop"):
        found = _choices(help_text, option)
        if found is not None:
            loop_option, loops = option, found
            break
    workers = re.search(r"--workers\b", help_text) is not None
    return CliOptions(
        transports, None if default is None else default.group(1), loop_option, loops, workers
    )


def cli_command() -> list[str]:
    return [sys.executable, "-m", "nimbus_scenarios"]


_LOOP_PROBE = """
import importlib.util, json
found = {"uvloop": importlib.util.find_spec("uvloop") is not None}
try:
    from nimbus_scenarios.engine.loop import EVENT_LOOP_ENV, LoopChoice
except ImportError:
    pass
else:
    found["env"] = EVENT_LOOP_ENV
    found["choices"] = [choice.value for choice in LoopChoice]
print(json.dumps(found))
"""


def read_cli_options() -> CliOptions:
    """The options of the CLI the bench will run, and how it picks its event loop (an option,
    or the engine's environment variable), asked of the same interpreter and environment."""
    done = subprocess.run(
        [*cli_command(), "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=ROOT,
    )
    options = parse_run_help(done.stdout)
    probe = subprocess.run(
        [sys.executable, "-c", _LOOP_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    found = json.loads(probe.stdout)
    env = found.get("env")
    loops = options.loops
    if options.loop_option is None and env is not None:
        loops = tuple(found.get("choices", ()))
    return replace(options, loop_env=env, loops=loops, uvloop=bool(found["uvloop"]))


# ---------------------------------------------------------------- Locust

LOCUSTFILE = """
import os

from locust import FastHttpUser, constant_throughput, task

PER_USER = float(os.environ.get("PER_USER", "0"))


class Bench(FastHttpUser):
    if PER_USER > 0:
        wait_time = constant_throughput(PER_USER)

    @task
    def get(self):
        self.client.get("/")
"""


def ensure_locust() -> Path | None:
    """Locust in bench/.venv-locust (installed on first use, pinned version); None if it fails."""
    binary = LOCUST_VENV / "bin" / "locust"
    if binary.exists():
        return binary
    print(f"installing locust=={LOCUST_VERSION} into {LOCUST_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(LOCUST_VENV)], check=True, timeout=300)
    pip = [str(LOCUST_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run(
        [*pip, f"locust=={LOCUST_VERSION}"],
        check=False,
        timeout=900,
    )
    return binary if done.returncode == 0 and binary.exists() else None


# ---------------------------------------------------------------- the rate search


@dataclass(frozen=True, slots=True)
class Search:
    """The outcome of `search_highest`: the highest rate held (0 when none), every trial in
    order, and why it stopped."""

    best: float
    trials: tuple[tuple[float, bool], ...]
    stopped: str


def search_highest(
    held: Callable[[float], bool],
    *,
    start: float,
    step: float,
    resolution: float,
    max_trials: int,
    budget_s: float,
    trial_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Search:
    """The highest rate ``held`` says is held: walk from ``start`` by ``step`` (up while held,
    down while not) until the answer changes, then bisect to ``resolution``. At most
    ``max_trials`` trials, and none that would end past ``budget_s`` (a trial takes about
    ``trial_s``)."""
    began = clock()
    trials: list[tuple[float, bool]] = []
    lo = 0.0  # highest held so far
    hi: float | None = None  # lowest not held so far

    def budget_left() -> str | None:
        if len(trials) >= max_trials:
            return f"trial limit ({max_trials})"
        if clock() - began + trial_s > budget_s:
            return f"time budget ({budget_s:g} s)"
        return None

    def attempt(rate: float) -> bool:
        ok = held(rate)
        trials.append((rate, ok))
        return ok

    rate = max(resolution, start)
    while True:  # the walk; bounded by the budget and the trial limit
        reason = budget_left()
        if reason is not None:
            return Search(lo, tuple(trials), reason)
        if attempt(rate):
            lo = rate
            if hi is not None:
                break
            rate += step
        else:
            hi = rate
            if lo > 0 or rate <= resolution:
                break
            rate = max(resolution, rate - step)
            if rate >= hi:
                break
    while hi is not None and hi - lo > resolution:  # the bisection
        reason = budget_left()
        if reason is not None:
            return Search(lo, tuple(trials), reason)
        mid = round((lo + hi) / 2 / resolution) * resolution
        if mid <= lo or mid >= hi:
            break
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    return Search(lo, tuple(trials), "resolved")


def first_guess(rate: float, cpu_share: float | None, step: float) -> float:
    """Where to start the search: 85% of what the CPU share at ``rate`` extrapolates to one
    full core, rounded down to ``step``."""
    if not cpu_share or cpu_share <= 0:
        return rate + step
    return max(step, (0.85 * rate / cpu_share) // step * step)


# ---------------------------------------------------------------- ranges over repeats


@dataclass(frozen=True, slots=True)
class Span:
    """The range of a figure over repeats (values in run order)."""

    values: tuple[float, ...] = field(default_factory=tuple)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def show(self, fmt: Callable[[float], str]) -> str:
        if not self.values:
            return "-"
        low, high = fmt(self.low), fmt(self.high)
        return low if low == high else f"{low}–{high}"  # noqa: RUF001 - as docs/ write ranges


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def pct0(x: float) -> str:
    return f"{100 * x:.0f}%"


def per_s(x: float) -> str:
    return f"{x:,.0f}/s"


def ms(x: float) -> str:
    return f"{x:.2f} ms"


def times(x: float) -> str:
    return f"{x:.2f}×"  # noqa: RUF001 - as docs/ write ratios


def cores(x: float) -> str:
    return f"{x:.2f} cores"


def mb(x: float) -> str:
    return f"{x:.1f} MB"


def secs(x: float) -> str:
    return f"{x:.1f} s"


# ---------------------------------------------------------------- docs/performance.md

BEGIN = "<!-- peers:begin -->"
END = "<!-- peers:end -->"


def replace_section(document: str, section: str, heading: str) -> str:
    """``document`` with the text between the peers markers replaced by ``section``; the
    markers (under ``heading``) are appended when the document has none."""
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    begin, end = document.find(BEGIN), document.find(END)
    if begin == -1 and end == -1:
        return document.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
    if begin == -1 or end < begin:
        raise ValueError(f"the document has {END} without a {BEGIN} before it")
    return document[:begin] + block + document[end + len(END) :]


def json_line(text: str) -> dict[str, object] | None:
    """The JSON object on a line of a child's output, if the line is one."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
