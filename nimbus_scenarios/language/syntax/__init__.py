"""Text to nodes: read a scenario file, parse it with lark, and build frozen `nodes`.

One module per step, in the order `parse` runs them:

    source.py    bytes to a `Source`; missing, binary, empty and huge inputs refused before lark
    diagnose.py  lark's errors to ours: a caret, what was expected, "did you mean", the open block
    build.py     lark's tree to frozen nodes with our own spans

Only `parse` here knows all three; every error leaves as a `ScenarioError`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.language.grammar import parser
from nimbus_scenarios.language.syntax.build import build_scenario
from nimbus_scenarios.language.syntax.diagnose import syntax_diagnostic
from nimbus_scenarios.language.syntax.source import (
    MAX_FILE_BYTES,
    decode,
    read_source,
    refuse_unparseable,
)

__all__ = ["MAX_FILE_BYTES", "decode", "parse", "parse_file", "read_source"]


def parse_file(path: str | Path) -> n.Scenario:
    """Read and parse one scenario file."""
    return parse(read_source(path))


def parse(source: Source) -> n.Scenario:
    """Parse scenario text into nodes, raising `ScenarioError` for any syntax problem."""
    refuse_unparseable(source)
    # lark is imported on the first parse, not with the package: later stages import `language`
    # for its nodes and vocabulary and never parse.
    from lark.exceptions import UnexpectedInput

    with _collector_paused():
        try:
            tree = parser().parse(source.text)
        except UnexpectedInput as exc:
            raise ScenarioError(source, [syntax_diagnostic(source, exc)]) from None
        return build_scenario(tree)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a file's tree is built and read.

    Parsing allocates a few objects per byte and frees none of them until the tree is built,
    so the collector would scan the growing tree again and again: half the parse time on a
    1 MB file, and growing faster than the file. Trees hold no cycles (reference counting
    frees them), and the input is size-limited, so nothing piles up while it is paused."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
