"""Telemetry configuration from the standard `OTEL_*` variables (imports no OpenTelemetry).

Read once when a run starts, from the mapping given (the process environment in the CLI), per
the OpenTelemetry specification's exporter configuration. A signal (traces, metrics, logs) is
exported when it has an endpoint, its own (`OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, used as
is) or the base one (`OTEL_EXPORTER_OTLP_ENDPOINT`, to which OTLP/HTTP appends `/v1/<signal>`),
and its `OTEL_<SIGNAL>_EXPORTER` is not `none`. Headers, protocol, timeout and compression
are read per signal too, the signal's variable before the base one. `--otlp-endpoint` replaces
every endpoint variable; `none` there turns telemetry off.

Everything here is pure parsing, so `validate` and `plan` never pay for OpenTelemetry. The
variables are resolved here rather than by the SDK's exporters because the SDK reads only
`os.environ` (the tests hand a mapping) and reads `OTEL_EXPORTER_OTLP_TIMEOUT` as seconds
where the specification says milliseconds; what we pass explicitly wins over the SDK's own
reading. Left to the SDK (read from the process environment): the TLS files
(`OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE`, `..._CLIENT_KEY`, `..._CLIENT_CERTIFICATE`) and the
processors' export timeouts (`OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_BLRP_EXPORT_TIMEOUT`).

Any other `OTEL_*` variable that is set, and any value that cannot be used (an exporter other
than `otlp` or `none`, an unknown protocol or compression, a bad number), is named in
`TelemetryConfig.ignored`: the run reports them in one line at its start and in the results'
notes. The table of variables is docs/telemetry.md's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final
from urllib.parse import unquote

from nimbus_scenarios.secrets import mask_url

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "Signal",
    "SignalExport",
    "TelemetryConfig",
    "parse_key_values",
    "resolve_config",
]

DEFAULT_SERVICE_NAME: Final = "nimbus-scenarios"
PROTOCOLS: Final = ("http/protobuf", "grpc")
COMPRESSIONS: Final = ("none", "gzip", "deflate")
DEFAULT_TIMEOUT_MS: Final = 2000
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_BASE: Final = "OTEL_EXPORTER_OTLP_"
_SETTINGS: Final = ("ENDPOINT", "HEADERS", "PROTOCOL", "TIMEOUT", "COMPRESSION")

_WHY_NOT: Final = {
    "OTEL_TRACES_SAMPLER": "request spans are sampled by the scenario's trace_sample setting",
    "OTEL_TRACES_SAMPLER_ARG": "request spans are sampled by the scenario's trace_sample setting",
    "OTEL_PROPAGATORS": "requests always carry a W3C traceparent",
    "OTEL_EXPORTER_OTLP_INSECURE": "TLS follows the endpoint's scheme (https:// or http://)",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "metrics are always cumulative",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": (
        "the request duration histogram has fixed explicit buckets"
    ),
}
"""Variables people set that this tool does not honour, and why (anything else: 'not used')."""


class Signal(StrEnum):
    """An OpenTelemetry signal."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


@dataclass(frozen=True, slots=True)
class SignalExport:
    """Where and how one signal is exported."""

    signal: Signal
    endpoint: str
    """The full URL posted to (OTLP/HTTP), or the collector's address (gRPC)."""
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000.0
    compression: str = "none"


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """What is exported where; `enabled` is False when no signal is exported."""

    enabled: bool
    reason: str
    """Why telemetry is off (empty when on)."""
    traces: SignalExport | None = None
    metrics: SignalExport | None = None
    logs: SignalExport | None = None
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    span_queue_size: int = 8192
    span_batch_size: int = 512
    span_delay_ms: int = 1000
    log_queue_size: int = 2048
    log_batch_size: int = 512
    log_delay_ms: int = 1000
    metric_interval_ms: int = 10_000
    metric_timeout_ms: int | None = None
    """`OTEL_METRIC_EXPORT_TIMEOUT`; None: the metrics exporter's timeout."""
    ignored: tuple[str, ...] = ()
    """Each setting not honoured, as `NAME=value: why` (reported at start and in the notes)."""

    @property
    def signals(self) -> tuple[SignalExport, ...]:
        """The signals exported, in the order traces, metrics, logs."""
        return tuple(s for s in (self.traces, self.metrics, self.logs) if s is not None)

    @property
    def timeout_s(self) -> float:
        """The longest export timeout of any signal (what a flush must leave room for)."""
        return max((s.timeout_s for s in self.signals), default=DEFAULT_TIMEOUT_MS / 1000.0)

    @property
    def endpoint(self) -> str | None:
        """Where telemetry goes, for people (passwords masked): one endpoint, or one per signal."""
        return _shown({s.signal: mask_url(s.endpoint) for s in self.signals})

    @property
    def protocol(self) -> str | None:
        """The protocol used, or one per signal when they differ."""
        return _shown({s.signal: s.protocol for s in self.signals})

    def notice(self) -> str | None:
        """The one start-of-run line naming every setting not honoured (None: all honoured)."""
        if not self.ignored:
            return None
        return "telemetry settings not honoured: " + "; ".join(self.ignored)


def _shown(values: Mapping[Signal, str]) -> str | None:
    if not values:
        return None
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return " ".join(f"{signal}={value}" for signal, value in values.items())


def parse_key_values(text: str) -> tuple[dict[str, str], list[str]]:
    """`k1=v1,k2=v2` (W3C baggage-like, percent-decoded) as a dict, plus the items it skipped."""
    values: dict[str, str] = {}
    skipped: list[str] = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = unquote(key.strip())
        if not sep or not key:
            skipped.append(item.strip())
            continue
        values[key] = unquote(value.strip())
    return values, skipped


class _Reader:
    """Reads variables from one mapping, keeping what was read and what could not be used."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.read: set[str] = set()
        self.ignored: list[str] = []

    def get(self, name: str) -> str:
        self.read.add(name)
        return self.environ.get(name, "").strip()

    def first(self, *names: str) -> tuple[str, str]:
        """The first of `names` that is set, and its value ("", "" when none is)."""
        for name in names:
            value = self.get(name)
            if value:
                return name, value
        return "", ""

    def refuse(self, name: str, value: str, why: str) -> None:
        line = f"{name}={value!r}: {why}"
        if line not in self.ignored:  # a base variable is read once per signal
            self.ignored.append(line)

    def positive(self, name: str, default: int) -> int:
        """A positive whole number (a bad one is refused; `default` used instead)."""
        raw = self.get(name)
        if not raw:
            return default
        using = f"using {default}" if default else "using the default"
        try:
            value = int(float(raw))
        except ValueError:
            self.refuse(name, raw, f"not a number; {using}")
            return default
        if value <= 0:
            self.refuse(name, raw, f"must be above zero; {using}")
            return default
        return value

    def unread(self) -> None:
        """Name every `OTEL_*` variable that is set and was never read."""
        for name in sorted(self.environ):
            if not name.startswith("OTEL_") or name in self.read or name in _READ_ELSEWHERE:
                continue
            if not self.environ[name].strip():
                continue
            why = _WHY_NOT.get(name, "not used by nimbus-scenarios")
            self.ignored.append(f"{name}: {why}")


def _sdk_reads() -> frozenset[str]:
    names = {"OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BLRP_EXPORT_TIMEOUT"}
    for prefix in ("", "TRACES_", "METRICS_", "LOGS_"):
        for tls in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
            names.add(f"{_BASE}{prefix}{tls}")
    return frozenset(names)


_SDK_READS: Final = _sdk_reads()
"""What the SDK's exporters and processors read themselves (from the process environment)."""

_READ_ELSEWHERE: Final = _SDK_READS | {"OTEL_METRICS_EXEMPLAR_FILTER"}
"""Read by the SDK, or by `telemetry._durations` (the exemplar filter, which names a value it
cannot use itself)."""


def _exporter_on(reader: _Reader, signal: Signal) -> bool:
    """`OTEL_<SIGNAL>_EXPORTER`: unset or `otlp` exports; `none` does not; others are refused."""
    name = f"OTEL_{signal.upper()}_EXPORTER"
    raw = reader.get(name).lower()
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values or values == ["otlp"]:
        return True
    if values == ["none"]:
        return False
    others = [v for v in values if v not in ("otlp", "none")]
    if "otlp" in values:
        reader.refuse(name, raw, f"only otlp is exported (not {', '.join(others)})")
        return True
    reader.refuse(name, raw, f"only otlp or none is supported; {signal} not exported")
    return False


def _signal(
    reader: _Reader, signal: Signal, override: str | None
) -> tuple[SignalExport | None, str]:
    """The signal's export settings, or None and why it is not exported."""
    own = f"{_BASE}{signal.upper()}_"
    on = _exporter_on(reader, signal)
    protocol_name, protocol = reader.first(own + "PROTOCOL", _BASE + "PROTOCOL")
    headers_name, raw_headers = reader.first(own + "HEADERS", _BASE + "HEADERS")
    timeout_name, _ = reader.first(own + "TIMEOUT", _BASE + "TIMEOUT")
    compression_name, compression = reader.first(own + "COMPRESSION", _BASE + "COMPRESSION")
    name, endpoint = reader.first(own + "ENDPOINT", _BASE + "ENDPOINT")
    signal_own = name == own + "ENDPOINT"
    if override is not None:
        if signal_own:
            reader.refuse(name, mask_url(endpoint), "replaced by --otlp-endpoint")
        endpoint, signal_own = override, False
    if not on:
        return None, f"OTEL_{signal.upper()}_EXPORTER"
    if not endpoint:
        return None, "no endpoint"
    protocol = protocol.lower() or "http/protobuf"
    if protocol not in PROTOCOLS:
        reader.refuse(protocol_name, protocol, "only http/protobuf or grpc; using http/protobuf")
        protocol = "http/protobuf"
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    if protocol == "http/protobuf" and not signal_own:
        endpoint = endpoint.rstrip("/") + "/v1/" + signal
    headers, bad = parse_key_values(raw_headers)
    if bad:
        # Header values may be credentials: the skipped items are counted, not shown.
        reader.refuse(headers_name, "...", f"{len(bad)} item(s) not key=value; skipped")
    timeout_ms = reader.positive(timeout_name, DEFAULT_TIMEOUT_MS) if timeout_name else 0
    compression = compression.lower() or "none"
    if compression not in COMPRESSIONS:
        reader.refuse(compression_name, compression, "only none, gzip or deflate; using none")
        compression = "none"
    return (
        SignalExport(
            signal=signal,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            timeout_s=(timeout_ms or DEFAULT_TIMEOUT_MS) / 1000.0,
            compression=compression,
        ),
        "",
    )


def _why_off(reasons: Iterable[tuple[Signal, str]]) -> str:
    reasons = list(reasons)
    kinds = {why for _, why in reasons}
    if kinds == {"no endpoint"}:
        return "no OTLP endpoint"
    if all(why.endswith("_EXPORTER") for _, why in reasons):
        return "every OTEL_*_EXPORTER is none"
    return "; ".join(f"{signal}: {why}" for signal, why in reasons)


def resolve_config(environ: Mapping[str, str], otlp_endpoint: str | None = None) -> TelemetryConfig:
    """The telemetry configuration from `environ`; `otlp_endpoint` (the `--otlp-endpoint` flag)
    replaces every endpoint variable, and `none` there turns telemetry off."""
    reader = _Reader(environ)
    if reader.get("OTEL_SDK_DISABLED").lower() in _TRUE:
        return TelemetryConfig(enabled=False, reason="OTEL_SDK_DISABLED is true")
    override = otlp_endpoint.strip() if otlp_endpoint is not None else None
    if override is not None and override.lower() == "none":
        return TelemetryConfig(enabled=False, reason="--otlp-endpoint none")
    exports: dict[Signal, SignalExport | None] = {}
    reasons: list[tuple[Signal, str]] = []
    for signal in Signal:
        export, why = _signal(reader, signal, override or None)
        exports[signal] = export
        if export is None:
            reasons.append((signal, why))
    resource, bad_resource = parse_key_values(reader.get("OTEL_RESOURCE_ATTRIBUTES"))
    if bad_resource:
        reader.refuse("OTEL_RESOURCE_ATTRIBUTES", ", ".join(bad_resource), "not key=value; skipped")
    service = (
        reader.get("OTEL_SERVICE_NAME")
        or resource.get("service.name", "").strip()
        or DEFAULT_SERVICE_NAME
    )
    span_queue = reader.positive("OTEL_BSP_MAX_QUEUE_SIZE", 8192)
    log_queue = reader.positive("OTEL_BLRP_MAX_QUEUE_SIZE", 2048)
    config = TelemetryConfig(
        enabled=True,
        reason="",
        traces=exports[Signal.TRACES],
        metrics=exports[Signal.METRICS],
        logs=exports[Signal.LOGS],
        service_name=service,
        resource_attributes=resource,
        span_queue_size=span_queue,
        span_batch_size=min(reader.positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), span_queue),
        span_delay_ms=reader.positive("OTEL_BSP_SCHEDULE_DELAY", 1000),
        log_queue_size=log_queue,
        log_batch_size=min(reader.positive("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512), log_queue),
        log_delay_ms=reader.positive("OTEL_BLRP_SCHEDULE_DELAY", 1000),
        metric_interval_ms=reader.positive("OTEL_METRIC_EXPORT_INTERVAL", 10_000),
        metric_timeout_ms=reader.positive("OTEL_METRIC_EXPORT_TIMEOUT", 0) or None,
    )
    reader.unread()
    if not config.signals:
        return TelemetryConfig(
            enabled=False, reason=_why_off(reasons), ignored=tuple(reader.ignored)
        )
    return replace(config, ignored=tuple(reader.ignored))
