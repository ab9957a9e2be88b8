"""The one load-test Job template: `submit` creates it, the shipped manifests are generated from it.

Every safety setting lives here, once: the `nimbus-scenarios` ServiceAccount, no retries
(`backoffLimit: 0`; sharded, `backoffLimitPerIndex: 0`) and a `podFailurePolicy` that fails the
Job (sharded: the shard's index) at once on the runner's own exit codes, a deadline from the plan
(`active_deadline_s`), a TTL, the restricted security context, modest resources, writable
emptyDirs, the run id on the Job and its pods, the downward API and the OpenTelemetry variables.
The manifests are plain dicts: this is a JSON edge (what the API server and `kubectl` read),
built from the frozen `JobSpec`.

No Kubernetes client is imported, so the manifests can be written without a cluster.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.plan.model import Plan

__all__ = [
    "CONTAINER",
    "INIT_CONTAINER",
    "RUN_ID_LABEL",
    "WORKERS_AUTO",
    "JobSpec",
    "active_deadline_s",
    "common_labels",
    "cronjob_manifest",
    "job_manifest",
    "scenario_configmap",
    "scenario_configmap_name",
]

RUN_ID_LABEL = "nimbus-scenarios/run-id"
CONTAINER = "load-generator"
INIT_CONTAINER = "wait-for-consumer"
SCENARIOS_MOUNT = "/scenarios"
CONFIGMAP_PREFIX = "nimbus-scenario-"
UID = 10001
# The runner's exit codes that end a run for good: an expectation failed (1), bad input (2),
# stopped (3), infrastructure (4). A retry would replay the whole load (and its cleanup).
FAILING_EXIT_CODES = (1, 2, 3, 4)
# The runner drains in-flight requests this long on SIGTERM (`run --grace` default); the pod's
# grace period leaves room to write the results after it.
RUN_GRACE_S = 10.0
TERMINATION_GRACE_S = 60
# A CronJob's name is at most 52 characters: the controller appends an 11-character suffix.
CRONJOB_NAME_MAX = 52
# The API server refuses a ConfigMap over 1 MiB; keep room for the object's metadata.
CONFIGMAP_MAX_BYTES = 1_000_000

WORKERS_AUTO = "--workers=auto"
"""Every load-test pod runs one worker process per CPU of its `limits.cpu` (the cgroup quota,
rounded up): raise the limit and the pod sends from more processes."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_LABEL_KEY_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_BASE_LABELS = (
    ("app.kubernetes.io/name", "nimbus-scenarios"),
    ("app.kubernetes.io/component", "load-generator"),
    ("component", "load-generator"),
)
_INIT_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "200m", "memory": "64Mi"},
}
_MAIN_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What varies between load-test Jobs; everything else is fixed by the template."""

    name: str  # the Job's name (DNS-1123 label, <= 63 characters)
    namespace: str
    image: str
    run_args: tuple[str, ...]  # the container's args after the ENTRYPOINT: ("run", ...)
    run_id: str  # labelled on the Job and its pods (RUN_ID_LABEL); "" leaves the label out
    scenario: str  # the scenario's name, for the `load-test=<name>` label
    active_deadline_s: int
    shards: int = 1  # > 1: an Indexed Job, completions = parallelism = shards
    scenario_configmap: str | None = None  # mounted read-only at /scenarios when given
    service_account: str = "nimbus-scenarios"
    ttl_after_finished_s: int = 86_400
    wait_url: str | None = "http://consumer:8000/health"  # init container `wait URL --timeout`
    otel_endpoint: str | None = "http://alloy:4318"
    otlp_logs: bool = False
    """False (the default): `OTEL_LOGS_EXPORTER=none`, so the JSON lines on stdout (tailed by
    Alloy into Loki) are the one log path; True: `otlp`, logs go out as OTLP too (then stop
    tailing these pods, or every line reaches Loki twice)."""
    image_pull_policy: str = "IfNotPresent"
    extra_labels: tuple[tuple[str, str], ...] = ()
    wait_timeout_s: int = 300  # the init container's `--timeout` (counted by active_deadline_s)
    scenario_configmap_optional: bool = False  # True: the pod starts without the ConfigMap

    def __post_init__(self) -> None:
        _check_dns_label("Job name", self.name)
        _check_dns_label("namespace", self.namespace)
        _check_dns_label("ServiceAccount", self.service_account)
        if not self.image or any(c.isspace() for c in self.image):
            raise UsageError(
                f"image must be a non-empty reference without spaces; got {self.image!r}"
            )
        if not self.run_args:
            raise UsageError("the Job needs the runner's args (e.g. run SCENARIO ...)")
        if self.shards < 1:
            raise UsageError(f"shards must be 1 or more; got {self.shards}")
        if self.shards != _shards_in(self.run_args):
            raise UsageError(
                f"the Job has {self.shards} shard(s) but its args say --shards="
                f"{_shards_in(self.run_args)}: every pod would send the wrong share of the load"
            )
        for what, seconds in (
            ("active_deadline_s", self.active_deadline_s),
            ("ttl_after_finished_s", self.ttl_after_finished_s),
            ("wait_timeout_s", self.wait_timeout_s),
        ):
            if seconds < 1:
                raise UsageError(f"{what} must be a positive number of seconds; got {seconds}")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise UsageError(
                "image pull policy must be Always, IfNotPresent or Never; "
                f"got {self.image_pull_policy!r}"
            )
        if self.scenario_configmap is not None:
            _check_dns_label("ConfigMap", self.scenario_configmap)
        for key, value in self.labels():
            _check_label(key, value)

    def labels(self) -> tuple[tuple[str, str], ...]:
        """The Job's and its pods' labels: the component's, the scenario, the run id, extras."""
        run = ((RUN_ID_LABEL, self.run_id),) if self.run_id else ()
        return (*_BASE_LABELS, ("load-test", self.scenario), *run, *self.extra_labels)


def common_labels() -> dict[str, str]:
    """The labels every object of the load-generator component carries."""
    return dict(_BASE_LABELS)


def job_manifest(spec: JobSpec) -> dict[str, Any]:
    """A batch/v1 Job for `spec`, with every safety setting."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": dict(spec.labels()),
        },
        "spec": _job_spec(spec),
    }


def cronjob_manifest(
    spec: JobSpec, *, schedule: str = "0 3 * * *", suspend: bool = True
) -> dict[str, Any]:
    """A batch/v1 CronJob whose jobTemplate is `job_manifest(spec)`'s spec.

    Suspended by default: a template for `kubectl create job NAME --from=cronjob/...`, which
    copies the jobTemplate (labels, annotations and spec) into the new Job.
    """
    if len(spec.name) > CRONJOB_NAME_MAX:
        raise UsageError(
            f"CronJob name {spec.name!r} is {len(spec.name)} characters; "
            f"at most {CRONJOB_NAME_MAX} are allowed"
        )
    if len(schedule.split()) != 5:
        raise UsageError(f"schedule must be a five-field cron expression; got {schedule!r}")
    labels = dict(spec.labels())
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "suspend": suspend,
            # Never two load tests at once against the same consumer.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": _job_spec(spec)},
        },
    }


def scenario_configmap_name(file_name: str, text: str) -> str:
    """`nimbus-scenario-<12 hex>`: a SHA-256 of the ConfigMap's content (file name and text)."""
    digest = hashlib.sha256(f"{file_name}\0{text}".encode()).hexdigest()
    return f"{CONFIGMAP_PREFIX}{digest[:12]}"


def scenario_configmap(namespace: str, file_name: str, text: str) -> dict[str, Any]:
    """An immutable ConfigMap holding one scenario file, named by a hash of its content.

    The same file submitted twice gives the same name (create it once); an edited file gives
    another, so a running Job never sees its scenario change under it.
    """
    _check_dns_label("namespace", namespace)
    if len(file_name) > 253 or not _CONFIGMAP_KEY.fullmatch(file_name) or file_name in (".", ".."):
        raise UsageError(
            f"scenario file name {file_name!r} cannot be a ConfigMap key "
            "(letters, digits, '-', '_' and '.', at most 253)"
        )
    size = len(text.encode())
    if size > CONFIGMAP_MAX_BYTES:
        raise UsageError(
            f"scenario file {file_name} is {size} bytes; a ConfigMap holds at most "
            f"{CONFIGMAP_MAX_BYTES}"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": scenario_configmap_name(file_name, text),
            "namespace": namespace,
            "labels": common_labels(),
        },
        "immutable": True,
        "data": {file_name: text},
    }


def active_deadline_s(plan: Plan, *, wait_s: float = 300.0, margin_s: float = 120.0) -> int:
    """The Job's `activeDeadlineSeconds`: the longest a correct run takes, plus a margin.

    The deadline starts with the pod, so: the init container's wait; the `before` windows (they
    run together: the longest); the planned duration, pending replica windows included; the
    `after` windows; the drain (one request timeout) and the SIGTERM grace; the cleanup steps and
    `--cleanup`'s DELETE (one timeout each); then `margin_s` for the pod to start and the results
    to be written. Rounded up to a whole minute.
    """
    if not (math.isfinite(wait_s) and math.isfinite(margin_s)) or wait_s < 0 or margin_s < 0:
        raise UsageError(f"wait and margin must be seconds, zero or more; got {wait_s}, {margin_s}")
    before = max((e.window_s or 0.0 for e in plan.before), default=0.0)
    after = max((e.window_s or 0.0 for e in plan.after), default=0.0)
    timeout = plan.settings.timeout_s
    drain = timeout + RUN_GRACE_S
    cleanup = timeout * (len(plan.cleanup) + 1)
    total = wait_s + before + plan.duration_s + after + drain + cleanup + margin_s
    return math.ceil(total / 60.0) * 60


def _job_spec(spec: JobSpec) -> dict[str, Any]:
    """One pod, never retried: a runner exit code 1-4 fails the Job at once (`FailJob`).

    Sharded (Indexed): each index runs once (`backoffLimitPerIndex: 0`) and an exit code 1-4
    fails only its index (`FailIndex`), so a shard whose expectation failed does not kill the
    others before they print their results; the Job fails (`FailedIndexes`) once every index
    is done. `backoffLimit` is left out: it counts failures over all indexes (and would fail
    the Job at the first), and with `backoffLimitPerIndex` it defaults to 2147483647. Both
    fields need a 1.29+ cluster (the field is beta there, on by default; GA in 1.33).
    """
    body: dict[str, Any] = {}
    action = "FailJob"
    if spec.shards > 1:
        body.update(
            completionMode="Indexed",
            completions=spec.shards,
            parallelism=spec.shards,
            backoffLimitPerIndex=0,
        )
        action = "FailIndex"
    else:
        body.update(backoffLimit=0)
    body.update(
        podFailurePolicy={
            "rules": [
                {
                    "action": action,
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": list(FAILING_EXIT_CODES),
                    },
                }
            ]
        },
        activeDeadlineSeconds=spec.active_deadline_s,
        ttlSecondsAfterFinished=spec.ttl_after_finished_s,
        template=_pod_template(spec),
    )
    return body


def _pod_template(spec: JobSpec) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",  # podFailurePolicy requires it; a retry replays the load
        "serviceAccountName": spec.service_account,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.wait_url is not None:
        pod["initContainers"] = [_init_container(spec, spec.wait_url)]
    pod["containers"] = [_main_container(spec)]
    pod["volumes"] = _volumes(spec)
    return {
        "metadata": {
            "labels": dict(spec.labels()),
            "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER},
        },
        "spec": pod,
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _init_container(spec: JobSpec, url: str) -> dict[str, Any]:
    return {
        "name": INIT_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": ["wait", url, f"--timeout={_duration(spec.wait_timeout_s)}", "--interval=2s"],
        "resources": _copy(_INIT_RESOURCES),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _main_container(spec: JobSpec) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": "work", "mountPath": "/work"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if spec.scenario_configmap is not None:
        mounts.append({"name": "scenarios", "mountPath": SCENARIOS_MOUNT, "readOnly": True})
    return {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": list(spec.run_args),
        "env": _env(spec),
        "resources": _copy(_MAIN_RESOURCES),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
    }


def _env(spec: JobSpec) -> list[dict[str, Any]]:
    """The downward API first: `$(NAME)` expands only names defined earlier in the list."""
    env: list[dict[str, Any]] = [
        _field("JOB_NAME", "metadata.labels['batch.kubernetes.io/job-name']"),
        _field("POD_NAME", "metadata.name"),
        _field("POD_NAMESPACE", "metadata.namespace"),
    ]
    if spec.otel_endpoint is not None:
        attributes = ",".join(
            (
                "service.instance.id=$(POD_NAME)",  # each pod its own series (Indexed Jobs)
                "k8s.pod.name=$(POD_NAME)",
                "k8s.namespace.name=$(POD_NAMESPACE)",
                "k8s.job.name=$(JOB_NAME)",
            )
        )
        env += [
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": spec.otel_endpoint},
            {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
            {"name": "OTEL_SERVICE_NAME", "value": "nimbus-scenarios"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attributes},
            # The one log path: stdout JSON (trace_id, span_id) tailed by Alloy, or OTLP logs.
            {"name": "OTEL_LOGS_EXPORTER", "value": "otlp" if spec.otlp_logs else "none"},
        ]
    return env


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _volumes(spec: JobSpec) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "work", "emptyDir": {"sizeLimit": "64Mi"}},  # the image's WORKDIR: results/
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if spec.scenario_configmap is not None:
        source: dict[str, Any] = {"name": spec.scenario_configmap}
        if spec.scenario_configmap_optional:
            source["optional"] = True
        volumes.append({"name": "scenarios", "configMap": source})
    return volumes


def _shards_in(args: tuple[str, ...]) -> int:
    """The `--shards` the runner's args give (1 when absent); a malformed value counts as 0."""
    for i, arg in enumerate(args):
        value: str | None = None
        if arg.startswith("--shards="):
            value = arg.partition("=")[2]
        elif arg == "--shards" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None:
            return int(value) if value.isdigit() else 0
    return 1


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _copy(resources: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in resources.items()}


def _check_dns_label(what: str, value: str) -> None:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise UsageError(
            f"{what} {value!r} is not a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )


def _check_label(key: str, value: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _LABEL_KEY_NAME.fullmatch(name)
        or len(prefix) > 253
        or (prefix and not all(_DNS_LABEL.fullmatch(p) for p in prefix.split(".")))
    ):
        raise UsageError(f"{key!r} is not a valid Kubernetes label key")
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise UsageError(
            f"label {key}={value!r} is not a valid label value: letters, digits, '-', '_' and "
            "'.', starting and ending with a letter or digit, at most 63 characters"
        )
