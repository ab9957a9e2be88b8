"""The plan's own questions about itself (`plan.model.Plan`)."""

from __future__ import annotations

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source


def test_a_plan_needs_pods_only_when_a_verdict_reads_them() -> None:
    """`pod startup` and `pod restarts` make the cluster source require its pod watch at
    pre-flight (`cli_run` passes `Plan.needs_pods`); `reaction` and replica counts do not."""
    base = (
        'scenario "s" {\n  watch deployment "d"\n  request h = GET "/h"\n'
        '  phase "p" 10s {\n    rate 1/s\n    send h\n    EXTRA\n  }\n}\n'
    )

    def needs(extra: str) -> bool:
        return compile_source(Source("s.scn", base.replace("EXTRA", extra))).needs_pods

    assert needs("expect pod startup p95 < 30s")
    assert not needs("expect reaction < 30s")
    assert not needs("expect replicas >= 1 within 5s")
    guarded = base.replace("EXTRA", "expect errors < 1%").replace(
        "\n}\n", "\n  abort when pod restarts > 2\n}\n"
    )
    assert compile_source(Source("s.scn", guarded)).needs_pods
