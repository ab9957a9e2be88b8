"""Tests of `config`: the `OTEL_*` variables read into a `TelemetryConfig`."""

from __future__ import annotations

from nimbus_scenarios.telemetry.config import parse_key_values, resolve_config


def test_no_endpoint_means_disabled() -> None:
    """Without an endpoint (or with OTEL_SDK_DISABLED) telemetry is off and says why."""
    assert resolve_config({}).reason == "no OTLP endpoint"
    assert not resolve_config({}).enabled
    disabled = resolve_config({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    assert not disabled.enabled
    assert disabled.reason == "OTEL_SDK_DISABLED is true"
    none = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert not none.enabled


def test_standard_variables_are_read() -> None:
    """Endpoint, protocol, headers, service, resource attributes and limits come from OTEL_*."""
    config = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, x-scope-orgid=t1,broken",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=ci",
            "OTEL_SERVICE_NAME": "loadgen",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1500",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert config.enabled
    assert config.protocol == "http/protobuf"
    assert config.signal_endpoint("traces") == "http://alloy:4318/v1/traces"
    assert dict(config.headers) == {"Authorization": "Bearer abc", "x-scope-orgid": "t1"}
    assert config.service_name == "loadgen"
    assert config.resource_attributes["deployment.environment"] == "ci"
    assert config.timeout_s == 1.5
    assert config.span_queue_size == 100
    assert (config.traces, config.metrics, config.logs) == (True, True, False)
    assert any("broken" in w for w in config.warnings)


def test_override_protocols_and_defaults() -> None:
    """--otlp-endpoint wins over the variable; grpc keeps the address; bad values warn."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    config = resolve_config(env, otlp_endpoint="collector:4317")
    assert config.endpoint == "http://collector:4317"
    assert config.signal_endpoint("logs") == "http://collector:4317"
    assert config.service_name == "nimbus-scenarios"
    odd = resolve_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    )
    assert odd.protocol == "http/protobuf"
    assert odd.warnings
    assert parse_key_values("a=1,,b = 2 ,=x") == ({"a": "1", "b": "2"}, ["=x"])
