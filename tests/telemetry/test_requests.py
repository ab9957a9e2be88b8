"""Tests of `_requests`: the URL a request span shows, and the hot path without a collector."""

from __future__ import annotations

from nimbus_scenarios.engine.request import prepare
from nimbus_scenarios.plan.model import Template, Text
from nimbus_scenarios.secrets import MASK
from nimbus_scenarios.telemetry._requests import shown_url


def _template(*query: tuple[str, Text], path: str = "/process") -> Template:
    return Template(name="t", method="post", path=path, query=query)


def test_secret_and_env_query_values_show_the_one_mask() -> None:
    """Secret and `env(...)` query values are `secrets.MASK`, written readably; others as sent."""
    template = _template(
        ("cpu", Text("5")),
        ("token", Text("", env="NIMBUS_TOKEN")),
        ("key", Text("s3cr3t", secret=True)),
    )
    shown = shown_url("http://127.0.0.1:8000", template)
    assert shown == f"http://127.0.0.1:8000/process?cpu=5&token={MASK}&key={MASK}"
    assert "s3cr3t" not in shown


def test_values_are_encoded_as_prepare_sends_them() -> None:
    """Non-secret values (spaces, ampersands, unicode) and a query in the path read as sent."""
    template = _template(("q", Text("a b&c")), ("u", Text("é")), path="/search?fixed=1")
    sent = prepare("POST", "http://h:81/api/", "/search?fixed=1", [("q", "a b&c"), ("u", "é")])
    assert shown_url("http://h:81/api/", template) == sent.url


def test_a_password_in_the_target_is_masked() -> None:
    """`user:password@` in the base URL shows the password as the mask."""
    shown = shown_url("https://bob:hunter2@target.test", _template(("a", Text("1"))))
    assert shown == f"https://bob:{MASK}@target.test/process?a=1"


def test_a_base_that_is_not_a_url_is_shown_as_written() -> None:
    """A base URL `prepare` refuses still gives a readable URL (nothing sent has it anyway)."""
    assert shown_url("target.test/", _template()) == "target.test/process"
