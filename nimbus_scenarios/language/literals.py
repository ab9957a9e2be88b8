"""Literal values: the text of a VALUE or STRING token to a typed `Literal` (or a `BadLiteral`).

Shared by `syntax` (scenario files) and `params` (`--set name=value` on the command line), so an
override is read by exactly the rules a file is.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

from nimbus_scenarios.language.nodes import NO_SPAN, BadLiteral, Kind, Literal, Span

__all__ = [
    "DURATION_UNITS",
    "RATE_UNITS",
    "SIZE_UNITS",
    "env_name_problem",
    "exponent_problem",
    "parse_string",
    "parse_value",
]

DURATION_UNITS = {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600)}
RATE_UNITS = {"s": Fraction(1), "m": Fraction(1, 60), "h": Fraction(1, 3600)}
SIZE_UNITS = {"KB": Fraction(1024), "MB": Fraction(1024**2), "GB": Fraction(1024**3)}

_NUMBER = re.compile(r"([0-9]+(?:\.[0-9]+)?)(.*)", re.DOTALL)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_STATUS_CLASS = re.compile(r"[1-5]xx")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Common spellings people reach for, mapped to ours, for "did you mean".
_ALIASES = {
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "msec": "ms",
    "millis": "ms",
    "kb": "KB",
    "mb": "MB",
    "gb": "GB",
    "k": "KB",
    "M": "MB",
    "Mi": "MB",
    "MiB": "MB",
    "G": "GB",
    "Gi": "GB",
    "GiB": "GB",
    "KiB": "KB",
    "rps": "/s",
    "qps": "/s",
}
_MAX_DIGITS = 30
# A number with an exponent, and one of our units if it has one: `1e3/s`, `2.5E-3s`, `1e2%`.
_UNIT_WORDS = [*DURATION_UNITS, *SIZE_UNITS, "%", *(f"/{unit}" for unit in RATE_UNITS)]
_EXPONENT = re.compile(
    r"([0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+)(" + "|".join(map(re.escape, ["", *_UNIT_WORDS])) + ")"
)


def parse_value(text: str, span: Span = NO_SPAN) -> Literal | BadLiteral:
    """Classify a number with an optional unit: `12`, `5s`, `1m30s`, `300/m`, `12.5%`, `2xx`."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return BadLiteral(text, f"`{text}` is not a value", span=span)
    digits, unit = match.groups()
    if len(digits) > _MAX_DIGITS:
        return BadLiteral(text, f"the number `{_short(text)}` is too long", span=span)
    number = Fraction(digits)
    if unit == "":
        return Literal(Kind.NUMBER, text, number, span=span)
    if unit == "%":
        return Literal(Kind.PERCENT, text, number, span=span)
    if unit in SIZE_UNITS:
        return Literal(Kind.SIZE, text, number * SIZE_UNITS[unit], span=span)
    if unit.startswith("/"):
        per = unit[1:]
        if per in RATE_UNITS:
            return Literal(Kind.RATE, text, number * RATE_UNITS[per], span=span)
        alias = _ALIASES.get(per)
        return BadLiteral(
            text,
            f"unknown rate unit `{unit}` in `{text}` (use /s, /m or /h)",
            hint=f"{digits}/{alias}" if alias and not alias.startswith("/") else None,
            span=span,
        )
    if _STATUS_CLASS.fullmatch(text):
        return Literal(Kind.STATUS, text, Fraction(int(text[0]) * 100), span=span)
    duration = _duration(text, span)
    if duration is not None:
        return duration
    exponent = exponent_problem(text)
    if exponent is not None:
        return BadLiteral(text, exponent, span=span)
    return BadLiteral(
        text,
        f"unknown unit `{_short(unit)}` in `{_short(text)}` "
        "(durations: ms, s, m, h; rates: /s, /m, /h; sizes: KB, MB, GB; or %)",
        hint=_unit_hint(digits, unit),
        span=span,
    )


_UNIT_ORDER = ("h", "m", "s", "ms")


def _duration(text: str, span: Span) -> Literal | BadLiteral | None:
    """A (compound) duration such as `1m30s`, or None if `text` is not one. The units of a
    compound go from the largest to the smallest and each appears once (`1m1m` and `1s1m` are
    errors that suggest the spelling meant)."""
    total = Fraction(0)
    units: list[str] = []
    position = 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            return None
        if len(part.group(1)) > _MAX_DIGITS:
            return BadLiteral(text, f"the number in `{_short(text)}` is too long", span=span)
        total += Fraction(part.group(1)) * DURATION_UNITS[part.group(2)]
        units.append(part.group(2))
        position = part.end()
    repeated = next((u for u in _UNIT_ORDER if units.count(u) > 1), None)
    if repeated is not None:
        message = (
            f"`{repeated}` appears twice in the duration `{_short(text)}`; give each unit once"
        )
    elif units != sorted(units, key=_UNIT_ORDER.index):
        message = (
            f"the units of the duration `{_short(text)}` must go from the largest to the smallest"
            " (h, m, s, ms)"
        )
    else:
        return Literal(Kind.DURATION, text, total, span=span)
    return BadLiteral(text, message, hint=_duration_text(total), span=span)


def _duration_text(seconds: Fraction) -> str | None:
    """`seconds` written with descending units, each once (`61` -> `1m1s`); None when it would
    be too long to be a useful suggestion."""
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    whole = rest // 1
    parts = [
        (Fraction(hours), "h"),
        (Fraction(minutes), "m"),
        (Fraction(whole), "s"),
        ((rest - whole) * 1000, "ms"),
    ]
    text = "".join(f"{_decimal(v)}{u}" for v, u in parts if v) or "0s"
    return text if len(text) <= 40 else None


def _decimal(value: Fraction) -> str:
    """A non-negative fraction whose denominator divides a power of ten, as decimal digits."""
    whole = value // 1
    rest = value - whole
    digits = ""
    while rest and len(digits) < 40:
        rest *= 10
        digit = rest // 1
        rest -= digit
        digits += str(digit)
    return f"{int(whole)}.{digits}" if digits else str(int(whole))


def exponent_problem(text: str) -> str | None:
    """What to say of a value written with an exponent (`1e3/s`), or None if `text` is not one.

    Values are plain decimals, so the message gives the number written out (`1000/s`) when it
    is short enough to be a value at all."""
    match = _EXPONENT.fullmatch(text)
    if match is None:
        return None
    number, unit = match.groups()
    exponent = int(re.split("[eE]", number)[1])
    written = None
    if abs(exponent) <= _MAX_DIGITS:
        plain = format(Decimal(number), "f")
        written = plain if len(plain) <= _MAX_DIGITS else None
    shown = _short(text)
    if written is None:
        return f"`{shown}`: values are plain decimals, without an exponent"
    return f"`{shown}`: values are plain decimals, without an exponent; write `{written}{unit}`"


def _unit_hint(digits: str, unit: str) -> str | None:
    """The value written with our unit for a common spelling of it (`5sec` -> `5s`)."""
    alias = _ALIASES.get(unit) or _ALIASES.get(unit.lower())
    return None if alias is None else f"{digits}{alias}"


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def parse_string(token: str, span: Span = NO_SPAN) -> Literal | BadLiteral:
    """The value of a double-quoted string token, with `\\"`, `\\\\`, `\\n` and `\\t` escapes."""
    body = token[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            escaped = _ESCAPES.get(body[index + 1])
            if escaped is None:
                return BadLiteral(
                    token,
                    f'unknown escape `\\{body[index + 1]}` in a string (use \\", \\\\, \\n or \\t)',
                    span=span,
                )
            out.append(escaped)
            index += 2
            continue
        out.append(char)
        index += 1
    return Literal(Kind.STRING, token, string="".join(out), span=span)


def env_name_problem(name: str) -> str | None:
    """What is wrong with `name` as the variable of `env("NAME")`, or None for a good name:
    letters, digits and `_`, not starting with a digit (what a shell can export)."""
    if _ENV_NAME.fullmatch(name):
        return None
    rule = "names are letters, digits and `_`, not starting with a digit"
    if not name:
        return f"`env(...)` needs the name of an environment variable; {rule}"
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in _short(name)
    )
    return f"`{shown}` is not an environment variable name; {rule}"
