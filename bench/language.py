"""Time of `validate` and `plan --json` against file size, for each hostile shape of issue 17.

Its place: a bench script (not a test) for the `language` and `plan` stages. Each shape is
generated at several sizes (``--sizes``: fractions of its largest size, which is the most the
language's limits allow or the size the issue reported), written to a temporary file, and run
through the command line in a fresh process, as a user or a CI job would run it (so each time
includes the interpreter's start, shown on its own as ``startup``). Each time is the median of
``--repeat`` runs; a run longer than ``--timeout`` is stopped and reported as ``timeout``.

For each shape it prints a row per size (bytes, items, seconds) and the slope: seconds per MB
and microseconds per item over the start-up time. Growth is judged on the stages' own time,
measured in this process without the interpreter's start (columns `in-proc`: reading, parsing
and validating the file; then that and compiling the plan and rendering `plan --json`, best of
``--repeat``): the exponent between the smallest and the largest size is 1 for linear, 2 for
quadratic, and "linear" when at most 1.2.

    .venv/bin/python bench/language.py [--repeat 3] [--sizes 0.25 0.5 1] [--timeout 10]
                                       [--shapes expects phases ...] [--check]

``--check`` exits 1 when any run takes more than 2 s, times out or exits with an unexpected
code (every shape is valid except ``error_last``, which must exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nimbus_scenarios.language.syntax.source import MAX_FILE_BYTES
from nimbus_scenarios.language.vocabulary import MAX_PHASES

BUDGET_S = 2.0
"""Issue 17's acceptance: every hostile case plans in under 2 s."""

_HEAD = 'scenario "h" {\n  target "http://127.0.0.1:9"\n'


@dataclass(frozen=True)
class Shape:
    """One hostile shape: `text(n)` is a scenario with n items; `largest` the n at size 1."""

    name: str
    items: str
    largest: int
    text: Callable[[int], str]
    exit_code: int = 0


def _spikes(n: int) -> str:
    spikes = "".join(f"    spike 2/s for 1s at {2 * i}s\n" for i in range(n))
    return (
        f'{_HEAD}  request a = GET "/"\n  phase "p" {2 * n + 10}s {{\n    rate 1/s\n'
        f"    send a\n{spikes}  }}\n}}\n"
    )


def _steps_spikes(n: int) -> str:
    spikes = "".join(f"    spike 2/s for 1s at {2 * i}s\n" for i in range(n))
    return (
        f'{_HEAD}  request a = GET "/"\n  phase "p" 2000s {{\n'
        f"    steps 1/s -> 100/s in 10000\n    send a\n{spikes}  }}\n}}\n"
    )


def _cycle(n: int) -> str:
    """`n` seconds (less a ten-thousandth) at 10,000/s over a two-template cycle of 10^8."""
    return (
        f'{_HEAD}  request a = GET "/"\n  request b = GET "/"\n'
        f'  phase "p" {n - 1}.9999s {{\n    rate 10000/s\n'
        "    send 33.333331% a, 66.666669% b\n  }\n}\n"
    )


def _weights3(n: int) -> str:
    """Three near-equal weights that must be counted exactly, over `n` seconds at 10,000/s."""
    return (
        f'{_HEAD}  request a = GET "/"\n  request b = GET "/"\n  request c = GET "/"\n'
        f'  phase "p" {n}s {{\n    rate 10000/s\n'
        "    send 33.3333333% a, 33.3333333% b, 33.3333334% c\n  }\n}\n"
    )


def _mix(n: int) -> str:
    """One `send` of `n` templates with uneven weights (adding up to 100%), at 10,000/s for
    an hour."""
    small = [(1, 2, 4)[i % 3] for i in range(1, n)]  # thousandths of a percent
    first = 100_000 - sum(small)
    weights = [f"{first // 1000}.{first % 1000:03d}% t0"]
    weights += [f"0.{w:03d}% t{i}" for i, w in enumerate(small, start=1)]
    requests = "".join(f'  request t{i} = GET "/"\n' for i in range(n))
    return (
        f'{_HEAD}{requests}  phase "p" 1h {{\n    rate 10000/s\n'
        f"    send {', '.join(weights)}\n  }}\n}}\n"
    )


def _bad_weights(n: int) -> str:
    """As `_mix`, but every weight is a bare number: `n` errors on one long line."""
    requests = "".join(f'  request t{i} = GET "/"\n' for i in range(n))
    weights = ", ".join(f"{1 + i % 7} t{i}" for i in range(n))
    return f'{_HEAD}{requests}  phase "p" 1h {{\n    rate 10000/s\n    send {weights}\n  }}\n}}\n'


def _phases(n: int) -> str:
    phases = "".join(f'  phase "p{i}" 1s {{\n    rate 1/s\n    send a\n  }}\n' for i in range(n))
    return f'{_HEAD}  request a = GET "/"\n{phases}}}\n'


def _expects(n: int) -> str:
    return (
        f'{_HEAD}  request a = GET "/"\n  phase "p" 10s {{\n    rate 1/s\n    send a\n  }}\n'
        + "  expect p95 < 2s\n" * n
        + "}\n"
    )


def _error_last(n: int) -> str:
    """A file of `n` expectations whose one error (a syntax error) is on its last line."""
    return _expects(n).removesuffix("}\n") + "  expect p95 < 2s oops\n}\n"


def _filled(text: Callable[[int], str]) -> int:
    """The largest n whose text fits in `MAX_FILE_BYTES`."""
    low, high = 1, 1
    while len(text(high).encode()) <= MAX_FILE_BYTES:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if len(text(middle).encode()) <= MAX_FILE_BYTES:
            low = middle
        else:
            high = middle
    return low


SHAPES = (
    Shape("spikes", "spikes", 3_000, _spikes),
    Shape("steps_spikes", "spikes", 1_000, _steps_spikes),
    Shape("cycle", "seconds", 10_000, _cycle),
    Shape("weights3", "seconds", 10_000, _weights3),
    Shape("mix", "templates", 0, _mix),
    Shape("bad_weights", "errors", 0, _bad_weights, exit_code=2),
    Shape("phases", "phases", MAX_PHASES, _phases),
    Shape("expects", "expects", 0, _expects),
    Shape("error_last", "expects", 0, _error_last, exit_code=2),
)


@dataclass(frozen=True)
class Timing:
    seconds: float | None  # None: timed out
    ok: bool  # exited as expected


def _run(command: list[str], timeout: float, exit_code: int) -> Timing:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Timing(None, False)
    elapsed = time.perf_counter() - started
    if done.returncode != exit_code:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        print(f"    exit {done.returncode} (expected {exit_code}): {' '.join(last)}")
    return Timing(elapsed, done.returncode == exit_code)


def _median(command: list[str], repeat: int, timeout: float, exit_code: int) -> Timing:
    runs = []
    for _ in range(repeat):
        timing = _run(command, timeout, exit_code)
        if timing.seconds is None:
            return timing  # one timeout is enough to know
        runs.append(timing)
    return Timing(statistics.median(t.seconds or 0.0 for t in runs), all(t.ok for t in runs))


def _in_process(path: Path, repeat: int) -> tuple[float, float]:
    """Best-of-`repeat` seconds of the validate stages and of the plan stages, in this process."""
    from nimbus_scenarios.language import check
    from nimbus_scenarios.language.errors import ScenarioError
    from nimbus_scenarios.language.syntax import read_source
    from nimbus_scenarios.pipeline import plan_source
    from nimbus_scenarios.plan.render import plan_json

    validates, plans = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.suppress(ScenarioError):  # a syntax error: the file is refused
            check(read_source(path))
        validates.append(time.perf_counter() - started)
        started = time.perf_counter()
        with contextlib.suppress(ScenarioError):
            compiled = plan_source(read_source(path))
            plan_json(compiled.plan, compiled.warning_texts)
        plans.append(time.perf_counter() - started)
    return min(validates), min(plans)


def _growth(points: list[tuple[int, float]]) -> str:
    """The growth exponent of in-process times between the smallest and the largest size."""
    (i0, t0), (i1, t1) = points[0], points[-1]
    if t1 < 0.02 or i1 == i0:
        return f"{t1 * 1000:.1f} ms at the largest size: flat"
    exponent = math.log(t1 / t0) / math.log(i1 / i0)
    verdict = "linear" if exponent <= 1.2 else "NOT linear"
    return f"growth exponent {exponent:.2f} in-process ({verdict})"


def _cli(verb: list[str], path: Path) -> list[str]:
    return [sys.executable, "-m", "nimbus_scenarios", *verb, str(path)]


def _shown(timing: Timing) -> str:
    if timing.seconds is None:
        return "timeout"
    return f"{timing.seconds:.2f}" + ("" if timing.ok else "!")


def _slope(points: list[tuple[int, int, float | None]], startup: float) -> str:
    """Seconds per MB and microseconds per item of the CLI run at the largest size."""
    measured = [(b, i, t - startup) for b, i, t in points if t is not None]
    if len(measured) < 2:
        return "slope: too few points"
    (b0, _, _), (b1, i1, t1) = measured[0], measured[-1]
    if b0 == b1:
        return "a file of the same size at every step"
    per_mb = max(t1, 0.0) / (b1 / 1024 / 1024)
    per_item = max(t1, 0.0) / i1 * 1e6
    return f"{per_mb:.2f} s/MB, {per_item:.1f} us/item"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--shapes", nargs="+", choices=[s.name for s in SHAPES])
    parser.add_argument("--check", action="store_true", help=f"exit 1 past {BUDGET_S:.0f} s")
    args = parser.parse_args(argv)
    shapes = [s for s in SHAPES if not args.shapes or s.name in args.shapes]
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-language-") as folder:
        tiny = Path(folder) / "tiny.scn"
        tiny.write_text(_expects(1), encoding="utf-8")
        startup = _median(_cli(["validate"], tiny), args.repeat, args.timeout, 0).seconds or 0.0
        print(
            f"CLI runs, median of {args.repeat}; startup (validate of a 1-line file): "
            f"{startup:.2f} s; limit {MAX_FILE_BYTES:,} bytes"
        )
        for shape in shapes:
            largest = shape.largest or _filled(shape.text)
            print(f"\n{shape.name} ({shape.items})")
            print(
                f"  {'bytes':>9} {'items':>7} {'validate':>9} {'plan':>9}"
                f" {'in-proc validate':>17} {'in-proc plan':>13}"
            )
            validates: list[tuple[int, int, float | None]] = []
            plans: list[tuple[int, int, float | None]] = []
            inner_validates: list[tuple[int, float]] = []
            inner_plans: list[tuple[int, float]] = []
            for size in sorted(args.sizes):
                items = max(1, round(largest * size))
                path = Path(folder) / f"{shape.name}-{items}.scn"
                path.write_text(shape.text(items), encoding="utf-8")
                nbytes = path.stat().st_size
                validate = _median(
                    _cli(["validate"], path), args.repeat, args.timeout, shape.exit_code
                )
                plan = _median(
                    _cli(["plan", "--json"], path), args.repeat, args.timeout, shape.exit_code
                )
                inner_validate, inner_plan = _in_process(path, args.repeat)
                inner_validates.append((items, inner_validate))
                inner_plans.append((items, inner_plan))
                print(
                    f"  {nbytes:>9,} {items:>7,} {_shown(validate):>9} {_shown(plan):>9}"
                    f" {inner_validate:>17.3f} {inner_plan:>13.3f}"
                )
                validates.append((nbytes, items, validate.seconds))
                plans.append((nbytes, items, plan.seconds))
                for timing in (validate, plan):
                    too_slow = timing.seconds is None or timing.seconds > BUDGET_S
                    failed = failed or too_slow or not timing.ok
            print(f"  validate: {_slope(validates, startup)}; {_growth(inner_validates)}")
            print(f"  plan:     {_slope(plans, startup)}; {_growth(inner_plans)}")
    if args.check:
        print("\ncheck:", "FAILED (over 2 s, timed out or wrong exit)" if failed else "ok")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
