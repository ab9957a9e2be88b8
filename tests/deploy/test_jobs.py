"""The shipped load-test Jobs and CronJobs (jobs component, examples): args, deadlines, labels,
the failure policy, security and volumes, read back from the YAML files."""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest

from nimbus_scenarios.catalog import builtin_names, builtin_path
from nimbus_scenarios.cli import build_parser, seed_form
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from tests.deploy.support import (
    CONSUMER_URL,
    IMAGE,
    INIT_CONTAINER,
    JOBS_COMPONENT,
    MAIN_CONTAINER,
    SCENARIOS_CONFIGMAP,
    SEED_JOBS,
    SERVICE_ACCOUNT,
    Manifest,
    all_jobs,
    container,
    image_workdir,
    load_documents,
    pod_templates,
)

JOBS = all_jobs()
JOB_IDS = [f"{file}:{obj['metadata']['name']}" for file, obj, _, _ in JOBS]
LABELS = {
    "app.kubernetes.io/name": "nimbus-scenarios",
    "app.kubernetes.io/component": "load-generator",
    "component": "load-generator",
}
# Beyond the budget below, every deadline keeps at least this much for the pod to start and
# the runner to write its results after SIGTERM.
DEADLINE_MARGIN_S = 120.0
# On SIGTERM the runner waits this long for requests in flight (`run --grace`, default 10 s).
GRACE_S = 10.0


def parse(argv: list[str]) -> argparse.Namespace:
    """The real CLI's reading of container args (the image's ENTRYPOINT is the CLI)."""
    try:
        return build_parser().parse_args(seed_form(list(argv)))
    except SystemExit as exc:
        pytest.fail(f"the CLI rejects {argv} (exit {exc.code})")


def shards_pending(argv: list[str]) -> bool:
    """True while `--shards` (the Indexed Job's flag, from the sharding work) is not in the CLI."""
    _, unknown = build_parser().parse_known_args(seed_form(list(argv)))
    return bool(unknown) and all(u.startswith("--shards") for u in unknown)


def plan_for(scenario: str, configmap: dict[str, str]) -> Plan:
    """The plan of a built-in name, or of /scenarios/FILE as the ConfigMap mounts it."""
    if scenario.startswith("/scenarios/"):
        key = scenario.removeprefix("/scenarios/")
        assert key in configmap, f"{scenario}: no key {key!r} in ConfigMap {SCENARIOS_CONFIGMAP}"
        return compile_source(Source(scenario, configmap[key]))
    assert scenario in builtin_names(), f"{scenario!r} is not a built-in scenario"
    return compile_source(read_source(builtin_path(scenario)))


def run_budget_s(plan: Plan, wait_timeout_s: float) -> float:
    """The longest a correct run can take, init wait included (the Job deadline starts then).

    The `before` expectations run concurrently, so their longest window; then the phases and
    pending replica windows (`duration_s`); the `after` windows; the drain (requests in flight,
    up to one request timeout); the cleanup steps and `--cleanup`'s DELETE (one timeout each).
    """
    before = max((e.window_s or 0.0 for e in plan.before), default=0.0)
    after = max((e.window_s or 0.0 for e in plan.after), default=0.0)
    timeout = plan.settings.timeout_s
    cleanup = timeout * (len(plan.cleanup) + 1)
    return wait_timeout_s + before + plan.duration_s + after + timeout + cleanup + GRACE_S


@pytest.fixture(scope="module")
def configmap(overlay_objects: list[Manifest]) -> dict[str, str]:
    """The scenario files the example overlay puts at /scenarios."""
    (found,) = [
        o
        for o in overlay_objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == SCENARIOS_CONFIGMAP
    ]
    data: dict[str, str] = found["data"]
    return data


@pytest.mark.parametrize(("prefix", "kind"), [("job", "Job"), ("cronjob", "CronJob")])
def test_a_job_and_a_cronjob_per_seed_job_type(prefix: str, kind: str) -> None:
    """The seed's seven job types each have a Job file and a suspended CronJob, load-test-<type>."""
    names = {p.name: load_documents(p) for p in JOBS_COMPONENT.glob(f"{prefix}-*.yaml")}
    assert sorted(names) == sorted(f"{prefix}-{t}.yaml" for t in SEED_JOBS)
    for job_type, scenario in SEED_JOBS.items():
        (obj,) = names[f"{prefix}-{job_type}.yaml"]
        assert obj["kind"] == kind
        assert obj["metadata"]["name"] == f"load-test-{job_type}"
        ((_, template),) = pod_templates(obj)
        args = container(template, MAIN_CONTAINER)["args"]
        assert args == [
            *("run", scenario, f"--url={CONSUMER_URL}", "--monitor", "--cleanup"),
            "--workers=auto",  # one process per CPU of the pod's limit
        ]
        if kind == "CronJob":
            assert obj["spec"]["suspend"] is True, "a template must never run by itself"
            assert obj["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_args_parse_with_the_cli_and_name_a_scenario(
    file: str, obj: Manifest, spec: Manifest, template: Manifest, configmap: dict[str, str]
) -> None:
    """The main container's args parse with the real CLI as `run` of an existing scenario."""
    argv = container(template, MAIN_CONTAINER)["args"]
    if "--shards" in " ".join(argv) and shards_pending(argv):
        pytest.skip("`run --shards` is not in the CLI yet (sharding work); only it is unknown")
    args = parse(argv)
    assert args.command == "run"
    assert args.url == CONSUMER_URL
    assert args.monitor
    plan_for(args.scenario, configmap)  # compiles: the scenario exists and is valid


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_init_container_waits_for_the_consumer(
    file: str, obj: Manifest, spec: Manifest, template: Manifest
) -> None:
    """The init container runs the same image's `wait` on the consumer's /health."""
    init = container(template, INIT_CONTAINER, init=True)
    main = container(template, MAIN_CONTAINER)
    assert init["image"] == main["image"]
    args = parse(init["args"])
    assert args.command == "wait"
    assert args.url == f"{CONSUMER_URL}/health"
    assert args.timeout is not None, "set --timeout explicitly: the deadline budget counts it"


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_active_deadline_exceeds_the_planned_run(
    file: str, obj: Manifest, spec: Manifest, template: Manifest, configmap: dict[str, str]
) -> None:
    """activeDeadlineSeconds covers init wait, before windows, plan, after, drain and cleanup."""
    argv = container(template, MAIN_CONTAINER)["args"]
    args, _ = build_parser().parse_known_args(seed_form(list(argv)))  # tolerates --shards
    plan = plan_for(args.scenario, configmap)
    wait_timeout = parse(container(template, INIT_CONTAINER, init=True)["args"]).timeout
    budget = run_budget_s(plan, wait_timeout)
    deadline = spec["activeDeadlineSeconds"]
    assert deadline >= budget + DEADLINE_MARGIN_S, (
        f"{file}: activeDeadlineSeconds {deadline} < {budget:.0f} s budget "
        f"(planned {plan.duration_s:.0f} s) + {DEADLINE_MARGIN_S:.0f} s margin"
    )
    assert deadline <= 2 * budget, (
        f"{file}: activeDeadlineSeconds {deadline} is over twice the {budget:.0f} s budget; "
        "lower it so that a stuck run is stopped"
    )


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_labels_and_job_policy(
    file: str, obj: Manifest, spec: Manifest, template: Manifest
) -> None:
    """Job and pod carry the seed's labels; no retries (sharded: none per index), the failure
    policy, a TTL, restartPolicy Never, the SA."""
    load_test = obj["metadata"]["labels"]["load-test"]
    expected = {**LABELS, "load-test": load_test}
    assert obj["metadata"]["labels"] == expected
    assert template["metadata"]["labels"] == expected
    if obj["kind"] == "Job":
        assert obj["metadata"]["name"] == f"load-test-{load_test}"
    (rule,) = spec["podFailurePolicy"]["rules"]
    if spec.get("completionMode") == "Indexed":  # a shard's failure fails its index only
        assert spec["backoffLimitPerIndex"] == 0
        assert "backoffLimit" not in spec
        assert rule["action"] == "FailIndex"
    else:
        assert spec["backoffLimit"] == 0
        assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {
        "containerName": MAIN_CONTAINER,
        "operator": "In",
        "values": [1, 2, 3, 4],
    }
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = template["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert (
        template["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        == MAIN_CONTAINER
    )


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_restricted_security_and_modest_resources(
    file: str, obj: Manifest, spec: Manifest, template: Manifest
) -> None:
    """Non-root uid 10001, RuntimeDefault seccomp, read-only root, no privilege, no capabilities."""
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for item in [*pod["initContainers"], *pod["containers"]]:
        assert item["image"].split(":")[0] == IMAGE
        assert item["imagePullPolicy"] == "IfNotPresent"
        security = item["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        resources = item["resources"]
        assert set(resources) == {"requests", "limits"}
        assert _mebibytes(resources["limits"]["memory"]) <= 1024
        assert _millicores(resources["limits"]["cpu"]) <= 1000


@pytest.mark.parametrize(("file", "obj", "spec", "template"), JOBS, ids=JOB_IDS)
def test_writable_volumes_and_telemetry(
    file: str, obj: Manifest, spec: Manifest, template: Manifest
) -> None:
    """emptyDirs on the image's WORKDIR and /tmp, scenarios at /scenarios, OTLP to Alloy."""
    pod = template["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    main = container(template, MAIN_CONTAINER)
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    for path in (image_workdir(), "/tmp"):
        assert path in mounts, f"nothing writable mounted at {path}"
        assert "emptyDir" in volumes[mounts[path]]
    assert volumes[mounts["/scenarios"]]["configMap"]["name"] == SCENARIOS_CONFIGMAP
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://alloy:4318"
    assert env["OTEL_SERVICE_NAME"] == "nimbus-scenarios"
    # Each pod its own service.instance.id, so the pods of an Indexed Job do not share series;
    # $(POD_NAME) only expands if POD_NAME is defined earlier in the list.
    names = [e["name"] for e in main["env"]]
    assert "service.instance.id=$(POD_NAME)" in str(env["OTEL_RESOURCE_ATTRIBUTES"])
    assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")


def test_indexed_job_shards_match_completions() -> None:
    """The Indexed Job example runs N pods and tells the runner `--shards=N`."""
    indexed = [obj for _, obj, spec, _ in JOBS if spec.get("completionMode") == "Indexed"]
    assert indexed, "no Indexed Job example"
    for obj in indexed:
        spec = obj["spec"]
        args = container(spec["template"], MAIN_CONTAINER)["args"]
        (shards,) = [a for a in args if a.startswith("--shards=")]
        count = int(shards.split("=", 1)[1])
        assert spec["completions"] == spec["parallelism"] == count > 1


def test_seed_form_args_still_work_as_job_args() -> None:
    """The seed's Job args (`--url=... --test=heavy --monitor`) reach `run heavy` via ENTRYPOINT."""
    args = parse([f"--url={CONSUMER_URL}", "--test=heavy", "--monitor", "--cleanup"])
    assert (args.command, args.scenario, args.url) == ("run", "heavy", CONSUMER_URL)
    assert args.monitor
    assert args.cleanup


def _mebibytes(quantity: str) -> float:
    number, unit = _split(quantity)
    return number * {"Mi": 1, "Gi": 1024, "Ki": 1 / 1024, "": 1 / 1024 / 1024}[unit]


def _millicores(quantity: Any) -> float:
    number, unit = _split(str(quantity))
    return number * {"m": 1, "": 1000}[unit]


def _split(quantity: str) -> tuple[float, str]:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    assert match, f"unexpected quantity {quantity!r}"
    return float(match[1]), match[2]
