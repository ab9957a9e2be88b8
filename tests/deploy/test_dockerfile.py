"""The Dockerfile: non-root, CLI entrypoint, writable WORKDIR; its pip steps replayed for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from nimbus_scenarios.catalog import builtin_names
from tests.deploy.support import (
    MAIN_CONTAINER,
    REPO,
    all_jobs,
    constraint_pins,
    container,
    dockerfile_instructions,
    dockerfile_stages,
    image_workdir,
    no_binary_names,
    pip_steps,
)

BASE_IMAGE = "python:3.11-slim"


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image's (last) stage."""
    return dockerfile_stages()[-1]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ENV settings of a stage (KEY=VALUE form)."""
    values: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                values[key] = value
    return values


def copy_like_docker(origin: Path, dest: Path) -> None:
    """COPY semantics: a directory's contents go into `dest`; a file goes into directory `dest`."""
    if origin.is_dir():
        shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, dest / origin.name)


def test_base_image_is_python_311_slim() -> None:
    """Every stage starts from python:3.11-slim (through the PYTHON_IMAGE build arg)."""
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for keyword, rest in dockerfile_instructions()
        if keyword == "ARG" and "=" in rest
    }
    stages = dockerfile_stages()
    assert len(stages) >= 2, "expected a multi-stage build"
    for stage in stages:
        image = stage[0][1].split()[0]
        if image.startswith("${"):
            image = args[image.strip("${}")]
        assert image == BASE_IMAGE


def test_user_is_numeric_and_not_root() -> None:
    """The final USER is a numeric uid:gid, not 0, and the one the Jobs run as."""
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the image runs as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert not gid or gid.isdigit()
    for _, _, _, template in all_jobs():
        assert template["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_entrypoint_is_the_cli() -> None:
    """ENTRYPOINT is exec-form ["nimbus-scenarios"], so Job args are the CLI's arguments."""
    (entrypoint,) = [rest for keyword, rest in final_stage() if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["nimbus-scenarios"]


def test_python_environment() -> None:
    """No bytecode writes on a read-only root, unbuffered output for `kubectl logs -f`."""
    env = env_of(final_stage())
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_workdir_is_writable_and_mounted_by_every_job() -> None:
    """The WORKDIR (where results/ goes) belongs to USER and is an emptyDir in every Job."""
    workdir = image_workdir()
    user = next(rest for keyword, rest in reversed(final_stage()) if keyword == "USER")
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    assert f"chown {user} {workdir}" in runs
    for file, _, _, template in all_jobs():
        main = container(template, MAIN_CONTAINER)
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        mounted = {m["mountPath"]: volumes[m["name"]] for m in main["volumeMounts"]}
        assert workdir in mounted, f"{file}: {workdir} (the image's WORKDIR) is not mounted"
        assert "emptyDir" in mounted[workdir]


def test_dockerignore_admits_only_the_build_inputs() -> None:
    """.dockerignore excludes everything but what the build stage COPYs (.venv never ships)."""
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = set()
    for keyword, rest in dockerfile_stages()[0]:
        if keyword == "COPY" and not rest.startswith("--from"):
            sources.update(s.rstrip("/") for s in rest.split()[:-1])
    assert sources == admitted
    for path in sources:
        assert (REPO / path).exists()


# Four pip runs against the index and a C compile: about 30 s alone, but several minutes on two
# cores shared with other work, past the suite's 120 s default; each run is bounded at 300 s.
@pytest.mark.timeout(900)
def test_install_steps_work_in_a_fresh_venv(tmp_path: Path) -> None:
    """The Dockerfile's COPY and pip steps, replayed, give a venv whose CLI lists all built-ins.

    The build stage's COPY sources go to a clean context (so a file missing from COPY fails
    here), its pip steps build the wheels there with the stage's ENV (no pip cache, so every
    `--no-binary` dependency is really compiled from its sdist by this machine's compiler), the
    wheels are exactly image/constraints.txt's pins, the final stage's pip step installs them into
    a new virtualenv, and the image's own check, `nimbus-scenarios list`, runs from elsewhere:
    the scenarios and grammar come from the wheel, not the checkout.
    """
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the build stage compiles sdists (apt-get install gcc)")
    build, final = dockerfile_stages()[0], final_stage()
    assert ("RUN", "nimbus-scenarios list") in final, "the image should check its data files"
    context = tmp_path / "src"
    context.mkdir()
    for keyword, rest in build:
        if keyword == "COPY":
            *sources, dest = rest.split()
            for source in sources:
                copy_like_docker(REPO / source.rstrip("/"), context / dest)
    wheels = tmp_path / "wheels"

    def local(arg: str) -> list[str]:
        arg = re.sub(r"(^|=)/wheels(?=/|$)", lambda m: m[1] + str(wheels), arg)
        if "*" in arg:
            matches = sorted(Path(arg).parent.glob(Path(arg).name))
            assert len(matches) == 1, f"{arg} matches {matches}"
            return [str(matches[0])]
        return [arg]

    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def run(command: list[str], cwd: Path, extra: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            command,
            cwd=cwd,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    build_steps, final_steps = pip_steps(build), pip_steps(final)
    assert build_steps, "the build stage has no pip step"
    assert final_steps, "the final stage has no pip step"
    for step in build_steps:
        run(
            [sys.executable, "-m", "pip", *[w for a in step for w in local(a)]],
            context,
            env_of(build),
        )
    built = {parse_wheel_filename(path.name)[:2]: path.name for path in wheels.glob("*.whl")}
    names = {name for name, _ in built}
    pins = {(canonicalize_name(n), Version(v)) for n, v in constraint_pins()}
    assert set(built) == {*pins, (canonicalize_name("nimbus-scenarios"), Version("0.1.0"))}
    compiled = {canonicalize_name(n) for n in no_binary_names(build)}
    assert compiled, "the build stage compiles nothing from source"
    for (name, _), filename in built.items():
        if name in compiled:  # built here from its sdist, not a wheel from the index
            (tag,) = parse_wheel_filename(filename)[3]
            assert tag.platform.startswith("linux_"), filename
    assert compiled <= names
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    for step in final_steps:
        run(
            [str(venv / "bin" / "python"), "-m", "pip", *[w for a in step for w in local(a)]],
            tmp_path,
        )

    workdir = tmp_path / "work"
    workdir.mkdir()
    located = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import nimbus_scenarios; print(nimbus_scenarios.__file__)",
        ],
        workdir,
    )
    assert Path(located.strip()).is_relative_to(venv), "the package came from the checkout"
    listing = run([str(venv / "bin" / "nimbus-scenarios"), "list"], workdir)
    listed = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert listed == builtin_names()
    assert len(listed) == 8
