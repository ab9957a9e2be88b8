"""How long a run lasts: its phases, and what the run waits for past them.

A replica window (`within D` from its scope's start), a `reaction` or a `pod startup` (up to D
past its scope's end) may end after the last phase; the run then waits for it. The plan computes
each expectation's end with `waits_until` (`Plan.duration_s` is the latest of them and the
phases' end), and validation holds the same ends to the limit on a run's length, so that a file
that validates never plans a run past `MAX_DURATION_S`.
"""

from __future__ import annotations

from fractions import Fraction

from nimbus_scenarios.language.nodes import WindowKind
from nimbus_scenarios.language.vocabulary import ExpectationKind

__all__ = ["waits_until"]

_WAIT_PAST_SCOPE = frozenset({ExpectationKind.REACTION, ExpectationKind.POD_STARTUP})


def waits_until(
    kind: ExpectationKind,
    window: WindowKind | None,
    *,
    start: Fraction,
    end: Fraction,
    value: Fraction,
    width: Fraction | None = None,
) -> Fraction | None:
    """The run offset until which an expectation over the scope [`start`, `end`) is watched,
    or None when it needs nothing past the load it judges.

    `value` is the expectation's value (for `reaction` and `pod startup`, the longest wait D) and
    `width` the D of `within D`. `NAME succeeds` (only in `before` and `after`) has no offset.
    """
    if kind in _WAIT_PAST_SCOPE:
        return end + value
    if kind is ExpectationKind.SUCCEEDS or window is None:
        return None
    if window is WindowKind.WITHIN:
        if width is None:
            raise ValueError("`within` needs its width")
        return start + width
    return end
