"""The HTML report: one self-contained page per results document, readable offline.

`render_html(results)` lays out `report.page`'s content and `report.charts`' SVG with the
Jinja2 templates in `report/templates/` (autoescape on: every string from the document is
escaped by the template engine, once, and only markup built by the SVG kit is inserted as it
is). The CSS and the hover read-out's JavaScript in `report/assets/` are inlined; the page loads
nothing, and a Content-Security-Policy `<meta>` forbids every fetch and lets only those two run,
by their SHA-256 hashes, so a string that slipped past escaping still could not execute.

The per-second data for the hover read-out is a `<script type="application/json">` island
written by Jinja's `tojson`, which escapes `<`, `>`, `&` and `'`, so no string can close it.

Its place: the top of the `report` package, next to `junit`; `report.files` writes both.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from nimbus_scenarios.report._format import printable, verdict_word
from nimbus_scenarios.report.charts import draw
from nimbus_scenarios.report.page import badge_class, build_page
from nimbus_scenarios.report.timeline import build_timeline
from nimbus_scenarios.results.io import SCHEMA_VERSION
from nimbus_scenarios.results.model import RunResults

__all__ = ["asset", "render_html"]

_PACKAGE = "nimbus_scenarios.report"


@functools.cache
def asset(name: str) -> str:
    """A static file of the report shipped in the package (`report.css`, `report.js`), without
    its final newline, exactly as it is inlined and hashed."""
    path = resources.files(_PACKAGE) / "assets" / name
    return path.read_text(encoding="utf-8").rstrip("\n")


def _csp_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@functools.cache
def _csp() -> str:
    return (
        "default-src 'none'; "
        f"style-src {_csp_source(asset('report.css'))}; "
        f"script-src {_csp_source(asset('report.js'))}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader(_PACKAGE, "templates"),
        # On for every template whatever its name: the pages hold nothing but HTML.
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["badge_class"] = badge_class
    env.filters["verdict_word"] = verdict_word
    # `tojson` for the data island: compact, and refusing NaN, which JSON.parse would reject.
    env.policies["json.dumps_kwargs"] = {
        "sort_keys": True,
        "allow_nan": False,
        "separators": (",", ":"),
    }
    return env


def render_html(results: RunResults) -> str:
    """The self-contained HTML report of one results document."""
    timeline = build_timeline(results)
    page = build_page(results, timeline.markers, SCHEMA_VERSION)
    drawing = draw(timeline, per_request=page.per_request is not None)
    text = (
        _environment()
        .get_template("report.html.j2")
        .render(
            page=page,
            charts=drawing.svgs,
            request_chart=drawing.requests,
            hover=drawing.hover,
            csp=_csp(),
            # The assets are the page's own code: inlined as they are, or their hashes break.
            css=Markup(asset("report.css")),
            js=Markup(asset("report.js")),
        )
    )
    # A lone surrogate (possible in a JSON string) would stop the page from being encoded.
    return printable(text)
