"""Telemetry configuration from the standard `OTEL_*` variables (imports no OpenTelemetry).

Read once when a run starts. Telemetry is on only when an OTLP endpoint is known (the
`--otlp-endpoint` override, else `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_SDK_DISABLED` is not
true; everything here is pure parsing so `validate` and `plan` never pay for OpenTelemetry.

=====================================  =========================================================
variable                               meaning here
=====================================  =========================================================
``OTEL_SDK_DISABLED``                  ``true``: no tracing, no metrics, no OTLP logs
``OTEL_EXPORTER_OTLP_ENDPOINT``        base URL (``http://alloy:4318``); http/protobuf appends
                                       ``/v1/traces``, ``/v1/metrics``, ``/v1/logs``
``OTEL_EXPORTER_OTLP_PROTOCOL``        ``http/protobuf`` (default) or ``grpc`` (needs the
                                       optional ``opentelemetry-exporter-otlp-proto-grpc``)
``OTEL_EXPORTER_OTLP_HEADERS``         ``k1=v1,k2=v2`` (values percent-decoded) on every export
``OTEL_EXPORTER_OTLP_TIMEOUT``         per export, in milliseconds (default here: 2000)
``OTEL_EXPORTER_OTLP_COMPRESSION``     ``none`` (default) or ``gzip``
``OTEL_SERVICE_NAME``                  ``service.name`` (default ``nimbus-scenarios``)
``OTEL_RESOURCE_ATTRIBUTES``           ``k1=v1,k2=v2`` resource attributes
``OTEL_TRACES_EXPORTER`` (and          ``none`` turns that one signal off
``_METRICS_``, ``_LOGS_``)
``OTEL_BSP_MAX_QUEUE_SIZE``,           span queue bound (8192), batch size (512), delay (1000 ms)
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``,
``OTEL_BSP_SCHEDULE_DELAY``
``OTEL_BLRP_MAX_QUEUE_SIZE``           log record queue bound (2048)
``OTEL_METRIC_EXPORT_INTERVAL``        metric export interval in ms (default here: 10000)
=====================================  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "TelemetryConfig",
    "parse_key_values",
    "resolve_config",
]

DEFAULT_SERVICE_NAME: Final = "nimbus-scenarios"
PROTOCOLS: Final = ("http/protobuf", "grpc")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """Where and how telemetry is exported; `enabled` is False when nothing is to be exported."""

    enabled: bool
    reason: str
    """Why telemetry is off (empty when on)."""
    endpoint: str | None = None
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 2.0
    compression: str = "none"
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    traces: bool = True
    metrics: bool = True
    logs: bool = True
    span_queue_size: int = 8192
    span_batch_size: int = 512
    span_delay_ms: int = 1000
    log_queue_size: int = 2048
    metric_interval_ms: int = 10_000
    warnings: tuple[str, ...] = ()
    """Configuration problems worth one warning line each (an unsupported protocol, ...)."""

    def signal_endpoint(self, signal: str) -> str:
        """The URL (http/protobuf) or address (grpc) that `signal` (traces, ...) exports to."""
        assert self.endpoint is not None
        if self.protocol == "grpc":
            return self.endpoint
        return self.endpoint.rstrip("/") + "/v1/" + signal


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


def _int(environ: Mapping[str, str], name: str, default: int, warnings: list[str]) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        warnings.append(f"{name}={raw!r} is not a number; using {default}")
        return default
    if value <= 0:
        warnings.append(f"{name}={raw!r} must be above zero; using {default}")
        return default
    return value


def resolve_config(environ: Mapping[str, str], otlp_endpoint: str | None = None) -> TelemetryConfig:
    """The telemetry configuration from `environ`, with `otlp_endpoint` overriding the variable."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return TelemetryConfig(enabled=False, reason="OTEL_SDK_DISABLED is true")
    endpoint = (otlp_endpoint or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")).strip()
    if not endpoint:
        return TelemetryConfig(enabled=False, reason="no OTLP endpoint")
    warnings: list[str] = []
    protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower() or "http/protobuf"
    if protocol not in PROTOCOLS:
        warnings.append(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; using http/protobuf"
        )
        protocol = "http/protobuf"
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    headers, bad_headers = parse_key_values(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    if bad_headers:
        warnings.append(f"OTEL_EXPORTER_OTLP_HEADERS: skipped {', '.join(bad_headers)}")
    resource, bad_resource = parse_key_values(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    if bad_resource:
        warnings.append(f"OTEL_RESOURCE_ATTRIBUTES: skipped {', '.join(bad_resource)}")
    service = (
        environ.get("OTEL_SERVICE_NAME", "").strip()
        or resource.get("service.name", "").strip()
        or DEFAULT_SERVICE_NAME
    )
    compression = environ.get("OTEL_EXPORTER_OTLP_COMPRESSION", "").strip().lower() or "none"
    if compression not in ("none", "gzip"):
        warnings.append(f"OTEL_EXPORTER_OTLP_COMPRESSION={compression!r} unsupported; using none")
        compression = "none"

    def on(name: str) -> bool:
        return environ.get(name, "").strip().lower() != "none"

    traces, metrics, logs = (
        on("OTEL_TRACES_EXPORTER"),
        on("OTEL_METRICS_EXPORTER"),
        on("OTEL_LOGS_EXPORTER"),
    )
    if not (traces or metrics or logs):
        return TelemetryConfig(enabled=False, reason="every OTEL_*_EXPORTER is none")
    return TelemetryConfig(
        enabled=True,
        reason="",
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        timeout_s=_int(environ, "OTEL_EXPORTER_OTLP_TIMEOUT", 2000, warnings) / 1000.0,
        compression=compression,
        service_name=service,
        resource_attributes=resource,
        traces=traces,
        metrics=metrics,
        logs=logs,
        span_queue_size=_int(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 8192, warnings),
        span_batch_size=_int(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, warnings),
        span_delay_ms=_int(environ, "OTEL_BSP_SCHEDULE_DELAY", 1000, warnings),
        log_queue_size=_int(environ, "OTEL_BLRP_MAX_QUEUE_SIZE", 2048, warnings),
        metric_interval_ms=_int(environ, "OTEL_METRIC_EXPORT_INTERVAL", 10_000, warnings),
        warnings=tuple(warnings),
    )
