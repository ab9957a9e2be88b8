"""The results codec: frozen dataclasses to JSON data and back, strict about every field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import ClassVar, NamedTuple

import pytest

from nimbus_scenarios.results.codec import FLAT, DecodeError, JsonValue, decode, encode


class Colour(StrEnum):
    """A closed set written as its value."""

    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    """A closed set written as its number."""

    LOW = 1
    HIGH = 2


class Pair(NamedTuple):
    """Written as an array."""

    t: float
    n: int


@dataclass(frozen=True, slots=True)
class Inner:
    """Flattened into its parent."""

    a: int = 0
    b: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outer:
    """Every shape the codec knows."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"maybe"})

    name: str
    colour: Colour
    level: Level
    when: dt.datetime
    pairs: tuple[Pair, ...]
    fixed: tuple[str, float]
    by_status: Mapping[int, int]
    by_name: Mapping[str, Inner]
    optional: float | None
    maybe: str | None = None
    inner: Inner = field(metadata=FLAT)
    extra: tuple[str, ...] = field(default=())


def sample() -> Outer:
    """A value using every shape."""
    return Outer(
        name="x",
        colour=Colour.BLUE,
        level=Level.HIGH,
        when=dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC),
        pairs=(Pair(0.5, 1), Pair(2.0, 3)),
        fixed=("p95", 1.5),
        by_status={200: 3, 503: 1},
        by_name={"k": Inner(1, "y")},
        optional=None,
        inner=Inner(7, "z"),
    )


def test_encode_writes_each_shape_as_json_has_it() -> None:
    """Enums by value, tuples as arrays, int keys as strings, flat fields inline, None omitted
    where the class says so."""
    assert encode(sample()) == {
        "name": "x",
        "colour": "blue",
        "level": 2,
        "when": "2026-11-29T12:00:00+00:00",
        "pairs": [[0.5, 1], [2.0, 3]],
        "fixed": ["p95", 1.5],
        "by_status": {"200": 3, "503": 1},
        "by_name": {"k": {"a": 1, "b": "y"}},
        "optional": None,
        "a": 7,
        "b": "z",
        "extra": [],
    }


def test_decode_reverses_encode() -> None:
    """What is written reads back equal."""
    assert decode(Outer, encode(sample())) == sample()


def broken(path: tuple[str | int, ...], value: JsonValue) -> JsonValue:
    """The sample's JSON with the value at `path` replaced (or removed when `value` is ...)."""
    data = encode(sample())
    target: JsonValue = data
    for key in path[:-1]:
        target = target[key]  # type: ignore[index, call-overload]
    assert isinstance(target, dict | list)
    if value is Ellipsis:
        del target[path[-1]]  # type: ignore[arg-type]
    else:
        target[path[-1]] = value  # type: ignore[index, call-overload]
    return data


@pytest.mark.parametrize(
    ("path", "value", "where", "why"),
    [
        (("name",), 3, "$.name", "expected a string, found a number"),
        (("colour",), "green", "$.colour", "expected one of 'red', 'blue'"),
        (("level",), True, "$.level", "expected one of 1, 2"),
        (("pairs", 1, 1), 2.5, "$.pairs[1][1]", "expected a whole number"),
        (("pairs", 0), [1.0], "$.pairs[0]", "expected an array of 2"),
        (("fixed",), ["p95"], "$.fixed", "expected an array of 2, found 1"),
        (("by_status",), {"ok": 1}, "$.by_status['ok']", "expected a whole number as the key"),
        (("by_name", "k", "a"), "1", "$.by_name['k'].a", "expected a whole number"),
        (("optional",), True, "$.optional", "expected a number, found a boolean"),
        (("when",), "yesterday", "$.when", "expected an ISO 8601 date and time"),
        (("name",), ..., "$.name", "missing"),
        (("surprise",), 1, "$.surprise", "unknown field"),
        (("a",), "x", "$.a", "expected a whole number"),
    ],
)
def test_decode_names_the_path_of_a_wrong_field(
    path: tuple[str | int, ...], value: JsonValue, where: str, why: str
) -> None:
    """A wrong, missing or unknown field is an error naming its JSON path."""
    with pytest.raises(DecodeError) as caught:
        decode(Outer, broken(path, value))
    assert caught.value.path == where
    assert why in str(caught.value)


def test_missing_fields_with_defaults_and_omitted_nones_are_filled_in() -> None:
    """Fields with a default, and omitted-if-None fields, may be absent."""
    data = broken(("extra",), ...)
    assert isinstance(data, dict)
    data.pop("b")
    value = decode(Outer, data)
    assert value.maybe is None
    assert value.extra == ()
    assert value.inner == Inner(7, "")


def test_hooks_replace_a_type_both_ways() -> None:
    """A hook encodes and decodes its type where context is needed."""
    data = encode(sample(), {Inner: lambda inner: f"{inner.a}:{inner.b}"})
    assert isinstance(data, dict)
    assert data["by_name"] == {"k": "1:y"}
    back = decode(
        Mapping[str, Inner],  # type: ignore[type-abstract]
        {"k": "4:w"},
        hooks={Inner: lambda value, _path: Inner(int(str(value)[0]), str(value)[2:])},
    )
    assert back == {"k": Inner(4, "w")}


def test_whole_numbers_stay_whole_for_float_fields() -> None:
    """A float field written as 10000 reads back as 10000, so the text round-trips."""
    data = encode(sample())
    assert isinstance(data, dict)
    data["optional"] = 10000
    value = decode(Outer, data)
    assert value.optional == 10000
    assert encode(value) == data
