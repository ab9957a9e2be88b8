"""What Prometheus would store from an OTLP export, and the series selectors of PromQL queries.

`prometheus_series(bodies)` decodes OTLP/HTTP metric export bodies and translates them as the
OTLP → Prometheus compatibility specification does (the default of Prometheus' OTLP receiver
and the collectors' Prometheus exporters): invalid characters to `_` (runs of `_` collapsed),
the unit as a suffix (`s` → `_seconds`, `{...}` annotations dropped, `a/b` → `_a_per_b`) unless
the name holds it, `_total` for monotonic sums, `_bucket` (with `le`), `_sum` and `_count` for
histograms; `service.name` becomes `job`. Exemplars of histogram points are kept with the
hex trace and span ids.

`selectors(expr)` finds every series selector in a PromQL expression (metric name and label
matchers), after `$variables` are replaced; `Selector.matches(series)` applies PromQL's matcher
semantics (regexes anchored, a missing label is the empty string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.support.otlp import attributes

__all__ = [
    "Matcher",
    "Op",
    "PromExemplar",
    "Selector",
    "SelectorError",
    "Series",
    "label_name",
    "metric_name",
    "prometheus_series",
    "selectors",
]

_UNITS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "%": "percent",
}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "y": "year"}


def _sanitize(name: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9_:]", "_", name))


def label_name(key: str) -> str:
    """An OTLP attribute key as a Prometheus label name."""
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9_]", "_", key))


def _unit_words(unit: str) -> list[str]:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if unit == "1":
        return ["ratio"]
    main, _, per = unit.partition("/")
    words = []
    if main:
        words.append(_UNITS.get(main, _sanitize(main)))
    if per:
        words.append("per_" + _PER_UNITS.get(per, _sanitize(per)))
    return [w for w in words if w]


def metric_name(name: str, unit: str, *, monotonic_sum: bool = False) -> str:
    """The Prometheus name of an OTLP metric (before any histogram suffix)."""
    base = _sanitize(name)
    for word in _unit_words(unit):
        if word not in base.split("_") and not base.endswith("_" + word):
            base = f"{base}_{word}"
    if monotonic_sum and not base.endswith("_total"):
        base += "_total"
    return base


@dataclass(frozen=True, slots=True)
class PromExemplar:
    """An exemplar on a `_bucket` series."""

    value: float
    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class Series:
    """One Prometheus series (name and labels) and the exemplars seen on it."""

    name: str
    labels: Mapping[str, str]
    exemplars: tuple[PromExemplar, ...] = ()


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _labels(point_attributes: Mapping[str, object], job: str) -> dict[str, str]:
    labels = {label_name(k): str(v) for k, v in point_attributes.items()}
    if job:
        labels["job"] = job
    return labels


def _metric_series(metric: Metric, job: str) -> Iterable[Series]:
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        base = metric_name(metric.name, metric.unit)
        for point in metric.histogram.data_points:
            labels = _labels(attributes(point.attributes), job)
            yield Series(f"{base}_count", labels)
            yield Series(f"{base}_sum", labels)
            bounds = [*point.explicit_bounds, float("inf")]
            for i, bound in enumerate(bounds):
                low = bounds[i - 1] if i else float("-inf")
                exemplars = tuple(
                    PromExemplar(e.as_double, e.trace_id.hex(), e.span_id.hex())
                    for e in point.exemplars
                    if low < e.as_double <= bound
                )
                yield Series(f"{base}_bucket", {**labels, "le": _le(bound)}, exemplars)
    elif kind == "sum":
        name = metric_name(metric.name, metric.unit, monotonic_sum=metric.sum.is_monotonic)
        for point in metric.sum.data_points:
            yield Series(name, _labels(attributes(point.attributes), job))
    elif kind == "gauge":
        name = metric_name(metric.name, metric.unit)
        for point in metric.gauge.data_points:
            yield Series(name, _labels(attributes(point.attributes), job))


def prometheus_series(bodies: Iterable[bytes]) -> list[Series]:
    """Every series the OTLP metric export bodies give Prometheus (repeats included)."""
    found: list[Series] = []
    for body in bodies:
        message = ExportMetricsServiceRequest.FromString(body)
        for rm in message.resource_metrics:
            resource = attributes(rm.resource.attributes)
            job = str(resource.get("service.name", ""))
            namespace = resource.get("service.namespace")
            if namespace:
                job = f"{namespace}/{job}"
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found.extend(_metric_series(metric, job))
    return found


# ---------------------------------------------------------------------------------- selectors
class SelectorError(ValueError):
    """An expression this extractor cannot read (or an unknown variable)."""


class Op(StrEnum):
    """A label matcher's operator."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """`label OP "value"`."""

    label: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """PromQL semantics: a missing label is ""; regexes are fully anchored."""
        have = labels.get(self.label, "")
        if self.op is Op.EQ:
            return have == self.value
        if self.op is Op.NE:
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op is Op.RE else not hit


@dataclass(frozen=True, slots=True)
class Selector:
    """A series selector: a metric name (or None) and its matchers."""

    name: str | None
    matchers: tuple[Matcher, ...] = field(default=())

    def matches(self, series: Series) -> bool:
        """Whether `series` is selected."""
        labels = {**series.labels, "__name__": series.name}
        if self.name is not None and series.name != self.name:
            return False
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers)
        return f"{self.name or ''}{{{inner}}}"


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan", "atan2"}
    # Aggregation operators may be followed by `by (...)` rather than `(`.
    | {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
_LABEL_LIST = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:[smhdwy]|ms)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}])
    """,
    re.VERBOSE,
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """`expr` with each `$name` / `${name}` replaced; an unknown variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise SelectorError(f"unknown variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(value, expr)


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(expr):
        match = _TOKEN.match(expr, at)
        if match is None:
            raise SelectorError(f"cannot read {expr[at:]!r}")
        at = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return bytes(text[1:-1], "utf-8").decode("unicode_escape")


def _matchers(tokens: list[tuple[str, str]], at: int) -> tuple[tuple[Matcher, ...], int]:
    """Matchers from the token after `{` to its `}`; returns them and the index after `}`."""
    found = []
    while tokens[at][1] != "}":
        label, op, value = tokens[at], tokens[at + 1], tokens[at + 2]
        if label[0] not in ("ident", "string") or value[0] != "string":
            raise SelectorError(f"bad matcher near {label[1]!r}")
        name = label[1] if label[0] == "ident" else _unquote(label[1])
        found.append(Matcher(name, Op(op[1]), _unquote(value[1])))
        at += 3
        if tokens[at][1] == ",":
            at += 1
    return tuple(found), at + 1


def selectors(expr: str, variables: Mapping[str, str] | None = None) -> list[Selector]:
    """Every series selector in a PromQL expression (or a Grafana `label_values(SEL, label)`
    / `query_result(EXPR)` variable query), `$variables` substituted first."""
    text = substitute(expr, variables or {})
    label_values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text, re.S)
    if label_values is not None:
        text = label_values.group(1)
    tokens = [*_tokens(text), ("end", "")]
    found: list[Selector] = []
    i = 0
    while i < len(tokens) - 1:
        kind, value = tokens[i]
        if kind == "ident" and value in _LABEL_LIST and tokens[i + 1][1] == "(":
            i = next(j for j in range(i, len(tokens)) if tokens[j][1] == ")") + 1
        elif kind == "ident" and (tokens[i + 1][1] == "(" or value in _KEYWORDS):
            i += 1
        elif kind == "ident":
            if tokens[i + 1][1] == "{":
                matchers, i = _matchers(tokens, i + 2)
            else:
                matchers, i = (), i + 1
            found.append(Selector(value, matchers))
        elif value == "{":
            matchers, i = _matchers(tokens, i + 1)
            found.append(Selector(None, matchers))
        else:
            i += 1
    return found
