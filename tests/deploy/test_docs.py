"""docs/cluster.md: every shell command is checked offline, and its job table matches the files."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from nimbus_scenarios.catalog import builtin_path
from nimbus_scenarios.cli import build_parser, main, seed_form
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.render import clock_text
from tests.deploy.support import (
    CONSUMER_URL,
    IMAGE,
    IMAGE_PLATFORMS,
    JOBS_COMPONENT,
    MAIN_CONTAINER,
    MANIFESTS,
    NAMESPACE,
    REFRESH,
    REPO,
    SERVICE_ACCOUNT,
    Manifest,
    all_jobs,
    container,
    direct_manifests,
    image_workdir,
    kustomize,
    load_documents,
    run_kubectl,
    validate,
)

DOC = REPO / "docs" / "cluster.md"
DOCS = (DOC, REPO / "README.md")  # the README's cluster section repeats the core steps
# Read-only views of the consumer's side, which this repository does not define.
CONSUMER_LABELS = {"app.kubernetes.io/name=consumer"}
CONSUMER_RESOURCES = {"hpa", "scaledobjects"}
VALUED_OPTIONS = {"-n", "--namespace", "-c", "--container", "-l", "--selector", "-o"}

Pipeline = list[list[str]]


def doc_commands() -> list[str]:
    """Each command line in the docs' ```bash blocks: comments dropped, continuations joined."""
    text = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS)
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append(pending + line)
            pending = ""
        assert not pending, f"a ```bash block ends inside a continued line: {pending}"
    return commands


def pipeline(command: str) -> Pipeline:
    """A command line as its `|`-separated stages, each as argv."""
    stages: Pipeline = [[]]
    for word in shlex.split(command):
        if word == "|":
            stages.append([])
        else:
            stages[-1].append(word)
    return stages


def manifest_objects() -> list[Manifest]:
    """Every object of every file applied with `kubectl apply -f`."""
    return [obj for path in direct_manifests() for obj in load_documents(path)]


def option(argv: list[str], *names: str) -> str | None:
    """The value of `-n VALUE` / `--namespace=VALUE` style options (the last one given)."""
    value = None
    for index, word in enumerate(argv):
        for name in names:
            if word == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif word.startswith(f"{name}="):
                value = word.split("=", 1)[1]
    return value


def positionals(argv: list[str]) -> list[str]:
    """The words of `argv` that are neither options nor option values."""
    found: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUED_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            found.append(word)
    return found


def cli_accepts(argv: list[str]) -> None:
    """The real parser accepts `argv` (after the seed's form)."""
    try:
        build_parser().parse_args(seed_form(list(argv)))
    except SystemExit as exc:
        pytest.fail(f"the CLI rejects {argv} (exit {exc.code})")


# ---------------------------------------------------------------- checkers, one per command kind
def check_docker(stages: Pipeline, home: Path) -> None:
    """`docker build -t IMAGE .` from the root (`docker buildx build` for every image platform);
    `docker run` read-only with the writable mounts."""
    (argv,) = stages
    if argv[1:3] == ["buildx", "build"]:
        platforms = option(argv, "--platform")
        assert platforms is not None
        assert tuple(platforms.split(",")) == IMAGE_PLATFORMS
        tag = option(argv, "-t", "--tag")
        assert tag is not None
        assert tag.rsplit("/", 1)[-1].split(":")[0] == IMAGE
        assert argv[-1] == "."
        return
    if argv[1] == "build":
        assert option(argv, "-t", "--tag") in (IMAGE, f"{IMAGE}:latest")
        assert argv[-1] == "."
        assert (REPO / "Dockerfile").is_file()
        return
    assert argv[1] == "run"
    assert "--read-only" in argv
    tmpfs = {argv[i + 1] for i, word in enumerate(argv) if word == "--tmpfs"}
    assert {image_workdir(), "/tmp"} <= tmpfs
    image_at = next(i for i, word in enumerate(argv) if word.split(":")[0] == IMAGE)
    cli_args = argv[image_at + 1 :]
    cli_accepts(cli_args)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(cli_args) == ExitCode.OK


def check_kind(stages: Pipeline, home: Path) -> None:
    """`kind load docker-image` names the image the manifests use."""
    (argv,) = stages
    assert argv[1:3] == ["load", "docker-image"]
    images = {
        item["image"]
        for _, _, _, template in all_jobs()
        for item in [*template["spec"]["initContainers"], *template["spec"]["containers"]]
    }
    assert images == {argv[3]}


def check_cp(stages: Pipeline, home: Path) -> None:
    """The copy refresh is the one the ConfigMap test asks for."""
    (argv,) = stages
    assert shlex.join(argv).replace("'", "") == REFRESH


def check_cli(stages: Pipeline, home: Path) -> None:
    """`nimbus-scenarios validate|plan FILE` runs and exits 0; `merge`/`report`/`submit` parse."""
    (argv,) = stages
    # They read files a cluster run produced, or need a cluster: parse only.
    if argv[1] in ("merge", "report", "submit"):
        cli_accepts(argv[1:])
        return
    assert argv[1] in ("validate", "plan")
    with contextlib.chdir(REPO), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv[1:]) == ExitCode.OK


def check_kubectl(stages: Pipeline, home: Path) -> None:
    """kubectl commands: each one's files, kustomizations, names and labels exist and are valid."""
    first = stages[0]
    verb = first[1]
    if verb == "create" and "--from" not in " ".join(first):
        check_create_job(stages, home)
        return
    assert len(stages) == 1, f"unexpected pipeline: {stages}"
    if verb in ("apply", "delete") and option(first, "-k") is not None:
        directory = REPO / str(option(first, "-k"))
        validate(kustomize(directory, home), str(directory.relative_to(REPO)))
        return
    if verb == "apply":
        path = REPO / str(option(first, "-f"))
        assert path in direct_manifests(), f"{path} is not a checked manifest"
        return
    assert option(first, "-n", "--namespace") == NAMESPACE, f"no -n {NAMESPACE}: {first}"
    objects = manifest_objects()
    if verb == "create":  # --from=cronjob/NAME
        kind, _, name = str(option(first, "--from")).partition("/")
        assert kind == "cronjob"
        assert [o for o in objects if o["kind"] == "CronJob" and o["metadata"]["name"] == name]
        return
    selector = option(first, "-l", "--selector")
    if selector is not None:
        if selector in CONSUMER_LABELS:
            return
        key, _, value = selector.partition("=")
        if key == "batch.kubernetes.io/job-name":  # set by Kubernetes on a Job's pods
            assert [o for o in objects if o["kind"] == "Job" and o["metadata"]["name"] == value]
            return
        matched = [o for o in objects if o["metadata"].get("labels", {}).get(key) == value]
        assert matched, f"no manifest object is labelled {selector}"
        if verb == "delete":  # deleting by label must catch every load-test Job
            jobs = [o for o in objects if o["kind"] == "Job"]
            assert all(o in matched for o in jobs)
        return
    words = positionals(first[2:])
    kind, _, name = words[0].partition("/")
    if kind in CONSUMER_RESOURCES:
        return
    assert kind in ("job", "jobs"), f"unexpected resource in {first}"
    for job_name in [name] if name else words[1:]:
        (job,) = [o for o in objects if o["kind"] == "Job" and o["metadata"]["name"] == job_name]
        pod = job["spec"]["template"]["spec"]
        wanted = option(first, "-c", "--container")
        if wanted is not None:
            assert wanted in [c["name"] for c in [*pod["initContainers"], *pod["containers"]]]


def check_create_job(stages: Pipeline, home: Path) -> None:
    """`kubectl create job ... -- nimbus-scenarios ...` piped through `set serviceaccount`.

    Every stage but the final `kubectl apply -f -` runs for real, offline; the Job it yields
    runs the image's CLI with args the parser accepts, as the nimbus-scenarios ServiceAccount,
    with no retries (`kubectl patch --local` sets `backoffLimit: 0`).
    """
    *local, last = stages
    assert last == ["kubectl", "apply", "-f", "-"], "a one-off Job should be applied last"
    output: str | None = None
    for argv in local:
        assert argv[0] == "kubectl"
        assert "--dry-run=client" in argv or "--local" in argv, f"not offline: {argv}"
        output = run_kubectl(argv[1:], home, stdin=output).stdout
    (job,) = load_documents_from(str(output))
    assert job["kind"] == "Job"
    assert job["metadata"]["namespace"] == NAMESPACE
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert job["spec"]["backoffLimit"] == 0, "the raw form must not retry (Kubernetes' default: 6)"
    (item,) = pod["containers"]
    assert item["image"] == f"{IMAGE}:latest"
    assert "args" not in item, "kubectl create job puts `-- ...` in command"
    command = item["command"]
    assert command[0] == "nimbus-scenarios", "the command replaces the ENTRYPOINT: start with it"
    cli_accepts(command[1:])
    args = build_parser().parse_args(seed_form(command[1:]))
    assert args.url == CONSUMER_URL


def load_documents_from(text: str) -> list[Manifest]:
    """YAML documents from text."""
    yaml = pytest.importorskip("yaml")
    return [doc for doc in yaml.safe_load_all(text) if doc]


CHECKERS: dict[str, Callable[[Pipeline, Path], None]] = {
    "docker": check_docker,
    "kind": check_kind,
    "cp": check_cp,
    "nimbus-scenarios": check_cli,
    "kubectl": check_kubectl,
}


@pytest.mark.parametrize("command", list(dict.fromkeys(doc_commands())), ids=lambda c: c[:90])
def test_every_doc_command_is_checked(command: str, kube_home: Path) -> None:
    """Each command in docs/cluster.md has a checker and passes it (nothing is contacted)."""
    stages = pipeline(command)
    program = stages[0][0]
    assert program in CHECKERS, f"no checker for `{program}` commands: {command}"
    CHECKERS[program](stages, kube_home)


def test_doc_has_the_seed_workflow() -> None:
    """The doc keeps the seed's steps: build, apply, watch, logs, cleanup, custom, concurrent."""
    commands = doc_commands()
    joined = "\n".join(commands)
    for needle in (
        "docker build -t nimbusguard-generator",
        "kubectl apply -f manifests/components/load-generator-jobs/job-heavy.yaml",
        "kubectl create job load-test-heavy --from=cronjob/load-test-heavy -n nimbusguard",
        "kubectl get jobs,pods -n nimbusguard -l load-test=heavy -w",
        "kubectl logs -f job/load-test-heavy",
        "kubectl delete jobs -n nimbusguard -l component=load-generator",
        "kubectl delete job load-test-heavy",
        "kubectl apply -f manifests/examples/job-custom.yaml",
        "kubectl create job burst-test",
    ):
        assert needle in joined, f"missing from docs/cluster.md: {needle}"


def test_one_off_job_contacts_no_server(tmp_path: Path) -> None:
    """The doc's `kubectl create job --dry-run=client | kubectl set --local` sends nothing."""
    (command,) = [c for c in doc_commands() if c.startswith("kubectl create job load-test-now")]
    *local, _ = pipeline(command)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        server = f"https://127.0.0.1:{listener.getsockname()[1]}"
        output: str | None = None
        for argv in local:
            output = run_kubectl(argv[1:], tmp_path, stdin=output, server=server).stdout
        with pytest.raises(TimeoutError):
            listener.accept()


def test_job_table_matches_the_job_files() -> None:
    """Each row of the job table names a Job file, its scenario, planned time and deadline."""
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `(job-[\w-]+\.yaml)` \| `(\w+)` \| ([\d:]+) \| (\d+) min \|", text, flags=re.M
    )
    files = sorted(p.name for p in JOBS_COMPONENT.glob("job-*.yaml"))
    assert sorted(r[0] for r in rows) == files
    for file, scenario, planned, deadline in rows:
        (job,) = load_documents(JOBS_COMPONENT / file)
        args = container(job["spec"]["template"], MAIN_CONTAINER)["args"]
        assert args[:2] == ["run", scenario]
        plan = compile_source(read_source(builtin_path(scenario)))
        assert clock_text(plan.duration_s) == planned, (
            f"{file}: planned {clock_text(plan.duration_s)}"
        )
        assert job["spec"]["activeDeadlineSeconds"] == int(deadline) * 60


def test_doc_paths_exist() -> None:
    """Every manifests/ path the doc mentions exists."""
    text = DOC.read_text(encoding="utf-8")
    for path in set(re.findall(r"(?<![\w-])manifests/[\w./-]+[\w/]", text)):
        assert (REPO / path).exists(), f"docs/cluster.md mentions missing {path}"
    assert MANIFESTS.is_dir()
