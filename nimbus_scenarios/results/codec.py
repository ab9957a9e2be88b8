"""Frozen dataclasses to JSON values and back, driven by their type hints.

One codec for every type of the results document (and the plan it embeds), so that no type
has a hand-written `to_json` that can drift from its `from_json`:

- a dataclass is an object of its fields, in order (a field named in the class's
  `OMIT_IF_NONE` is left out when None; a field with `metadata=FLAT` has its own fields
  written into its parent's object); a `NamedTuple` is an array;
- `tuple[X, ...]` and `tuple[X, Y]` are arrays; `Mapping[str | int, X]` is an object (int keys
  written as strings); a `StrEnum` is its value, an `IntEnum` its number; a `datetime` is ISO
  8601; `X | None` is X or null.

Decoding is strict: a value of the wrong type, a missing field or an unknown one raises
`DecodeError` naming its JSON path (`$.phases[2].sent`). Numbers must be finite and at most
`MAX_NUMBER` in size (a 4,000-digit count would overflow the arithmetic that reads it); booleans
are not numbers. `hooks` replace the codec for a type where the JSON needs context (an expectation
refers to the plan it belongs to).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum, IntEnum
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

__all__ = [
    "FLAT",
    "MAX_NUMBER",
    "DecodeError",
    "Decoder",
    "Encoder",
    "JsonValue",
    "decode",
    "encode",
]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
"""What `json.loads` returns and `json.dumps` takes."""

Encoder = Callable[[Any], JsonValue]
"""Encodes one value of the type it is registered for."""

Decoder = Callable[[JsonValue, str], Any]
"""Decodes the JSON value at a path into the type it is registered for."""

_T = TypeVar("_T")

MAX_NUMBER = 2**53
"""The largest number (in size) a document may hold: the largest integer a double holds exactly.
No count, offset, rate or latency of a run comes near it."""


_FLAT = "nimbus.flat"

FLAT: Mapping[str, bool] = types.MappingProxyType({_FLAT: True})
"""Field metadata (`field(metadata=FLAT)`): the value's fields are written into its parent's
JSON object."""


class DecodeError(ValueError):
    """A JSON value that does not fit the type expected at `path`."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


# ------------------------------------------------------------------------------- encoding


def encode(value: object, hooks: Mapping[type, Encoder] | None = None) -> JsonValue:
    """`value` as JSON data."""
    return _encode(value, hooks or {})


def _encode(value: object, hooks: Mapping[type, Encoder]) -> JsonValue:
    hook = hooks.get(type(value))
    if hook is not None:
        return hook(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return int(value) if isinstance(value, IntEnum) else str(value.value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        omit: frozenset[str] = getattr(value, "OMIT_IF_NONE", frozenset())
        data: dict[str, JsonValue] = {}
        for item in dataclasses.fields(value):
            member = getattr(value, item.name)
            if member is None and item.name in omit:
                continue
            encoded = _encode(member, hooks)
            if item.metadata.get(_FLAT) and isinstance(encoded, dict):
                data.update(encoded)
            else:
                data[item.name] = encoded
        return data
    if isinstance(value, Mapping):
        return {str(_encode(k, hooks)): _encode(v, hooks) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(item, hooks) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# ------------------------------------------------------------------------------- decoding


def decode(
    kind: type[_T], data: JsonValue, *, hooks: Mapping[type, Decoder] | None = None, path: str = "$"
) -> _T:
    """`data` as a `kind`; raises `DecodeError` where it does not fit."""
    result: _T = _decode(kind, data, path, hooks or {})
    return result


def _what(data: object) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, list):
        return "an array"
    return "an object"


def _decode(kind: Any, data: JsonValue, path: str, hooks: Mapping[type, Decoder]) -> Any:
    hook = hooks.get(kind) if isinstance(kind, type) else None
    if hook is not None:
        return hook(data, path)
    origin = get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        return _decode_union(kind, data, path, hooks)
    if origin is tuple:
        return _decode_tuple(kind, data, path, hooks)
    if origin is Mapping or origin is dict:
        return _decode_mapping(kind, data, path, hooks)
    if kind is type(None):
        if data is not None:
            raise DecodeError(path, f"expected null, found {_what(data)}")
        return None
    if not isinstance(kind, type):
        raise TypeError(f"cannot decode into {kind!r}")
    if issubclass(kind, Enum):
        return _decode_enum(kind, data, path)
    if kind is bool:
        if not isinstance(data, bool):
            raise DecodeError(path, f"expected true or false, found {_what(data)}")
        return data
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(path, f"expected a whole number, found {_what(data)}")
        _check_size(data, path)
        return data
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DecodeError(path, f"expected a number, found {_what(data)}")
        if isinstance(data, float) and not math.isfinite(data):
            raise DecodeError(path, "expected a finite number")
        _check_size(data, path)
        # A whole number stays an int (an int is a float to the type checker): the document
        # then reads back to the same text it was written from.
        return data
    if kind is str:
        if not isinstance(data, str):
            raise DecodeError(path, f"expected a string, found {_what(data)}")
        return data
    if kind is dt.datetime:
        return _decode_datetime(data, path)
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return _decode_named_tuple(kind, data, path, hooks)
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, data, path, hooks)
    raise TypeError(f"cannot decode into {kind!r}")


def _check_size(number: int | float, path: str) -> None:
    if not -MAX_NUMBER <= number <= MAX_NUMBER:
        raise DecodeError(path, "a number too large to be a count, time or rate (over 2^53)")


def _decode_union(kind: Any, data: JsonValue, path: str, hooks: Mapping[type, Decoder]) -> Any:
    members = [m for m in get_args(kind) if m is not type(None)]
    if data is None and len(members) < len(get_args(kind)):
        return None
    if len(members) != 1:
        raise TypeError(f"only `X | None` unions can be decoded, not {kind!r}")
    return _decode(members[0], data, path, hooks)


def _decode_tuple(
    kind: Any, data: JsonValue, path: str, hooks: Mapping[type, Decoder]
) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise DecodeError(path, f"expected an array, found {_what(data)}")
    args = get_args(kind)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], item, f"{path}[{i}]", hooks) for i, item in enumerate(data))
    if len(data) != len(args):
        raise DecodeError(path, f"expected an array of {len(args)}, found {len(data)} items")
    return tuple(
        _decode(arg, item, f"{path}[{i}]", hooks)
        for i, (arg, item) in enumerate(zip(args, data, strict=True))
    )


def _decode_mapping(
    kind: Any, data: JsonValue, path: str, hooks: Mapping[type, Decoder]
) -> dict[Any, Any]:
    if not isinstance(data, dict):
        raise DecodeError(path, f"expected an object, found {_what(data)}")
    key_kind, value_kind = get_args(kind)
    result: dict[Any, Any] = {}
    for key, value in data.items():
        where = f"{path}[{key!r}]"
        if key_kind is int:
            if not (key.isdigit() or (key[:1] == "-" and key[1:].isdigit())) or len(key) > 18:
                raise DecodeError(where, "expected a whole number as the key")
            result[int(key)] = _decode(value_kind, value, where, hooks)
        else:
            result[_decode(key_kind, key, where, hooks)] = _decode(value_kind, value, where, hooks)
    return result


def _decode_enum(kind: type[Enum], data: JsonValue, path: str) -> Enum:
    if issubclass(kind, IntEnum):
        if isinstance(data, int) and not isinstance(data, bool):
            try:
                return kind(data)
            except ValueError:
                pass
    elif isinstance(data, str):
        try:
            return kind(data)
        except ValueError:
            pass
    allowed = ", ".join(repr(member.value) for member in kind)
    raise DecodeError(path, f"expected one of {allowed}, found {_what(data)} {data!r}"[:300])


def _decode_datetime(data: JsonValue, path: str) -> dt.datetime:
    if isinstance(data, str):
        try:
            return dt.datetime.fromisoformat(data)
        except ValueError:
            pass
    raise DecodeError(path, "expected an ISO 8601 date and time")


def _decode_named_tuple(
    kind: type[tuple[Any, ...]], data: JsonValue, path: str, hooks: Mapping[type, Decoder]
) -> tuple[Any, ...]:
    hints = _hints(kind)
    names: tuple[str, ...] = getattr(kind, "_fields", ())
    if not isinstance(data, list) or len(data) != len(names):
        raise DecodeError(path, f"expected an array of {len(names)} ({', '.join(names)})")
    values = [
        _decode(hints[name], item, f"{path}[{i}]", hooks)
        for i, (name, item) in enumerate(zip(names, data, strict=True))
    ]
    return kind(*values)


def _decode_dataclass(kind: Any, data: JsonValue, path: str, hooks: Mapping[type, Decoder]) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(path, f"expected an object, found {_what(data)}")
    hints = _hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    flat = {name: hints[name] for name, f in fields.items() if f.metadata.get(_FLAT)}
    inner = {name: {f.name for f in dataclasses.fields(flat[name])} for name in flat}
    known = set(fields) - set(flat)
    for names in inner.values():
        known |= names
    unknown = sorted(set(data) - known)
    if unknown:
        raise DecodeError(f"{path}.{unknown[0]}", "unknown field")
    omit: frozenset[str] = getattr(kind, "OMIT_IF_NONE", frozenset())
    values: dict[str, object] = {}
    for name, item in fields.items():
        where = f"{path}.{name}"
        if name in flat:
            part = {key: value for key, value in data.items() if key in inner[name]}
            values[name] = _decode(flat[name], part, path, hooks)
        elif name in data:
            values[name] = _decode(hints[name], data[name], where, hooks)
        elif name in omit:
            values[name] = None
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise DecodeError(where, "missing")
    return kind(**values)


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)
