"""Frozen, typed syntax nodes: what `syntax` produces from text and every later stage reads.

Each node carries our own `Span` (not lark's `Meta`), excluded from equality so that two parses of
differently formatted but equivalent text compare equal (`parse(fmt(x)) == parse(x)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Span:
    """A region of the source: 1-based line and column of its start, and of its end (exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int


NO_SPAN = Span(0, 0, 0, 0)


class Kind(StrEnum):
    """The kinds of value the language knows; `--set` overrides must keep a param's kind."""

    NUMBER = "number"
    DURATION = "duration"
    RATE = "rate"
    PERCENT = "percentage"
    SIZE = "size"
    STRING = "string"
    BOOL = "bool"
    STATUS = "status class"


@dataclass(frozen=True, slots=True)
class Literal:
    """A typed literal. `exact` is the value in base units (seconds, per second, bytes, percent).

    `text` keeps the spelling so `fmt` prints `300/m` as written; `exact` is a fraction so that
    plans count requests without float drift (`0.1/s` for `30s` is exactly 3 requests).
    """

    kind: Kind
    text: str
    exact: Fraction = Fraction(0)
    string: str = ""
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def number(self) -> float:
        """The value in base units as a float."""
        return float(self.exact)


@dataclass(frozen=True, slots=True)
class BadLiteral:
    """A value the syntax stage could read but not understand (`5sec`); validation reports it."""

    text: str
    message: str
    hint: str | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ParamRef:
    """`$name`: the value of a param, resolved by `params` before validation's kind checks."""

    name: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EnvRef:
    """`env("NAME")`: an environment variable read when the run starts; always a secret string."""

    variable: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Value = Literal | BadLiteral | ParamRef | EnvRef


class Comparator(StrEnum):
    """The comparison operators of expectations and guards."""

    EQ = "=="
    NE = "!="
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"

    def holds(self, left: float, right: float) -> bool:
        """Whether `left CMP right`."""
        match self:
            case Comparator.EQ:
                return left == right
            case Comparator.NE:
                return left != right
            case Comparator.GE:
                return left >= right
            case Comparator.LE:
                return left <= right
            case Comparator.GT:
                return left > right
            case Comparator.LT:
                return left < right


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier as written, with where it was written."""

    text: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Header:
    """`header "Name" = value`, in `settings` or a request block."""

    name: Value
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Query:
    """`query KEY = value` in a request block."""

    key: Name
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """`request NAME = METHOD "PATH" { ... }`."""

    name: Name
    method: str
    path: Value
    queries: tuple[Query, ...] = ()
    headers: tuple[Header, ...] = ()
    bodies: tuple[Value, ...] = ()
    expect_status: tuple[Value, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


class StressOption(StrEnum):
    """The words of a `stress` request."""

    CPU = "cpu"
    MEMORY = "memory"
    FOR = "for"
    SYNC = "sync"
    ASYNC = "async"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class StressSetting:
    """One word of a stress request, with its value for `cpu`, `memory` and `for`."""

    option: StressOption
    value: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StressRequest:
    """`request NAME = stress [cpu N] [memory SIZE] for D [sync|async] [keep]`."""

    name: Name
    settings: tuple[StressSetting, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Request = HttpRequest | StressRequest


# ---------------------------------------------------------------- expectations and guards


class WindowKind(StrEnum):
    """How a replica expectation is judged over time."""

    WITHIN = "within"
    THROUGHOUT = "throughout"
    AT_END = "at end"


@dataclass(frozen=True, slots=True)
class Window:
    """`within D`, `throughout` or `at end`."""

    kind: WindowKind
    duration: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """`expect SUBJECT [of NAME] CMP VALUE [window]`: subject words are checked by validation;
    `request` is the `of NAME` template the statistic is limited to (None: every request)."""

    subject: tuple[Name, ...]
    comparator: Comparator
    value: Value
    window: Window | None = None
    request: Name | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Succeeds:
    """`expect NAME succeeds [within D]` (`before`/`after` only)."""

    request: Name
    within: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Expectation = Compare | Succeeds


@dataclass(frozen=True, slots=True)
class Abort:
    """`abort when SUBJECT [of NAME] CMP VALUE [over D]`; `request` as in `Compare`."""

    subject: tuple[Name, ...]
    comparator: Comparator
    value: Value
    over: Value | None = None
    request: Name | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- phases


class ShapeKind(StrEnum):
    """The load shapes of a phase."""

    RATE = "rate"
    RAMP = "ramp"
    STEPS = "steps"
    USERS = "users"
    BURST = "burst"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Shape:
    """A load shape; `args` in the order written (`steps R1 -> R2 in N` has three)."""

    kind: ShapeKind
    args: tuple[Value | None, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Spike:
    """`spike R for D at T`."""

    rate: Value
    duration: Value
    at: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Weighted:
    """One entry of a `send` mix: a template and its weight (None: the only entry, 100%)."""

    weight: Value | None
    request: Name
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Send:
    """`send a` / `send 70% a, 30% b` / (in cleanup) `send METHOD "PATH"`."""

    mix: tuple[Weighted, ...] = ()
    method: str | None = None
    path: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Kill:
    """`at T kill N pods`."""

    at: Value
    count: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Phase:
    """`phase "NAME" DURATION { ... }`: its statements grouped by kind, each in written order."""

    name: Value
    duration: Value
    shapes: tuple[Shape, ...] = ()
    spikes: tuple[Spike, ...] = ()
    sends: tuple[Send, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    kills: tuple[Kill, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    end: Span = field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- scenario


@dataclass(frozen=True, slots=True)
class Param:
    """`param NAME = VALUE`."""

    name: Name
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Setting:
    """One `settings` line other than `header`."""

    key: str
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    """A `settings { ... }` block."""

    settings: tuple[Setting, ...] = ()
    headers: tuple[Header, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    end: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Watch:
    """`watch deployment "NAME" [namespace "NS"]`."""

    deployment: Value
    namespace: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Block:
    """A `before`, `after` or `cleanup` block: its statements in order, and where it ends."""

    items: tuple[Expectation, ...] | tuple[Send, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    end: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole scenario file. Statements are grouped by kind, each list in written order.

    Repeated single statements (two `target` lines) are kept so validation can report them.
    """

    name: Value
    descriptions: tuple[Value, ...] = ()
    targets: tuple[Value, ...] = ()
    watches: tuple[Watch, ...] = ()
    params: tuple[Param, ...] = ()
    settings: tuple[Settings, ...] = ()
    requests: tuple[Request, ...] = ()
    befores: tuple[Block, ...] = ()
    phases: tuple[Phase, ...] = ()
    afters: tuple[Block, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    aborts: tuple[Abort, ...] = ()
    cleanups: tuple[Block, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    end: Span = field(default=NO_SPAN, compare=False, repr=False)
