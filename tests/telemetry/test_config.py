"""Tests of `config`: the `OTEL_*` variables read into a `TelemetryConfig`, per signal."""

from __future__ import annotations

import pytest

from nimbus_scenarios.telemetry.config import Signal, parse_key_values, resolve_config

BASE = "http://alloy:4318"


def test_no_endpoint_means_disabled() -> None:
    """Without an endpoint (or with OTEL_SDK_DISABLED) telemetry is off and says why."""
    assert resolve_config({}).reason == "no OTLP endpoint"
    assert not resolve_config({}).enabled
    disabled = resolve_config({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    assert not disabled.enabled
    assert disabled.reason == "OTEL_SDK_DISABLED is true"
    none = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE,
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert not none.enabled
    assert none.reason == "every OTEL_*_EXPORTER is none"
    flag = resolve_config({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}, otlp_endpoint="none")
    assert (flag.enabled, flag.reason) == (False, "--otlp-endpoint none")


def test_standard_variables_are_read() -> None:
    """Endpoint, protocol, headers, service, resource attributes and limits come from OTEL_*."""
    config = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE + "/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, x-scope-orgid=t1,broken",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=ci",
            "OTEL_SERVICE_NAME": "loadgen",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1500",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert config.enabled
    assert config.traces is not None
    assert config.metrics is not None
    assert config.logs is None
    assert config.traces.protocol == "http/protobuf"
    assert config.traces.endpoint == BASE + "/v1/traces"
    assert config.metrics.endpoint == BASE + "/v1/metrics"
    assert dict(config.traces.headers) == {"Authorization": "Bearer abc", "x-scope-orgid": "t1"}
    assert config.service_name == "loadgen"
    assert config.resource_attributes["deployment.environment"] == "ci"
    assert config.traces.timeout_s == 1.5
    assert config.span_queue_size == 100
    assert config.span_batch_size == 100  # never above the queue
    assert config.endpoint == f"traces={BASE}/v1/traces metrics={BASE}/v1/metrics"
    assert any("OTEL_EXPORTER_OTLP_HEADERS" in line for line in config.ignored)
    assert all("broken" not in line for line in config.ignored)  # a header item is not shown


def test_only_a_signal_endpoint_turns_that_signal_on_and_is_used_as_is() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone: traces on, at that exact URL; the rest off."""
    config = resolve_config({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/x/traces"})
    assert config.enabled
    assert config.traces is not None
    assert config.traces.endpoint == "http://tempo:4318/x/traces"  # nothing appended
    assert (config.metrics, config.logs) == (None, None)
    assert config.endpoint == "http://tempo:4318/x/traces"
    logs = resolve_config({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://loki:3100/otlp/v1/logs"})
    assert [s.signal for s in logs.signals] == [Signal.LOGS]


def test_a_signal_override_wins_over_the_base_for_that_signal_only() -> None:
    """Base plus one override: the override's endpoint, headers, protocol, timeout, compression."""
    config = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE,
            "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://loki/otlp/v1/logs",
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "X-Scope-OrgID=tenant",
            "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "5000",
            "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "tempo:4317",
        }
    )
    assert config.logs is not None
    assert config.metrics is not None
    assert config.traces is not None
    assert config.logs.endpoint == "https://loki/otlp/v1/logs"
    assert dict(config.logs.headers) == {"X-Scope-OrgID": "tenant"}  # replaces, not merged
    assert (config.logs.timeout_s, config.logs.compression) == (5.0, "gzip")
    assert config.metrics.endpoint == BASE + "/v1/metrics"
    assert dict(config.metrics.headers) == {"a": "1"}
    assert (config.metrics.timeout_s, config.metrics.compression) == (2.0, "none")
    assert (config.traces.protocol, config.traces.endpoint) == ("grpc", "http://tempo:4317")
    assert config.protocol == "traces=grpc metrics=http/protobuf logs=http/protobuf"
    assert config.timeout_s == 5.0
    assert config.ignored == ()


def test_the_flag_replaces_every_endpoint_and_says_so() -> None:
    """--otlp-endpoint wins over the variables; a signal endpoint it replaces is reported."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://u:secret@tempo:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    config = resolve_config(env, otlp_endpoint="collector:4317")
    assert [s.endpoint for s in config.signals] == ["http://collector:4317"] * 3
    assert config.service_name == "nimbus-scenarios"
    (line,) = config.ignored
    assert line.startswith("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
    assert "replaced by --otlp-endpoint" in line
    assert "secret" not in line


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "only otlp or none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "only http/protobuf or grpc"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "only none, gzip or deflate"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "not a number"),
        ("OTEL_TRACES_SAMPLER", "traceidratio", "trace_sample"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta", "cumulative"),
        ("OTEL_SOMETHING_NEW", "1", "not used by nimbus-scenarios"),
    ],
)
def test_a_setting_not_honoured_is_named_once(name: str, value: str, expected: str) -> None:
    """Every OTEL_* setting that cannot be used is in `ignored`, once, and in the notice."""
    config = resolve_config({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, name: value})
    assert len(config.ignored) == 1, config.ignored
    assert config.ignored[0].startswith(name)
    assert expected in config.ignored[0]
    notice = config.notice()
    assert notice is not None
    assert name in notice
    assert resolve_config({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}).notice() is None


def test_values_the_tool_or_the_sdk_reads_are_not_reported() -> None:
    """Honoured settings (ours, and the TLS files the SDK reads itself) are not called ignored."""
    config = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "/ca.pem",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "/key.pem",
            "OTEL_BSP_EXPORT_TIMEOUT": "3000",
            "OTEL_BLRP_SCHEDULE_DELAY": "250",
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "64",
            "OTEL_METRIC_EXPORT_TIMEOUT": "700",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "deflate",
            "OTEL_METRICS_EXEMPLAR_FILTER": "always_on",  # read by telemetry._durations
        }
    )
    assert config.ignored == ()
    assert (config.log_delay_ms, config.log_batch_size, config.metric_timeout_ms) == (250, 64, 700)
    assert config.metrics is not None
    assert config.metrics.compression == "deflate"


def test_an_unsupported_exporter_turns_its_signal_off_or_keeps_otlp() -> None:
    """`zipkin` alone: that signal is not exported; `otlp,console`: OTLP, the rest reported."""
    config = resolve_config({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_LOGS_EXPORTER": "console"})
    assert config.logs is None
    assert config.traces is not None
    both = resolve_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_METRICS_EXPORTER": "otlp,prometheus"}
    )
    assert both.metrics is not None
    assert "prometheus" in both.ignored[0]


def test_key_values() -> None:
    """Items without a key or `=` are skipped and returned; values are percent-decoded."""
    assert parse_key_values("a=1,,b = 2 ,=x") == ({"a": "1", "b": "2"}, ["=x"])
    assert parse_key_values("k=a%2Cb") == ({"k": "a,b"}, [])
