"""The cached LALR parser facade over `grammar/scenario.lark` (found in a checkout or a wheel)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from nimbus_scenarios.resources import data_path

if TYPE_CHECKING:
    from lark import Lark

__all__ = ["grammar_text", "parser"]


def grammar_text() -> str:
    """The grammar source, from the installed package or the checkout."""
    return Path(data_path("grammar") / "scenario.lark").read_text(encoding="utf-8")


@cache
def parser() -> Lark:
    """The LALR parser, built once per process (building takes ~50 ms; parsing is fast)."""
    from lark import Lark

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )
