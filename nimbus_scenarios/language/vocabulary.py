"""The language's vocabulary: its closed sets of words, their meanings and its limits.

Every stage that needs to know what a subject means, which words are reserved or how far a value
may go imports it from here: validation checks against it, the plan keeps its enums, the judge
and the runner act on them.
"""

from __future__ import annotations

import re
from enum import StrEnum

from nimbus_scenarios.language import nodes as n

__all__ = [
    "DEFAULT_MAX_RATE",
    "GUARD_SUBJECTS",
    "LATENCY_SUBJECTS",
    "MAX_DURATION_S",
    "MAX_PHASES",
    "MAX_RATE_CEILING",
    "MAX_SCENARIO_NAME",
    "MAX_STAIRS",
    "MAX_USERS",
    "MAX_USERS_PER_PROCESS",
    "MEMORY_IN_FLIGHT_CEILING_MB",
    "METRIC_SUBJECTS",
    "POD_STARTUP_STATISTICS",
    "POD_STARTUP_SUBJECTS",
    "REPLICA_SUBJECTS",
    "RESERVED",
    "SCALING_SUBJECTS",
    "SCENARIO_NAME",
    "STRESS_RANGES",
    "ExpectationKind",
    "GuardSubject",
    "Subject",
    "subject_kind",
]

DEFAULT_MAX_RATE = 20_000
"""Requests per second one process may be asked for unless `--max-rate` raises it: what one
worker holds with margin. With the default transport (`lean`) on uvloop one process held
24,000/s with p99 send lateness under 2 ms, and over 30,000/s at 99% achieved, on one core of
this machine (`bench/peers.py`, docs/performance.md); 20,000/s leaves a sixth of headroom for a
slower target, a busier node and the results' own work. With `--transport aiohttp` one process
holds 8,000/s (6,000/s with clean lateness): lower the cap or add `--workers` there."""
MAX_RATE_CEILING = 1_000_000
"""The highest `--max-rate`: one process falls behind at about 30,000/s on a core
(docs/performance.md), so a cap of a million per second is already no cap; `1e308` is a typo or
a way round the cap. Shard the run for more."""

MAX_PHASES = 1_000
"""Phases in a scenario: each costs about a third of a millisecond to parse, validate, compile
and print, so 1,000 plan in well under a second, and no run needs more (a day in one-minute
phases is 1,440; write it as a `steps` shape)."""
MAX_STAIRS = 20_000
"""Stairs of all `steps` shapes together: each is a piece of the compiled timeline, and
10,000 phases of `steps ... in 10000` would take minutes and gigabytes to compile."""
MEMORY_IN_FLIGHT_CEILING_MB = 64 * 1024
"""Stress memory a plan may hold in flight at its peak (rate x hold time x size) before `run`
refuses it, unless `--i-know` or `settings { memory_in_flight SIZE }` says it is meant."""
MAX_DURATION_S = 7 * 24 * 3600
"""A run longer than a week is a mistake (`1000h`), refused before anything is scheduled."""
MAX_USERS = 100_000
"""The most users a `users N` phase may name, over every shard."""
MAX_USERS_PER_PROCESS = 10_000
"""The most users one process runs (`users N` divided by `--shards`): each is a task with its
own request in flight, and 100,000 in one process took about 1 GB and blocked the event loop
for seconds (so a stop or `--max-duration` acted late). Shard the run for more."""

MAX_SCENARIO_NAME = 100
SCENARIO_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
"""A scenario's name (with `fullmatch`, at most `MAX_SCENARIO_NAME` characters): ASCII letters,
digits, `-`, `_` and `.`, not starting with `.`. It names the results file
(`results/<scenario>-<run id>.json`), so it may hold no `/`, `..` or anything a shell or a file
system reads in its own way."""

LATENCY_SUBJECTS = ("p50", "p90", "p95", "p99", "max", "mean")
METRIC_SUBJECTS = (*LATENCY_SUBJECTS, "errors", "achieved")
REPLICA_SUBJECTS = ("replicas", "ready replicas", "desired replicas")
POD_STARTUP_STATISTICS = ("p50", "p90", "p95", "p99", "max")
"""The statistics `pod startup` takes (no `mean`: one slow pod is what it is there to show)."""
POD_STARTUP_SUBJECTS = tuple(f"pod startup {s}" for s in POD_STARTUP_STATISTICS)
SCALING_SUBJECTS = ("reaction", *POD_STARTUP_SUBJECTS)
"""Judged on what the replica source recorded of the autoscaler and the pods (need `watch`)."""
GUARD_SUBJECTS = ("errors", *LATENCY_SUBJECTS, "replicas", "pod restarts")

# The consumer's own ranges (consumer-api.md): outside them it answers 422.
STRESS_RANGES = {
    n.StressOption.CPU: (1, 10),
    n.StressOption.MEMORY: (10, 500),
    n.StressOption.FOR: (1, 60),
}

RESERVED = frozenset(
    [
        "scenario",
        "description",
        "target",
        "watch",
        "deployment",
        "namespace",
        "param",
        "settings",
        "request",
        "stress",
        "cpu",
        "memory",
        "for",
        "sync",
        "async",
        "keep",
        "before",
        "after",
        "phase",
        "expect",
        "abort",
        "when",
        "cleanup",
        "rate",
        "ramp",
        "steps",
        "in",
        "users",
        "think",
        "burst",
        "every",
        "idle",
        "spike",
        "at",
        "send",
        "kill",
        "pods",
        "replicas",
        "ready",
        "desired",
        "within",
        "throughout",
        "end",
        "over",
        "of",
        "succeeds",
        "timeout",
        "max_inflight",
        "memory_in_flight",
        "connection_max_age",
        "trace_sample",
        "stress_path",
        "header",
        "query",
        "body",
        "status",
        "env",
        "true",
        "false",
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "HEAD",
        "p50",
        "p90",
        "p95",
        "p99",
        "max",
        "mean",
        "errors",
        "achieved",
        "reaction",
        "pod",
        "startup",
        "restarts",
    ]
)


class ExpectationKind(StrEnum):
    """What an expectation is judged on."""

    REPLICAS = "replicas"
    LATENCY = "latency"
    ERRORS = "errors"
    ACHIEVED = "achieved"
    SUCCEEDS = "succeeds"
    REACTION = "reaction"
    """`expect reaction CMP D`: phase start to the first rise of desired replicas."""
    POD_STARTUP = "pod startup"
    """`expect pod startup pNN|max CMP D`: pod creation to Ready, over the pods created in scope."""

    @property
    def over_load(self) -> bool:
        """Judged over the requests in scope (latency, errors, achieved)."""
        return self in {ExpectationKind.LATENCY, ExpectationKind.ERRORS, ExpectationKind.ACHIEVED}

    @property
    def watched(self) -> bool:
        """Judged on what the replica source records (replica windows, `reaction`, `pod
        startup`): needs `watch`, is shard 0's, and may run past the last phase."""
        return self in {
            ExpectationKind.REPLICAS,
            ExpectationKind.REACTION,
            ExpectationKind.POD_STARTUP,
        }


class Subject(StrEnum):
    """What an expectation looks at (`replicas` alone is compiled to `ready replicas`)."""

    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"
    MAX = "max"
    MEAN = "mean"
    ERRORS = "errors"
    ACHIEVED = "achieved"
    READY_REPLICAS = "ready replicas"
    DESIRED_REPLICAS = "desired replicas"
    SUCCEEDS = "succeeds"
    REACTION = "reaction"
    POD_STARTUP_P50 = "pod startup p50"
    POD_STARTUP_P90 = "pod startup p90"
    POD_STARTUP_P95 = "pod startup p95"
    POD_STARTUP_P99 = "pod startup p99"
    POD_STARTUP_MAX = "pod startup max"

    @property
    def kind(self) -> ExpectationKind:
        """The kind of expectation this subject makes."""
        found = subject_kind(self.value)
        return ExpectationKind.SUCCEEDS if found is None else found

    @property
    def percentile(self) -> float | None:
        """50.0 for `p50` (and `pod startup p50`) ...; None for `max`, `mean` and subjects that
        take no percentile."""
        return _PERCENTILES.get(self.value.removeprefix("pod startup "))


class GuardSubject(StrEnum):
    """What an `abort when` guard watches."""

    ERRORS = "errors"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"
    MAX = "max"
    MEAN = "mean"
    REPLICAS = "replicas"
    POD_RESTARTS = "pod restarts"
    """Container restarts of the Deployment's pods since the run started."""

    @property
    def percentile(self) -> float | None:
        """50.0 for `p50` ...; None for the others."""
        return _PERCENTILES.get(self.value)


_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def subject_kind(subject: str) -> ExpectationKind | None:
    """The kind of expectation a subject (as written) makes; None for an unknown subject."""
    if subject in REPLICA_SUBJECTS:
        return ExpectationKind.REPLICAS
    if subject in LATENCY_SUBJECTS:
        return ExpectationKind.LATENCY
    if subject == "errors":
        return ExpectationKind.ERRORS
    if subject == "achieved":
        return ExpectationKind.ACHIEVED
    if subject == "reaction":
        return ExpectationKind.REACTION
    if subject in POD_STARTUP_SUBJECTS:
        return ExpectationKind.POD_STARTUP
    return None
