"""A short, seeded run of `bench/fuzz.py` inside the test suite (the long coverage-guided run is
`bench/fuzz.py` itself), and a check that its oracle really reports crashes."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261126


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    """bench/fuzz.py, imported from its path."""
    spec = importlib.util.spec_from_file_location("nimbus_bench_fuzz", ROOT / "bench" / "fuzz.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_seeded_fuzz_run_finds_no_crash(fuzz: ModuleType) -> None:
    """3,000 mutated scenarios (seeded) through parse, validate, fmt and compile: no crash."""
    started = time.monotonic()
    report = fuzz.fuzz_random(3000, 15.0, SEED)
    assert report.crash_count == 0, report.summary()
    assert report.tried >= 1000, report.summary()  # a loaded machine may cut the run short
    assert time.monotonic() - started < 20
    # the mutations reach every stage, not only the syntax errors
    assert report.outcomes["compiled"] > 0, report.summary()
    assert report.outcomes["refused: validation"] > 0, report.summary()
    assert report.outcomes["refused: syntax"] > 0, report.summary()


def test_the_oracle_reports_crashes_and_slow_inputs(
    fuzz: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception other than ScenarioError, and an input over 1 s, are both crashes, saved."""
    oracle = fuzz.Oracle(tmp_path)
    text = (ROOT / "scenarios" / "light.scn").read_bytes()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(oracle, "plan_json", broken)
    oracle.run(text)
    monkeypatch.undo()
    monkeypatch.setattr(fuzz, "SLOW_S", 0.0)
    oracle.run(text)
    kinds = list(oracle.report.crashes)
    assert len(kinds) == 2, kinds
    assert kinds[0].startswith("KeyError at test_fuzz_smoke.py")
    assert kinds[1].startswith("slow: over 0s")
    assert len(list(tmp_path.glob("crash-*.scn"))) == 1  # one input, saved once
