"""The fast request-span encoder decodes to exactly what the SDK's OTLP encoder produces."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from nimbus_scenarios.telemetry._wire import (
    RequestShape,
    RequestSpan,
    encode_request_spans,
    encode_resource_scope,
    split,
)

RESOURCE = Resource({"service.name": "nimbus-test", "team": "load", "ünïcode": "välue"})
SCOPE = InstrumentationScope("nimbus_scenarios", "0.1.0")
PARENT = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
SHAPE = RequestShape(
    "POST /process",
    PARENT,
    {
        "nimbus.scenario": "s",
        "nimbus.phase": "p",
        "http.request.method": "POST",
        "url.full": "http://127.0.0.1:8000/process?cpu_intensity=5&token=***",
        "server.port": 8000,
        "nimbus.weight": 0.25,
        "nimbus.tags": ("a", "b"),
    },
)


@pytest.mark.parametrize(
    ("status", "error", "lateness", "ok"),
    [
        (200, None, 0.0, True),
        (503, "503", 12.5, False),
        (None, "timeout", 1234.567, False),
        (599, "599", -0.0, False),
    ],
)
def test_fast_encoding_matches_the_sdk(
    status: int | None, error: str | None, lateness: float, ok: bool
) -> None:
    """Every field of a request span decodes as the SDK encoder would write it."""
    span = RequestSpan(
        SHAPE, 0x00F067AA0BA902B7, 1_700_000_000_123_456_789, 1_700_000_000_223_456_789, status,
        error, lateness, ok,
    )  # fmt: skip
    fast = ExportTraceServiceRequest.FromString(
        encode_request_spans(*encode_resource_scope(RESOURCE, SCOPE), [span, span])
    )
    sdk = encode_spans([SHAPE.readable(span, RESOURCE, SCOPE)] * 2)
    assert fast == sdk


def test_fast_bytes_append_to_sdk_bytes() -> None:
    """SDK-encoded and fast-encoded requests concatenate into one valid export request."""
    span = RequestSpan(SHAPE, 7, 1, 2, 200, None, 0.5, True)
    readable = SHAPE.readable(span, RESOURCE, SCOPE)
    sdk, requests = split([readable, span])
    assert sdk == [readable]
    assert requests == [span]
    data = encode_spans(sdk).SerializePartialToString() + encode_request_spans(
        *encode_resource_scope(RESOURCE, SCOPE), requests
    )
    message = ExportTraceServiceRequest.FromString(data)
    spans = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 2
    assert spans[0] == spans[1]
