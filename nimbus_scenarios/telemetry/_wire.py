"""Request spans, light on the hot path, encoded straight to OTLP protobuf bytes.

Its place: the data `_requests` records and `_pipeline.RequestSpanExporter` exports; the only
module that writes the OTLP wire format itself.

A sampled request becomes a `RequestSpan`: a few slots (span id, times, status, lateness) and a
reference to the `RequestShape` of its phase and template, which holds everything that is the
same for all of them (name, parent, fixed attributes), pre-encoded once. The export thread turns
a batch into an `ExportTraceServiceRequest` with `encode_request_spans`, writing the protobuf wire
format directly (a few byte joins per span instead of a dozen message objects): the OTLP
encoder of the SDK costs about ten times more per span. Where that fast path cannot be used
(gRPC), `RequestShape.readable` turns a request span into an SDK `ReadableSpan` instead.

Wire format references: opentelemetry-proto `trace/v1/trace.proto`, `common/v1/common.proto`,
`resource/v1/resource.proto`. Serialized messages of one type concatenate into one message
(repeated fields append), so these bytes can follow the SDK encoder's bytes in one request.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

__all__ = ["RequestShape", "RequestSpan", "encode_request_spans", "encode_resource_scope"]

_SAMPLED_CONTEXT: Final = SpanContext(1, 1, False, TraceFlags(TraceFlags.SAMPLED))
_pack_double = struct.Struct("<d").pack
_pack_u64 = struct.Struct("<Q").pack
_KIND_CLIENT: Final = b"\x30\x03"  # Span.kind (6, varint) = SPAN_KIND_CLIENT
_FLAGS: Final = b"\x85\x01" + struct.pack("<I", 0x100)  # Span.flags (16, fixed32): local parent
_STATUS_ERROR: Final = b"\x7a\x02\x18\x02"  # Span.status (15) = Status{code (3) = ERROR}
_STATUS_UNSET: Final = b"\x7a\x00"  # an empty Status, as the SDK encoder writes it


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= 0xFFFFFFFFFFFFFFFF
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def any_value(value: object) -> bytes:
    """An AnyValue message's bytes for a str, bool, int, float or a sequence of those."""
    if isinstance(value, str):
        return _field(1, value.encode("utf-8"))
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, list | tuple):
        return _field(5, b"".join(_field(1, any_value(v)) for v in value))
    return _field(1, str(value).encode("utf-8"))


def key_value(key: str, value: object) -> bytes:
    """A KeyValue message's bytes."""
    return _field(1, key.encode("utf-8")) + _field(2, any_value(value))


def attributes_field(number: int, attributes: Mapping[str, object]) -> bytes:
    """Repeated KeyValue field `number`, one entry per attribute (None values left out)."""
    return b"".join(_field(number, key_value(k, v)) for k, v in attributes.items() if v is not None)


def encode_resource_scope(resource: Resource, scope: InstrumentationScope) -> tuple[bytes, bytes]:
    """ResourceSpans.resource (field 1) and ScopeSpans.scope (field 1), as field bytes."""
    resource_field = _field(1, attributes_field(1, dict(resource.attributes)))
    scope_payload = _field(1, scope.name.encode("utf-8"))
    if scope.version:
        scope_payload += _field(2, scope.version.encode("utf-8"))
    return resource_field, _field(1, scope_payload)


class RequestShape:
    """What every request span of one (phase, template) shares, pre-encoded once."""

    __slots__ = ("_fixed", "attributes", "name", "parent", "prefix", "suffix")

    def __init__(
        self,
        name: str,
        parent: SpanContext,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        self.name = name
        self.parent = parent
        self.attributes = dict(attributes)
        trace_id = parent.trace_id.to_bytes(16, "big")
        self.prefix = b"\x0a\x10" + trace_id  # trace_id (1)
        self.suffix = (
            b"\x22\x08"  # parent_span_id (4)
            + parent.span_id.to_bytes(8, "big")
            + _field(5, name.encode("utf-8"))
            + _KIND_CLIENT
        )
        self._fixed = attributes_field(9, self.attributes)

    @property
    def fixed_attributes(self) -> bytes:
        """Span.attributes (9) entries common to every span of this shape."""
        return self._fixed

    def readable(
        self, span: RequestSpan, resource: Resource, scope: InstrumentationScope
    ) -> ReadableSpan:
        """The SDK `ReadableSpan` of `span` (for exporters that encode their own way)."""
        attributes = dict(self.attributes)
        attributes.update(span.dynamic_attributes())
        return ReadableSpan(
            self.name,
            SpanContext(self.parent.trace_id, span.span_id, False, TraceFlags(TraceFlags.SAMPLED)),
            self.parent,
            resource,
            attributes,
            (),
            (),
            SpanKind.CLIENT,
            None,
            Status(StatusCode.ERROR) if span.error_type is not None else Status(StatusCode.UNSET),
            span.start_ns,
            span.end_ns,
            scope,
        )


class RequestSpan:
    """One sampled request, as recorded on the hot path (see the module docstring)."""

    __slots__ = (
        "end_ns",
        "error_type",
        "lateness_ms",
        "ok",
        "shape",
        "span_id",
        "start_ns",
        "status",
    )

    context: SpanContext = _SAMPLED_CONTEXT
    """What the batch processor checks (`context.trace_flags.sampled`): always sampled."""

    def __init__(
        self,
        shape: RequestShape,
        span_id: int,
        start_ns: int,
        end_ns: int,
        status: int | None,
        error_type: str | None,
        lateness_ms: float,
        ok: bool,
    ) -> None:
        self.shape = shape
        self.span_id = span_id
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.status = status
        self.error_type = error_type
        self.lateness_ms = lateness_ms
        self.ok = ok

    @property
    def duration_s(self) -> float:
        """Send to response, in seconds."""
        return (self.end_ns - self.start_ns) / 1e9

    def dynamic_attributes(self) -> dict[str, AttributeValue]:
        """The attributes that differ per request."""
        attributes: dict[str, AttributeValue] = {}
        if self.status is not None:
            attributes["http.response.status_code"] = self.status
        if self.error_type is not None:
            attributes["error.type"] = self.error_type
        attributes["nimbus.lateness_ms"] = self.lateness_ms
        attributes["nimbus.ok"] = self.ok
        return attributes


_STATUS_ATTRIBUTES: dict[int, bytes] = {}
_ERROR_ATTRIBUTES: dict[str, bytes] = {}
_OK_ATTRIBUTE: Final = {
    True: _field(9, key_value("nimbus.ok", True)),
    False: _field(9, key_value("nimbus.ok", False)),
}
_LATENESS_KEY: Final = _field(1, b"nimbus.lateness_ms")
# Span.attributes (9) { KeyValue: key, value (2) { AnyValue.double_value (4) } }: fixed length.
_LATENESS_PREFIX: Final = (
    b"\x4a" + _varint(len(_LATENESS_KEY) + 11) + _LATENESS_KEY + b"\x12\x09\x21"
)


def _status_attribute(status: int) -> bytes:
    encoded = _STATUS_ATTRIBUTES.get(status)
    if encoded is None:
        encoded = _STATUS_ATTRIBUTES[status] = _field(
            9, key_value("http.response.status_code", status)
        )
    return encoded


def _error_attribute(error: str) -> bytes:
    encoded = _ERROR_ATTRIBUTES.get(error)
    if encoded is None:
        encoded = _ERROR_ATTRIBUTES[error] = _field(9, key_value("error.type", error))
    return encoded


def encode_span(span: RequestSpan) -> bytes:
    """ScopeSpans.spans (2) entry for one request span."""
    shape = span.shape
    parts = [
        shape.prefix,
        b"\x12\x08",  # span_id (2)
        span.span_id.to_bytes(8, "big"),
        shape.suffix,
        b"\x39",  # start_time_unix_nano (7, fixed64)
        _pack_u64(span.start_ns),
        b"\x41",  # end_time_unix_nano (8, fixed64)
        _pack_u64(span.end_ns),
        shape.fixed_attributes,
    ]
    if span.status is not None:
        parts.append(_status_attribute(span.status))
    if span.error_type is not None:
        parts.append(_error_attribute(span.error_type))
        parts.append(_STATUS_ERROR)
    else:
        parts.append(_STATUS_UNSET)
    parts.append(_LATENESS_PREFIX)
    parts.append(_pack_double(span.lateness_ms))
    parts.append(_OK_ATTRIBUTE[span.ok])
    parts.append(_FLAGS)
    payload = b"".join(parts)
    return b"\x12" + _varint(len(payload)) + payload


def encode_request_spans(
    resource_field: bytes, scope_field: bytes, spans: Iterable[RequestSpan]
) -> bytes:
    """An ExportTraceServiceRequest (one resource, one scope) holding `spans`."""
    scope_spans = scope_field + b"".join([encode_span(s) for s in spans])
    resource_spans = resource_field + _field(2, scope_spans)
    return _field(1, resource_spans)


def split(
    spans: Sequence[object],
) -> tuple[list[ReadableSpan], list[RequestSpan]]:
    """SDK spans and request spans of a batch, each in their order."""
    sdk: list[ReadableSpan] = []
    requests: list[RequestSpan] = []
    for span in spans:
        if isinstance(span, RequestSpan):
            requests.append(span)
        elif isinstance(span, ReadableSpan):
            sdk.append(span)
    return sdk, requests
