"""The consumer's HTTP surface: which routes it serves and what POST /process accepts.

Its place: the `local.consumer` package, beside `work` (what a request does), `metrics` (what
`/metrics` shows) and `server` (the aiohttp application that binds them). It follows the consumer
API in design/consumer-api.md: the same paths, the same query parameters with the same defaults
and ranges, and FastAPI-shaped 422 answers listing every bad parameter at once. Two fixture-only
views are added: a `local` section in `/process/status` and `GET /local/traceparents`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web

__all__ = [
    "CPU_INTENSITY",
    "DURATION_S",
    "MEMORY_SIZE_MB",
    "ConsumerHandlers",
    "IntRange",
    "JsonObject",
    "ProcessRequest",
    "ValidationIssue",
    "error_answer",
    "parse_process_query",
    "routes",
    "validation_answer",
]

JsonObject = dict[str, object]
"""A JSON answer body as aiohttp's `json_response` takes it (only ever built, never read)."""

_TRUE_WORDS: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "f", "no", "n", "off"})
# What pydantic accepts as an integer in a query string: optional sign and surrounding blanks.
_INTEGER: Final = re.compile(r"\s*[+-]?[0-9]+\s*")


# --------------------------------------------------------------------------------------------
# Routes


class ConsumerHandlers(Protocol):
    """The handlers `routes` binds; `server.ReferenceConsumer` provides them."""

    async def health(self, request: web.Request) -> web.StreamResponse:
        """GET /health."""
        ...

    async def ready(self, request: web.Request) -> web.StreamResponse:
        """GET /ready."""
        ...

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """GET /metrics."""
        ...

    async def process(self, request: web.Request) -> web.StreamResponse:
        """POST /process."""
        ...

    async def status(self, request: web.Request) -> web.StreamResponse:
        """GET /process/status."""
        ...

    async def cleanup(self, request: web.Request) -> web.StreamResponse:
        """DELETE /process/cleanup."""
        ...

    async def traceparents(self, request: web.Request) -> web.StreamResponse:
        """GET /local/traceparents (fixture only)."""
        ...


def routes(handlers: ConsumerHandlers) -> list[web.RouteDef]:
    """The consumer's route table, bound to `handlers`."""
    return [
        web.get("/health", handlers.health),
        web.get("/ready", handlers.ready),
        web.get("/metrics", handlers.metrics),
        web.post("/process", handlers.process),
        web.get("/process/status", handlers.status),
        web.delete("/process/cleanup", handlers.cleanup),
        web.get("/local/traceparents", handlers.traceparents),
    ]


def error_answer(exc: web.HTTPException) -> web.Response:
    """An aiohttp HTTP error (404, 405, ...) as FastAPI answers it: `{"detail": reason}`."""
    headers = {key: value for key, value in exc.headers.items() if key.lower() == "allow"}
    return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)


def validation_answer(issues: tuple[ValidationIssue, ...]) -> web.Response:
    """The 422 answer listing every bad parameter."""
    return web.json_response({"detail": [issue.to_json() for issue in issues]}, status=422)


# --------------------------------------------------------------------------------------------
# Query parameters of POST /process


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer query parameter of POST /process: its name, default and inclusive range."""

    name: str
    default: int
    low: int
    high: int

    def describe(self) -> str:
        """The range in words, for error messages."""
        return f"{self.name} must be an integer from {self.low} to {self.high}"


CPU_INTENSITY: Final = IntRange("cpu_intensity", 5, 1, 10)
MEMORY_SIZE_MB: Final = IntRange("memory_size", 50, 10, 500)
DURATION_S: Final = IntRange("duration", 10, 1, 60)


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One FastAPI-shaped 422 detail entry: which parameter, what is wrong, what is allowed."""

    parameter: str
    msg: str
    type: str
    input: str
    ctx: Mapping[str, int] | None = None

    def to_json(self) -> JsonObject:
        """The entry as FastAPI renders it in `{"detail": [...]}`."""
        body: JsonObject = {
            "type": self.type,
            "loc": ["query", self.parameter],
            "msg": self.msg,
            "input": self.input,
        }
        if self.ctx is not None:
            body["ctx"] = dict(self.ctx)
        return body


@dataclass(frozen=True, slots=True)
class ProcessRequest:
    """A validated POST /process request."""

    cpu_intensity: int = CPU_INTENSITY.default
    memory_size: int = MEMORY_SIZE_MB.default
    duration: int = DURATION_S.default
    async_mode: bool = False
    immediate_cleanup: bool = True

    @property
    def mode(self) -> str:
        """`async` or `sync`."""
        return "async" if self.async_mode else "sync"

    @property
    def cleanup_mode(self) -> str:
        """`immediate` (freed after the hold) or `temporary` (kept until /process/cleanup)."""
        return "immediate" if self.immediate_cleanup else "temporary"


def _parse_int(query: Mapping[str, str], spec: IntRange) -> int | ValidationIssue:
    raw = query.get(spec.name)
    if raw is None:
        return spec.default
    ctx = {"ge": spec.low, "le": spec.high}
    if _INTEGER.fullmatch(raw) is None:
        msg = (
            "Input should be a valid integer, unable to parse string as an integer; "
            + spec.describe()
        )
        return ValidationIssue(spec.name, msg, "int_parsing", raw, ctx)
    value = int(raw)
    if value < spec.low:
        msg = f"Input should be greater than or equal to {spec.low}; {spec.describe()}"
        return ValidationIssue(spec.name, msg, "greater_than_equal", raw, ctx)
    if value > spec.high:
        msg = f"Input should be less than or equal to {spec.high}; {spec.describe()}"
        return ValidationIssue(spec.name, msg, "less_than_equal", raw, ctx)
    return value


def _parse_bool(query: Mapping[str, str], name: str, default: bool) -> bool | ValidationIssue:
    raw = query.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    msg = (
        f"Input should be a valid boolean, unable to interpret input; {name} accepts true/false/1/0"
    )
    return ValidationIssue(name, msg, "bool_parsing", raw)


def parse_process_query(query: Mapping[str, str]) -> ProcessRequest | tuple[ValidationIssue, ...]:
    """Validate POST /process query parameters: a request, or every problem found (for a 422)."""
    cpu = _parse_int(query, CPU_INTENSITY)
    memory = _parse_int(query, MEMORY_SIZE_MB)
    duration = _parse_int(query, DURATION_S)
    async_mode = _parse_bool(query, "async_mode", default=False)
    cleanup = _parse_bool(query, "immediate_cleanup", default=True)
    if (
        isinstance(cpu, int)
        and isinstance(memory, int)
        and isinstance(duration, int)
        and isinstance(async_mode, bool)
        and isinstance(cleanup, bool)
    ):
        return ProcessRequest(cpu, memory, duration, async_mode, cleanup)
    parsed = (cpu, memory, duration, async_mode, cleanup)
    return tuple(item for item in parsed if isinstance(item, ValidationIssue))
