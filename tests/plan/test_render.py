"""`plan.render`: passwords in URLs never reach `plan`'s table or its JSON, wherever in the plan
they are written; plans without one print exactly as before (the golden corpora pin that)."""

from __future__ import annotations

import json

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.render import plan_json, plan_table

SCENARIO = """\
scenario "cred" {
  description "runbook https://ops:pw1@wiki.example/x"
  target "http://admin:hunter2@svc:8000"
  param upstream = "http://q:pw2@upstream"
  request a = GET "/x?next=http://u:pw3@h" {
    header "X-Forward" = "http://u:pw4@h"
    query to = $upstream
    body "postgres://db:pw5@db/q"
  }
  phase "p" 10s {
    rate 1/s
    send a
  }
}
"""
PASSWORDS = ("hunter2", "pw1", "pw2", "pw3", "pw4", "pw5")


def test_passwords_in_urls_are_masked_in_the_table_and_the_json() -> None:
    """Target, description, params, paths, header, query and body values: `***` in both."""
    plan = compile_source(Source("cred.scn", SCENARIO))
    table = plan_table(plan)
    text = json.dumps(plan_json(plan))
    for password in PASSWORDS:
        assert password not in table
        assert password not in text
    assert "target   http://admin:***@svc:8000" in table
    assert plan_json(plan)["target"] == "http://admin:***@svc:8000"
    assert plan_json(plan)["params"] == {"upstream": "http://q:***@upstream"}


def test_the_plan_stored_in_results_is_masked_the_same_way() -> None:
    """`Plan.masked()` (what a results document embeds) holds none of the passwords either,
    and keeps the phases and expectations it was given."""
    plan = compile_source(Source("cred.scn", SCENARIO))
    masked = plan.masked()
    stored = repr(masked)
    for password in PASSWORDS:
        assert password not in stored
    assert masked.phases is plan.phases
    assert masked.templates["a"].path == "/x?next=http://u:***@h"
