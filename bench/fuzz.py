"""Fuzzing of the scenario language: decoding, parser, params, validator, formatter, compiler.

    .venv/bin/python bench/fuzz.py [--runs 100000] [--max-time 1800] [--engine atheris|random]
                                   [--seed 1] [--crashes DIR]

Seeds are the valid corpus (tests/data/valid/*.scn) and the built-in scenarios (scenarios/*.scn).
Every input goes through `exercise`: bytes -> `decode` -> `check` (with and without a `--set`
override of a param) -> diagnostics rendered -> `fmt` -> `compile_source` -> the plan as JSON.

A crash is any exception other than `ScenarioError` (including `compile_source` accepting what
`check` refused), or a single input taking longer than 1 s. Crashes do not stop the run: each
is counted, grouped by exception and place, and its input saved under --crashes (default
bench/fuzz-crashes/). The run ends after --runs inputs or --max-time seconds, whichever comes
first, prints the inputs tried, the crashes found and the throughput, and exits 1 if anything
crashed.

Engines:

- `atheris` (default when installed; `pip install atheris==3.0.0`): libFuzzer's coverage-guided
  loop over instrumented `nimbus_scenarios.language`, `nimbus_scenarios.plan` and `lark`.
  Mutations alternate between libFuzzer's byte-level ones (with a dictionary of the grammar's
  words and typical values) and ours (`Mutator`: token-level edits that keep inputs near-valid).
- `random`: our mutations only, from a seeded `random.Random`, no coverage feedback. The test
  suite runs a short seeded run of it (tests/faults/test_fuzz_smoke.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SLOW_S = 1.0
"""One input taking longer than this is a crash (a denial of service)."""

# Values and fragments that reach the validator's corners: limits, zero, huge and malformed
# numbers, every literal kind, unknown names, escapes, unusual characters.
VALUES = [
    "0", "1", "3", "0.5", "1.5.5", "-1", "10000", "10001", "100000", "100001", "1000000",
    "99999999999999999999999999999999", "0.000000001", "65535", "65536",
    "0%", "12.5%", "100%", "101%", "0s", "0ms", "1ms", "5s", "1m30s", "168h", "169h",
    "1000h", "2h", "5sec", "0/s", "1/s", "20/s", "300/m", "1/h", "10000/s", "10001/s",
    "1000000000000/s", "0.0001/s", "10KB", "150MB", "500MB", "501MB", "1GB", "0MB",
    "2xx", "200", "404", "700", "0xx", "true", "false", '""', '"x"', '"/work"', '"/"',
    '"http://svc.example"', '"ftp://x"', '"http://[::1"', '"http://h:99999"', '"http://h/?q"',
    '"a\\"b"', '"bad \\q"', '"\\u0000"', '"Authorization"', '"Cookie"', '"x\\ny"',
    "$peak", "$nope", "$", 'env("X")', 'env("")', "env(X)", "work", "health", "a", "b",
    "#c", "-", "->", "@", "{", "}", "(", ")", ",", "=", "==", "!=", ">=", "<=", ">", "<",
]  # fmt: skip
CHARACTERS = [
    "\t", "\r", "\n", "\r\n", "\x00", "\x0b", "\u00a0", "\u2028", "\ufeff", "é", "\U0001f600",
    "\\", '"',
]  # fmt: skip
TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\$?[A-Za-z_][A-Za-z0-9_-]*|\d+(?:\.\d+)*[A-Za-z%/]*[a-z]*'
    r"|->|[=!<>]=|\s+|.",
    re.DOTALL,
)


def corpus_texts() -> list[str]:
    """The seed scenarios."""
    paths = sorted((ROOT / "tests" / "data" / "valid").glob("*.scn"))
    paths += sorted((ROOT / "scenarios").glob("*.scn"))
    return [p.read_text(encoding="utf-8") for p in paths]


def dictionary() -> list[str]:
    """The grammar's quoted words and punctuation, and `VALUES`."""
    grammar = (ROOT / "grammar" / "scenario.lark").read_text(encoding="utf-8")
    return sorted(set(re.findall(r'"([^"\s]+)"', grammar))) + VALUES


# ---------------------------------------------------------------- our mutations
class Mutator:
    """Token-level edits of scenario text, drawing from the corpus and the dictionary."""

    def __init__(self, corpus: Sequence[str], words: Sequence[str]) -> None:
        self.corpus = list(corpus)
        self.words = list(words)
        self.values = [w for w in self.words if w[:1].isdigit() or w[:1] in {'"', "$"}]
        self.keywords = [w for w in self.words if w.isidentifier()]
        self.operations: list[Callable[[list[str], random.Random], list[str]]] = [
            self.same_kind,
            self.same_kind,
            self.same_kind,
            self.replace,
            self.delete,
            self.insert,
            self.insert,
            self.duplicate,
            self.extreme_number,
            self.character,
            self.swap_lines,
            self.repeat_line,
            self.delete_line,
            self.splice,
            self.truncate,
            self.unbalance,
        ]

    def mutate(self, text: str, rng: random.Random) -> str:
        """`text` with one to four edits (mostly one)."""
        tokens = TOKEN.findall(text) or [""]
        for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
            tokens = rng.choice(self.operations)(tokens, rng) or [""]
        return "".join(tokens)

    @staticmethod
    def _solid(tokens: list[str], rng: random.Random) -> int:
        """The index of a random token that is not whitespace (or any token)."""
        solid = [i for i, t in enumerate(tokens) if t.strip()]
        return rng.choice(solid) if solid else rng.randrange(len(tokens))

    def same_kind(self, tokens: list[str], rng: random.Random) -> list[str]:
        """A value for a value, a keyword or name for a keyword or name: stays parseable."""
        index = self._solid(tokens, rng)
        token = tokens[index]
        if token[:1].isdigit() or token[:1] in {'"', "$"}:
            tokens[index] = rng.choice(self.values)
        elif token.isidentifier():
            tokens[index] = rng.choice(self.keywords)
        return tokens

    def replace(self, tokens: list[str], rng: random.Random) -> list[str]:
        tokens[self._solid(tokens, rng)] = rng.choice(self.words)
        return tokens

    def delete(self, tokens: list[str], rng: random.Random) -> list[str]:
        del tokens[self._solid(tokens, rng)]
        return tokens

    def insert(self, tokens: list[str], rng: random.Random) -> list[str]:
        tokens.insert(
            rng.randrange(len(tokens) + 1), rng.choice([" ", ""]) + rng.choice(self.words)
        )
        return tokens

    def duplicate(self, tokens: list[str], rng: random.Random) -> list[str]:
        index = self._solid(tokens, rng)
        tokens.insert(index, tokens[index] + " ")
        return tokens

    def extreme_number(self, tokens: list[str], rng: random.Random) -> list[str]:
        numbers = [i for i, t in enumerate(tokens) if t[:1].isdigit()]
        if numbers:
            index = rng.choice(numbers)
            digits = re.match(r"[\d.]+", tokens[index])
            unit = tokens[index][digits.end() :] if digits else ""
            number = rng.choice(["0", "1", "0.001", "10001", "99999999999", "4" * 40, "1.2.3"])
            tokens[index] = number + (unit if rng.random() < 0.8 else rng.choice(self.words))
        return tokens

    def character(self, tokens: list[str], rng: random.Random) -> list[str]:
        index = rng.randrange(len(tokens))
        where = rng.randrange(len(tokens[index]) + 1)
        tokens[index] = tokens[index][:where] + rng.choice(CHARACTERS) + tokens[index][where:]
        return tokens

    @staticmethod
    def _lines(tokens: list[str]) -> list[str]:
        return "".join(tokens).split("\n")

    def _from_lines(self, lines: list[str]) -> list[str]:
        return TOKEN.findall("\n".join(lines))

    def swap_lines(self, tokens: list[str], rng: random.Random) -> list[str]:
        lines = self._lines(tokens)
        a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[a], lines[b] = lines[b], lines[a]
        return self._from_lines(lines)

    def repeat_line(self, tokens: list[str], rng: random.Random) -> list[str]:
        lines = self._lines(tokens)
        index = rng.randrange(len(lines))
        lines[index:index] = [lines[index]] * rng.choice([1, 2, 5, 50])
        return self._from_lines(lines)

    def delete_line(self, tokens: list[str], rng: random.Random) -> list[str]:
        lines = self._lines(tokens)
        del lines[rng.randrange(len(lines))]
        return self._from_lines(lines)

    def splice(self, tokens: list[str], rng: random.Random) -> list[str]:
        lines = self._lines(tokens)
        donor = rng.choice(self.corpus).split("\n")
        start = rng.randrange(len(donor))
        piece = donor[start : start + rng.randint(1, 8)]
        at = rng.randrange(len(lines) + 1)
        lines[at:at] = piece
        return self._from_lines(lines)

    def truncate(self, tokens: list[str], rng: random.Random) -> list[str]:
        return tokens[: rng.randrange(len(tokens) + 1)]

    def unbalance(self, tokens: list[str], rng: random.Random) -> list[str]:
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(["{", "}", "{\n", "\n}", '"']))
        return tokens


# ---------------------------------------------------------------- the oracle
@dataclass
class Report:
    """What a fuzzing run found."""

    tried: int = 0
    crashes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, bytes] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def crash_count(self) -> int:
        """Crashing inputs (slow ones included)."""
        return sum(self.crashes.values())

    def summary(self) -> str:
        """A few lines for the console."""
        elapsed = time.monotonic() - self.started
        lines = [
            (
                f"inputs tried: {self.tried:,} in {elapsed:.0f}s "
                f"({self.tried / elapsed if elapsed else 0:.0f}/s)"
            ),
            "outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items())),
            f"slowest input: {self.slowest_s * 1000:.0f} ms",
            f"crashes: {self.crash_count}",
        ]
        lines += [f"  {count} x {kind}" for kind, count in self.crashes.most_common()]
        return "\n".join(lines)


class Oracle:
    """Runs inputs through the language and records crashes (imports the language lazily, so
    the atheris engine can instrument it first)."""

    def __init__(self, crash_dir: Path | None) -> None:
        from nimbus_scenarios.language.errors import ScenarioError, render_all
        from nimbus_scenarios.language.fmt import format_scenario
        from nimbus_scenarios.language.syntax import decode
        from nimbus_scenarios.pipeline import check, compile_source
        from nimbus_scenarios.plan.render import plan_json

        self.check, self.compile_source = check, compile_source
        self.scenario_error, self.render_all = ScenarioError, render_all
        self.format_scenario, self.decode, self.plan_json = format_scenario, decode, plan_json
        self.crash_dir = crash_dir
        self.report = Report()

    def exercise(self, data: bytes) -> str:
        """One input through every stage; returns how far it got. Raises on a crash."""
        try:
            source = self.decode("fuzz.scn", data)
        except self.scenario_error:
            return "refused: not text"
        try:
            checked = self.check(source)
        except self.scenario_error:
            return "refused: syntax"
        outcome = self._through(source, checked, {})
        if checked.scenario.params:  # once more, with a `--set` override of the first param
            override = {
                checked.scenario.params[0].name.text: VALUES[zlib.crc32(data) % len(VALUES)]
            }
            with contextlib.suppress(self.scenario_error):
                self._through(source, self.check(source, override), override)
        return outcome

    def _through(self, source: Any, checked: Any, overrides: dict[str, str]) -> str:
        """Render, format and compile a checked scenario; compiling must agree with `check`."""
        self.render_all(source, checked.diagnostics)
        self.format_scenario(checked.scenario, source)
        try:
            plan = self.compile_source(source, overrides)
        except self.scenario_error:
            if not checked.errors:
                raise AssertionError("compile_source refused what check accepted") from None
            return "refused: validation"
        if checked.errors:
            raise AssertionError("compile_source accepted what check found errors in")
        self.plan_json(plan)
        return "compiled"

    def run(self, data: bytes) -> None:
        """Exercise one input, recording a crash instead of raising."""
        self.report.tried += 1
        started = time.perf_counter()
        try:
            outcome = self.exercise(data)
        except Exception as exc:  # any exception but ScenarioError is a crash
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            self._crash(f"{type(exc).__name__} at {where}: {str(exc)[:80]}", data)
            return
        elapsed = time.perf_counter() - started
        self.report.slowest_s = max(self.report.slowest_s, elapsed)
        self.report.outcomes[outcome] += 1
        if elapsed > SLOW_S:
            self._crash(f"slow: over {SLOW_S:g}s ({outcome})", data)

    def _crash(self, kind: str, data: bytes) -> None:
        self.report.crashes[kind] += 1
        if kind not in self.report.examples:
            self.report.examples[kind] = data
            if self.crash_dir is not None:
                self.crash_dir.mkdir(parents=True, exist_ok=True)
                name = f"crash-{hashlib.sha1(data).hexdigest()[:12]}.scn"
                (self.crash_dir / name).write_bytes(data)
            print(f"CRASH {kind}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- engines
def fuzz_random(runs: int, max_time_s: float, seed: int, crash_dir: Path | None = None) -> Report:
    """`runs` mutated inputs (fewer if `max_time_s` runs out first), seeded, no coverage."""
    oracle = Oracle(crash_dir)
    corpus = corpus_texts()
    mutator = Mutator(corpus, dictionary())
    rng = random.Random(seed)
    deadline = time.monotonic() + max_time_s
    for text in corpus:
        oracle.run(text.encode("utf-8"))
    while oracle.report.tried < runs and time.monotonic() < deadline:
        text = mutator.mutate(rng.choice(corpus), rng)
        if rng.random() < 0.3:  # stack a second round of edits now and then
            text = mutator.mutate(text, rng)
        oracle.run(text.encode("utf-8", "surrogatepass"))
    return oracle.report


def fuzz_atheris(runs: int, max_time_s: float, seed: int, crash_dir: Path) -> None:
    """libFuzzer's coverage-guided loop; prints the report and exits when done."""
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(
        include=["nimbus_scenarios.language", "nimbus_scenarios.plan", "lark"]
    ):
        oracle = Oracle(crash_dir)
    corpus = corpus_texts()
    mutator = Mutator(corpus, dictionary())
    deadline = time.monotonic() + max_time_s
    work = Path(tempfile.mkdtemp(prefix="nimbus-fuzz-"))
    seeds = work / "corpus"
    seeds.mkdir()
    for i, text in enumerate(corpus):
        (seeds / f"seed-{i}.scn").write_text(text, encoding="utf-8")
    words = work / "scenario.dict"
    words.write_text(
        "".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for w in dictionary()),
        encoding="utf-8",
    )

    def finish() -> None:
        print(oracle.report.summary(), flush=True)
        shutil.rmtree(work, ignore_errors=True)
        sys.stdout.flush()
        os._exit(1 if oracle.report.crash_count else 0)

    def test_one_input(data: bytes) -> None:
        oracle.run(data)
        if oracle.report.tried >= runs or time.monotonic() >= deadline:
            finish()

    def custom_mutator(data: bytes, max_size: int, mutation_seed: int) -> bytes:
        rng = random.Random(mutation_seed)
        if rng.random() < 0.5:
            mutated: bytes = atheris.Mutate(data, max_size)
            return mutated
        text = mutator.mutate(data.decode("utf-8", "replace"), rng)
        return text.encode("utf-8", "surrogatepass")[:max_size]

    argv = [
        sys.argv[0],
        str(seeds),
        f"-dict={words}",
        f"-seed={seed}",
        f"-runs={runs * 2}",  # our own count ends the run; this is a backstop
        f"-max_total_time={int(max_time_s) + 60}",
        "-max_len=16384",
        "-timeout=30",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
    finish()  # libFuzzer stopped on its own backstop


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, fuzz, report."""
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--runs", type=int, default=100_000, help="inputs to try (100000)")
    options.add_argument(
        "--max-time", type=float, default=1800.0, help="stop after this many seconds (1800)"
    )
    options.add_argument(
        "--engine",
        choices=("atheris", "random"),
        default="atheris" if _module_available("atheris") else "random",
    )
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--crashes", type=Path, default=ROOT / "bench" / "fuzz-crashes")
    args = options.parse_args(argv)
    print(f"engine {args.engine}, up to {args.runs:,} inputs or {args.max_time:g}s", flush=True)
    if args.engine == "atheris":
        fuzz_atheris(args.runs, args.max_time, args.seed, args.crashes)
        return 0  # not reached: fuzz_atheris exits
    report = fuzz_random(args.runs, args.max_time, args.seed, args.crashes)
    print(report.summary())
    return 1 if report.crash_count else 0


if __name__ == "__main__":
    raise SystemExit(main())
