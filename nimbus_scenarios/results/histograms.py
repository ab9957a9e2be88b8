"""The latency histograms a results document carries, checked before anything decodes them.

A document holds hdrhistogram encodings (compressed base64, V2) of each phase's latencies, of
each request template's within it, and of each second's (`StatsRecord`); `merge` decodes them to
add shards up. hdrhistogram trusts what it decodes: bad base64 raises one of several unrelated
errors, a short string can inflate to megabytes, and a header can ask for a histogram of any
size, which `LatencyHistogram.decode` then re-buckets value by value. So a document's histograms
are read here first, as far as their two headers and a bounded inflate, and must have the layout
this tool writes (lowest value 1, highest one hour, 3 significant digits per phase and per
template, 2 per second).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections.abc import Iterator
from typing import Final

from hdrh.codec import (
    V2_COMPRESSION_COOKIE_BASE,
    V2_ENCODING_COOKIE_BASE,
    ext_header_size,
    payload_header_size,
)

from nimbus_scenarios.engine.histogram import (
    HIGHEST_TRACKABLE_US,
    PHASE_SIGNIFICANT_DIGITS,
    SECOND_SIGNIFICANT_DIGITS,
)
from nimbus_scenarios.engine.records import Histograms, PhaseRecord, StatsRecord

__all__ = ["MAX_ENCODED_CHARS", "histogram_problem", "histogram_problems"]

MAX_ENCODED_CHARS: Final = 512 * 1024
"""The longest encoding read (every bucket of a 3-digit histogram holding a large count takes
about 180,000 characters)."""

_MAX_INFLATED: Final = 1024 * 1024
"""The most an encoding may inflate to (a 3-digit histogram's counts take at most about 210 KB)."""

_EXTERNAL = struct.Struct(">II")  # cookie, length of the compressed payload
_PAYLOAD = struct.Struct(">IIIIQQd")  # cookie, payload length, normalizing offset, digits, ...


def _cookie_base(cookie: int) -> int:
    return cookie & ~0xF0


def histogram_problem(encoded: str, digits: int) -> str | None:
    """What keeps `encoded` from being one of this tool's histograms of `digits` significant
    digits, or None when hdrhistogram can decode it."""
    if len(encoded) > MAX_ENCODED_CHARS:
        return f"an encoding of {len(encoded):,} characters (the limit is {MAX_ENCODED_CHARS:,})"
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"not a histogram encoding (bad base64: {exc})"
    if len(raw) < _EXTERNAL.size:
        return "not a histogram encoding (too short)"
    cookie, length = _EXTERNAL.unpack_from(raw)
    if _cookie_base(cookie) != V2_COMPRESSION_COOKIE_BASE or length != len(raw) - ext_header_size:
        return "not a histogram encoding (not hdrhistogram's compressed V2 format)"
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[ext_header_size:], _MAX_INFLATED)
    except zlib.error as exc:
        return f"not a histogram encoding (its payload does not inflate: {exc})"
    if inflater.unconsumed_tail:
        return f"a histogram encoding that inflates past {_MAX_INFLATED:,} bytes"
    if not inflater.eof:
        return "not a histogram encoding (its payload is cut short)"
    if len(payload) < payload_header_size:
        return "not a histogram encoding (its payload is too short)"
    cookie, payload_len, _offset, found_digits, lowest, highest, _ratio = _PAYLOAD.unpack_from(
        payload
    )
    if _cookie_base(cookie) != V2_ENCODING_COOKIE_BASE or payload_len != (
        len(payload) - payload_header_size
    ):
        return "not a histogram encoding (its payload header is not hdrhistogram's V2)"
    layout = (lowest, highest, found_digits)
    expected = (1, HIGHEST_TRACKABLE_US, digits)
    if layout != expected:
        return (
            f"a histogram of values {lowest} to {highest} with {found_digits} significant "
            f"digits; this tool writes {expected[0]} to {expected[1]} with {digits}"
        )
    return None


def histogram_problems(stats: StatsRecord, path: str = "$.stats") -> Iterator[tuple[str, str]]:
    """(JSON path, problem) of each histogram in `stats` that cannot be decoded: the phases'
    (per phase and in total), their request templates' and the seconds'."""
    phases: list[tuple[str, PhaseRecord]] = [
        (f"{path}.phases[{i}]", phase) for i, phase in enumerate(stats.phases)
    ]
    phases.append((f"{path}.total", stats.total))
    scopes: list[tuple[str, Histograms]] = []
    for where, phase in phases:
        scopes.append((where, phase.histograms))
        scopes.extend(
            (f"{where}.requests[{i}]", request.histograms)
            for i, request in enumerate(phase.requests)
            if request.histograms is not None
        )
    for where, histograms in scopes:
        for name in ("latency_us", "service_time_us"):
            encoded: str = getattr(histograms, name)
            problem = histogram_problem(encoded, PHASE_SIGNIFICANT_DIGITS)
            if problem is not None:
                yield f"{where}.histograms.{name}", problem
    for i, second in enumerate(stats.seconds):
        if second.histogram:
            problem = histogram_problem(second.histogram, SECOND_SIGNIFICANT_DIGITS)
            if problem is not None:
                yield f"{path}.seconds[{i}].histogram", problem
