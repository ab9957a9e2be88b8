"""The load-test Job template (`kube.jobs`): every safety field, Indexed Jobs for shards, the
CronJob wrapper, the deadline from a plan, the content-addressed immutable ConfigMap, and
validation of what `submit` passes in. Every manifest is validated with kubernetes-validate."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import pytest

from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.jobs import (
    CONTAINER,
    INIT_CONTAINER,
    RUN_ID_LABEL,
    JobSpec,
    active_deadline_s,
    cronjob_manifest,
    job_manifest,
    scenario_configmap,
)
from nimbus_scenarios.telemetry.config import TelemetryConfig, resolve_config
from tests.support.results import plan_of

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev)")

SPEC = JobSpec(
    name="nimbus-heavy-3f2a9c",
    namespace="load-tests",
    image="registry.test/generator:1.2",
    run_args=("run", "/scenarios/heavy.scn", "--url=http://consumer:8000", "--print-results"),
    run_id="3f2a9c01d4e5",
    scenario="heavy",
    active_deadline_s=1500,
    scenario_configmap="nimbus-scenario-0123456789ab",
)
SHARDED = dataclasses.replace(
    SPEC, shards=3, run_args=(*SPEC.run_args, "--shards=3", "--start-at=2030-01-01T00:00:00Z")
)


def validate(obj: dict[str, Any]) -> None:
    """Strictly valid for the oldest Kubernetes we claim (1.31) and the newest known."""
    for version in ("1.31.0", kv.latest_version()):
        kv.validate(obj, version, strict=True)


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def main_container(job: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in pod_of(job)["containers"] if c["name"] == CONTAINER]
    return dict(found)


def test_job_has_every_safety_setting() -> None:
    """SA, no retries, the failure policy on exit codes 1-4, deadline, TTL, restartPolicy."""
    job = job_manifest(SPEC)
    validate(job)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == SPEC.active_deadline_s
    assert spec["ttlSecondsAfterFinished"] == SPEC.ttl_after_finished_s
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailJob",
        "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [1, 2, 3, 4]},
    }
    pod = pod_of(job)
    assert pod["restartPolicy"] == "Never", "podFailurePolicy requires it"
    assert pod["serviceAccountName"] == "nimbus-scenarios"
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert "completionMode" not in spec
    assert "completions" not in spec
    assert "backoffLimitPerIndex" not in spec, "only an Indexed Job may have it"


def test_pod_and_containers_are_locked_down_with_resources() -> None:
    """uid 10001 non-root, RuntimeDefault seccomp; each container read-only, no caps, limited."""
    pod = pod_of(job_manifest(SPEC))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = [*pod["initContainers"], *pod["containers"]]
    assert [c["name"] for c in containers] == [INIT_CONTAINER, CONTAINER]
    for item in containers:
        assert item["image"] == SPEC.image
        assert item["imagePullPolicy"] == SPEC.image_pull_policy
        assert item["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert set(item["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(item["resources"]["limits"])


def test_volumes_mount_work_tmp_and_the_scenario_configmap_read_only() -> None:
    """emptyDirs at /work and /tmp; the given ConfigMap at /scenarios, read-only, not optional."""
    job = job_manifest(SPEC)
    volumes = {v["name"]: v for v in pod_of(job)["volumes"]}
    mounts = {m["mountPath"]: m for m in main_container(job)["volumeMounts"]}
    for path in ("/work", "/tmp"):
        assert "emptyDir" in volumes[mounts[path]["name"]]
    scenarios = mounts["/scenarios"]
    assert scenarios["readOnly"] is True
    assert volumes[scenarios["name"]]["configMap"] == {"name": SPEC.scenario_configmap}
    bare = job_manifest(dataclasses.replace(SPEC, scenario_configmap=None))
    assert "/scenarios" not in {m["mountPath"] for m in main_container(bare)["volumeMounts"]}
    validate(bare)


def test_labels_carry_the_run_id_on_job_and_pods() -> None:
    """The run id, scenario and extra labels are on the Job and on its pod template."""
    extra = dataclasses.replace(SPEC, extra_labels=(("team", "sre"),))
    job = job_manifest(extra)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[RUN_ID_LABEL] == SPEC.run_id
        assert labels["load-test"] == "heavy"
        assert labels["team"] == "sre"
        assert labels["app.kubernetes.io/name"] == "nimbus-scenarios"
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == CONTAINER
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == (SPEC.name, SPEC.namespace)


def test_downward_api_and_otel_variables() -> None:
    """JOB_NAME, POD_NAME, POD_NAMESPACE come first; OTEL names each pod and the Job."""
    env = main_container(job_manifest(SPEC))["env"]
    names = [e["name"] for e in env]
    paths = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in env if "valueFrom" in e}
    assert paths == {
        "JOB_NAME": "metadata.labels['batch.kubernetes.io/job-name']",
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
    }
    values = {e["name"]: e.get("value") for e in env}
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == SPEC.otel_endpoint
    assert values["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert values["OTEL_SERVICE_NAME"] == "nimbus-scenarios"
    attributes = dict(a.split("=", 1) for a in str(values["OTEL_RESOURCE_ATTRIBUTES"]).split(","))
    assert attributes["service.instance.id"] == "$(POD_NAME)"
    assert attributes["k8s.job.name"] == "$(JOB_NAME)"
    # $(VAR) expands only from variables defined earlier in the list.
    last_downward = max(names.index(n) for n in paths)
    assert names.index("OTEL_RESOURCE_ATTRIBUTES") > last_downward
    quiet = main_container(job_manifest(dataclasses.replace(SPEC, otel_endpoint=None)))["env"]
    assert not [e for e in quiet if e["name"].startswith("OTEL_")]


def test_init_container_waits_for_the_url_within_the_budgeted_timeout() -> None:
    """`wait URL --timeout=...` with the spec's timeout; no init container without a URL."""
    pod = pod_of(job_manifest(dataclasses.replace(SPEC, wait_timeout_s=90)))
    (init,) = pod["initContainers"]
    assert init["args"][:2] == ["wait", SPEC.wait_url]
    assert "--timeout=90s" in init["args"]
    assert pod["initContainers"][0]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    bare = job_manifest(dataclasses.replace(SPEC, wait_url=None))
    assert "initContainers" not in pod_of(bare)
    validate(bare)


def test_sharded_spec_is_an_indexed_job() -> None:
    """shards > 1: Indexed, completions = parallelism = shards; args passed through unchanged."""
    job = job_manifest(SHARDED)
    validate(job)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert main_container(job)["args"] == list(SHARDED.run_args)


def test_a_sharded_job_fails_only_the_shards_index() -> None:
    """Each index runs once (`backoffLimitPerIndex: 0`), and a runner exit code 1-4 fails only
    its index (`FailIndex`), so the other shards still print their results. No `backoffLimit`:
    it counts failures over every index and would fail the Job at the first one."""
    spec = job_manifest(SHARDED)["spec"]
    assert spec["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in spec
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [1, 2, 3, 4]},
    }
    assert pod_of(job_manifest(SHARDED))["restartPolicy"] == "Never", "the field requires it"


@pytest.mark.parametrize(
    "args",
    [
        ("run", "x.scn"),  # 3 shards, but every pod would send the whole load
        ("run", "x.scn", "--shards=2"),
        ("run", "x.scn", "--shards", "many"),
    ],
)
def test_shards_must_agree_with_the_runner_args(args: tuple[str, ...]) -> None:
    """A mismatch between the Job's shards and `--shards` is refused (exit 2)."""
    with pytest.raises(UsageError, match="shard"):
        dataclasses.replace(SPEC, shards=3, run_args=args)
    assert dataclasses.replace(SPEC, shards=2, run_args=("run", "x", "--shards", "2")).shards == 2


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("name", "Heavy_Run", "DNS-1123"),
        ("name", "x" * 64, "DNS-1123"),
        ("name", "-heavy", "DNS-1123"),
        ("namespace", "Load Tests", "DNS-1123"),
        ("run_id", "not/valid", "label"),
        ("scenario", "x" * 64, "label"),
        ("image", "", "image"),
        ("run_args", (), "args"),
        ("shards", 0, "shards"),
        ("active_deadline_s", 0, "active_deadline_s"),
        ("image_pull_policy", "Sometimes", "pull policy"),
        ("extra_labels", (("bad key!", "x"),), "label key"),
    ],
)
def test_bad_specs_are_usage_errors(field: str, value: object, match: str) -> None:
    """What submit passes in is checked before anything reaches the cluster (exit 2)."""
    with pytest.raises(UsageError, match=match) as caught:
        dataclasses.replace(SPEC, **{field: value})
    assert caught.value.exit_code == ExitCode.USAGE


def test_cronjob_is_a_suspended_template_of_the_same_job() -> None:
    """The CronJob's jobTemplate is the Job's spec; suspended and never concurrent by default."""
    cronjob = cronjob_manifest(SHARDED)
    validate(cronjob)
    assert cronjob["kind"] == "CronJob"
    assert cronjob["spec"]["suspend"] is True
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"] == job_manifest(SHARDED)["spec"]
    labels = cronjob["spec"]["jobTemplate"]["metadata"]["labels"]
    assert labels == job_manifest(SHARDED)["metadata"]["labels"]
    scheduled = cronjob_manifest(SPEC, schedule="*/30 * * * *", suspend=False)
    assert (scheduled["spec"]["schedule"], scheduled["spec"]["suspend"]) == ("*/30 * * * *", False)
    with pytest.raises(UsageError, match="52"):
        cronjob_manifest(dataclasses.replace(SPEC, name="x" * 53))
    with pytest.raises(UsageError, match="cron"):
        cronjob_manifest(SPEC, schedule="nightly")


def test_configmap_is_content_addressed_and_immutable() -> None:
    """Same content, same name; other text or file name, another name; immutable, one key."""
    text = 'scenario "s" {\n  target "http://x"\n}\n'
    first = scenario_configmap("load-tests", "s.scn", text)
    validate(first)
    assert first["immutable"] is True
    assert first["data"] == {"s.scn": text}
    name = first["metadata"]["name"]
    digest = hashlib.sha256(f"s.scn\0{text}".encode()).hexdigest()
    assert name == f"nimbus-scenario-{digest[:12]}"
    assert scenario_configmap("load-tests", "s.scn", text) == first
    assert scenario_configmap("load-tests", "s.scn", text + "\n")["metadata"]["name"] != name
    assert scenario_configmap("load-tests", "t.scn", text)["metadata"]["name"] != name
    # The name is a valid ConfigMap reference for the Job's volume.
    dataclasses.replace(SPEC, scenario_configmap=name)


@pytest.mark.parametrize(
    ("namespace", "file_name", "text"),
    [
        ("load-tests", "a/b.scn", "x"),
        ("load-tests", "..", "x"),
        ("Load_Tests", "a.scn", "x"),
        ("load-tests", "a.scn", "x" * 1_000_001),
    ],
)
def test_configmap_refuses_what_the_api_would(namespace: str, file_name: str, text: str) -> None:
    """A key the API refuses, a bad namespace or a file over the ConfigMap limit: exit 2."""
    with pytest.raises(UsageError):
        scenario_configmap(namespace, file_name, text)


SCENARIO = """
scenario "deadline" {
  target "http://consumer:8000"
  watch deployment "consumer"
  settings { timeout 10s }
  request health = GET "/health"
  before { expect health succeeds within 1m }
  phase "load" 4m {
    rate 2/s
    send health
  }
  phase "settle" 1m {
    idle
    expect replicas == 1 within 3m
  }
  after { expect replicas == 1 within 30s }
  cleanup { send DELETE "/process/cleanup" }
}
"""


def test_deadline_covers_every_part_of_the_run_and_the_margin() -> None:
    """wait + before + planned (pending windows) + after + drain + cleanup + margin, in minutes."""
    plan = plan_of(SCENARIO)
    assert plan.duration_s > plan.phases_end_s, "the replica window runs past the phases"
    timeout = plan.settings.timeout_s
    budget = (
        300.0  # the init container's wait
        + 60.0  # the before window
        + plan.duration_s
        + 30.0  # the after window
        + timeout  # the drain, then the runner's grace
        + 10.0
        + timeout * (len(plan.cleanup) + 1)  # the cleanup steps and --cleanup's DELETE
        + 120.0
    )
    deadline = active_deadline_s(plan)
    assert deadline % 60 == 0
    assert budget <= deadline < budget + 60
    assert active_deadline_s(plan, wait_s=0.0, margin_s=0.0) == math.ceil((budget - 420) / 60) * 60
    assert active_deadline_s(plan, margin_s=600.0) >= deadline + 420


def test_deadline_refuses_negative_or_infinite_budgets() -> None:
    """A wait or margin that is negative, infinite or NaN is a usage error."""
    plan = plan_of(SCENARIO)
    for wait, margin in ((-1.0, 0.0), (0.0, float("inf")), (float("nan"), 0.0)):
        with pytest.raises(UsageError):
            active_deadline_s(plan, wait_s=wait, margin_s=margin)


def test_one_log_path_by_default_and_the_switch() -> None:
    """The Job's variables, read as the runner reads them: traces and metrics over OTLP, logs
    only as stdout JSON (OTEL_LOGS_EXPORTER=none); `otlp_logs=True` turns OTLP logs on."""

    def config(spec: JobSpec) -> TelemetryConfig:
        env = main_container(job_manifest(spec))["env"]
        return resolve_config({e["name"]: e["value"] for e in env if "value" in e})

    default = config(SPEC)
    assert [s.signal for s in default.signals] == ["traces", "metrics"]
    assert default.ignored == ()
    switched = config(dataclasses.replace(SPEC, otlp_logs=True))
    assert [s.signal for s in switched.signals] == ["traces", "metrics", "logs"]
