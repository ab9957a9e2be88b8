"""The results document on disk: versioned JSON, written atomically, read back strictly.

`to_json`/`from_json` turn a `RunResults` into text and back through `results.codec`;
`write_results` writes through a temp file and a rename; `load_results` reads a file (at most
`MAX_RESULTS_BYTES` and `MAX_RESULTS_VALUES`, so that reading it stays within about 1 GB) and
refuses anything that is not a results document of this schema version, naming the JSON path of
the first wrong field (the `scaling` section within the bounds of `results.scaling_section`).
Field names listed in `REQUIRED_FIELDS` are a contract with other tools.

Schema history: version 1 (nimbus-scenarios 0.1) had no embedded plan and no per-request
counts; it is refused with a message saying so, since reading it would mean compiling its
scenario source again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from nimbus_scenarios.engine.records import SecondRecord
from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.language.vocabulary import MAX_DURATION_S, MAX_SCENARIO_NAME
from nimbus_scenarios.plan.model import ExpectationPlan, Plan, Text
from nimbus_scenarios.results.codec import DecodeError, JsonValue, decode, encode
from nimbus_scenarios.results.model import Judgement, RunResults, Verdict
from nimbus_scenarios.results.scaling_section import check_scaling
from nimbus_scenarios.secrets import MASK

__all__ = [
    "EXPECTATION_FIELDS",
    "MAX_RESULTS_BYTES",
    "MAX_RESULTS_VALUES",
    "MAX_SECOND",
    "PHASE_FIELDS",
    "REQUIRED_FIELDS",
    "SCHEMA_VERSION",
    "default_results_path",
    "document_text",
    "from_json",
    "load_results",
    "read_document_text",
    "safe_file_name",
    "to_json",
    "to_json_data",
    "write_atomic",
    "write_results",
]

SCHEMA_VERSION: Final = 2

MAX_RESULTS_BYTES: Final = 128 * 1024 * 1024
"""A results file larger than this is refused before it is parsed.

A run's document grows by about 830 bytes per second of run (its per-second records, kept under
`seconds` and again under `stats`), so this holds about 45 hours of run; `report` on such a
document peaks near 460 MB. Each request template adds its own per-second records under
`stats.requests` for the seconds it was busy: about 460 bytes per template-second, so a run of
three templates busy throughout holds about 17 hours."""

MAX_RESULTS_VALUES: Final = 10_000_000
"""A results file holding more JSON values than this is refused before it is parsed.

Values are counted by their structural bytes (`{`, `[`, `,`, `:`, also inside strings, so the
count is an upper bound) in a fraction of a second. Memory, not size, is what parsing costs: a
file of tiny values (`[{},{},...]`) takes over 20 times its size once parsed. With this bound no
file under the size limit takes more than about 1 GB to read (measured: `report` on 128 MiB of
the costliest values); a run's own document, about 15 bytes per value, meets the size limit
first."""


REQUIRED_FIELDS = (
    "schema_version",
    "run_id",
    "scenario",
    "verdict",
    "exit_code",
    "trace_id",
    "phases",
    "expectations",
    "replicas",
)
PHASE_FIELDS = (
    "name",
    "start_s",
    "end_s",
    "target_rate",
    "achieved_rate",
    "scheduled",
    "sent",
    "dropped",
    "succeeded",
    "failed",
    "latency_ms",
)
EXPECTATION_FIELDS = ("text", "scope", "verdict", "observed", "met_at_s")


# ------------------------------------------------------------------------------ writing


def _text(value: Text) -> JsonValue:
    """A plan text with a literal secret (a credential header's value) masked."""
    shown = MASK if value.secret and value.env is None and value.value else value.value
    return {"value": shown, "env": value.env, "secret": value.secret}


def _expectation_index(plan: Plan) -> dict[int, int]:
    return {id(e): i for i, e in enumerate(plan.all_expectations)}


def _judgement(judgement: Judgement, plan: Plan, index: Mapping[int, int]) -> JsonValue:
    e = judgement.expectation
    position = index.get(id(e))
    if position is None:
        position = plan.all_expectations.index(e)
    window = judgement.window_s
    return {
        "id": position,
        "text": e.text,
        "scope": e.scope,
        "kind": str(e.kind),
        "verdict": str(judgement.verdict),
        "observed": judgement.observed,
        "expected": f"{e.comparator} {e.value:g}",
        "met_at_s": judgement.met_at_s,
        "window": None if e.window is None else str(e.window),
        "window_s": None if window is None else [window[0], window[1]],
        "detail": judgement.detail,
    }


def to_json_data(results: RunResults) -> dict[str, JsonValue]:
    """The document as JSON data, `schema_version` first."""
    plan = results.plan
    index = _expectation_index(plan)
    data = encode(
        results,
        {Text: _text, Judgement: lambda j: _judgement(j, plan, index)},
    )
    assert isinstance(data, dict)
    return {"schema_version": SCHEMA_VERSION, **data}


def to_json(results: RunResults, *, indent: int | None = 2) -> str:
    """The document as JSON text (with a final newline when indented)."""
    text = json.dumps(to_json_data(results), indent=indent, allow_nan=False)
    return text + "\n" if indent is not None else text


def default_results_path(results: RunResults) -> Path:
    """`results/<scenario>-<run id>.json`, always a file directly in `results/`.

    Validation allows only safe scenario names; this is the second guard, for a name that came
    another way: each part is reduced to a safe file name (`safe_file_name`)."""
    scenario = safe_file_name(results.scenario, MAX_SCENARIO_NAME)
    return Path("results") / f"{scenario}-{safe_file_name(results.run_id, 64)}.json"


def safe_file_name(text: str, limit: int) -> str:
    """`text` as a piece of a file name: every character outside ASCII letters, digits, `-`,
    `_` and `.` replaced by `_`, no leading `.`, at most `limit` characters, never empty."""
    safe = _UNSAFE.sub("_", text[:limit]).lstrip(".")
    return safe or "_"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def write_results(results: RunResults, path: Path) -> Path:
    """Write `results` to `path` atomically (a temp file in the same directory, then rename)."""
    return write_atomic(path, to_json(results))


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same directory and a rename, so a
    reader never sees half a file and a failed write leaves the old one in place.

    A path that exists and is not a regular file (`/dev/stdout`, a FIFO, a device such as
    `/dev/full`) is written to directly: renaming a temp file over it would replace the device
    node itself (as root, in /dev).
    """
    if path.exists() and not path.is_file() and not path.is_dir():
        with path.open("w", encoding="utf-8", errors="replace") as stream:
            stream.write(text)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            # mkstemp makes the file 0600; give it the mode open() would (0666 & ~umask).
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------ reading


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str) -> JsonValue:
    """JSON text to data; NaN and Infinity are refused, and so is nesting too deep to read."""
    try:
        data: JsonValue = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return data


def from_json_data(data: JsonValue, name: str = "results") -> RunResults:
    """A results document from JSON data; `ResultsError` names the first wrong field."""
    if not isinstance(data, dict):
        raise ResultsError(f"{name}: not a results file (not a JSON object)")
    version = data.get("schema_version")
    if version == 1:
        raise ResultsError(
            f"{name}: results schema version 1 (nimbus-scenarios 0.1) is not read by this "
            f"version, which reads version {SCHEMA_VERSION}: version 1 has no embedded plan. "
            "Run the scenario again, or report and merge it with nimbus-scenarios 0.1"
        )
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{name}: results schema version {version!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    missing = [field for field in REQUIRED_FIELDS if field not in data]
    if missing:
        raise ResultsError(f"{name}: missing fields: {', '.join(missing)}")
    body = {key: value for key, value in data.items() if key != "schema_version"}
    try:
        plan = decode(Plan, body.get("plan"), path="$.plan")
        expectations = plan.all_expectations
        results = decode(
            RunResults,
            body,
            hooks={
                Plan: lambda _data, _path: plan,
                Judgement: lambda item, path: _decode_judgement(item, path, expectations),
            },
        )
        _check_seconds(results.seconds, "$.seconds")
        _check_seconds(results.stats.seconds, "$.stats.seconds")
        for i, request in enumerate(results.stats.requests):
            _check_seconds(request.seconds, f"$.stats.requests[{i}].seconds")
        check_scaling(results.scaling, results.duration_s)
    except DecodeError as exc:
        raise ResultsError(f"{name}: not a valid results document: {exc}") from None
    return results


MAX_SECOND: Final = MAX_DURATION_S
"""The last second a document's per-second records may name: the engine's per-second series
ends a week after the run's start (`engine.series`), and merging or charting a document makes
room for every second up to the last one it names."""


def _check_seconds(seconds: tuple[SecondRecord, ...], path: str) -> None:
    """Per-second records name seconds from 0 to `MAX_SECOND`, each once, in order."""
    previous = -1
    for i, record in enumerate(seconds):
        if not previous < record.second <= MAX_SECOND:
            expected = (
                f"from 0 to {MAX_SECOND}"
                if not 0 <= record.second <= MAX_SECOND
                else f"after the previous record's ({previous})"
            )
            raise DecodeError(f"{path}[{i}].second", f"expected a second {expected}")
        previous = record.second


_JUDGEMENT_FIELDS = frozenset(
    {
        "id",
        "text",
        "scope",
        "kind",
        "verdict",
        "observed",
        "expected",
        "met_at_s",
        "window",
        "window_s",
        "detail",
    }
)


def _decode_judgement(
    data: JsonValue, path: str, expectations: tuple[ExpectationPlan, ...]
) -> Judgement:
    if not isinstance(data, dict):
        raise DecodeError(path, "expected an object")
    unknown = sorted(set(data) - _JUDGEMENT_FIELDS)
    if unknown:
        raise DecodeError(f"{path}.{unknown[0]}", "unknown field")
    position = decode(int, data.get("id"), path=f"{path}.id")
    if not 0 <= position < len(expectations):
        raise DecodeError(f"{path}.id", f"the plan has no expectation {position}")
    e: ExpectationPlan = expectations[position]
    for key, expected in (("text", e.text), ("scope", e.scope)):
        if data.get(key) != expected:
            raise DecodeError(f"{path}.{key}", f"does not match the plan's expectation {position}")
    return Judgement(
        expectation=e,
        verdict=decode(Verdict, data.get("verdict"), path=f"{path}.verdict"),
        observed=decode(float | None, data.get("observed"), path=f"{path}.observed"),  # type: ignore[arg-type]
        met_at_s=decode(float | None, data.get("met_at_s"), path=f"{path}.met_at_s"),  # type: ignore[arg-type]
        detail=decode(str, data.get("detail", ""), path=f"{path}.detail"),
    )


def from_json(text: str, name: str = "results") -> RunResults:
    """A results document from JSON text."""
    try:
        data = parse_json(text)
    except ValueError as exc:
        raise ResultsError(f"{name}: not a results file ({exc})") from None
    return from_json_data(data, name)


def read_document_text(path: Path) -> str:
    """A file's text, refused (`ResultsError`) if it cannot be read, is larger than
    `MAX_RESULTS_BYTES`, holds more than `MAX_RESULTS_VALUES` JSON values, or is not UTF-8."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_RESULTS_BYTES + 1)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return document_text(raw, str(path))


def document_text(raw: bytes, name: str) -> str:
    """`raw` as text, within the size and value limits a results document is read under."""
    if len(raw) > MAX_RESULTS_BYTES:
        limit = MAX_RESULTS_BYTES // (1024 * 1024)
        raise ResultsError(f"{name}: larger than the {limit} MiB a results file may be")
    values = sum(raw.count(byte) for byte in b"{[,:")
    if values > MAX_RESULTS_VALUES:
        raise ResultsError(
            f"{name}: holds more than the {MAX_RESULTS_VALUES:,} JSON values a results file may "
            f"hold ({values:,})"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{name}: not a results file ({exc})") from None


def load_results(path: Path) -> RunResults:
    """Read a results file, checking its schema version and every field."""
    return from_json(read_document_text(path), str(path))
