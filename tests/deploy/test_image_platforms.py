"""The image builds for linux/amd64 and linux/arm64: every pin has a wheel there or is compiled.

image/wheels.json records, per pinned runtime dependency, the wheel the package index has for
CPython 3.11 on each platform (tools/image_wheels.py asked it; these tests reach no network).
They check that the record covers exactly the pins the project resolves to, that each recorded
wheel installs on its platform's python:3.11-slim, and that every pin lacking one is compiled
from its sdist in the Dockerfile's build stage, the only stage with a compiler.
test_dockerfile.py replays the build stage's pip steps, which compiles those sdists here.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from tests.deploy.support import (
    IMAGE_CONSTRAINTS,
    IMAGE_PLATFORMS,
    IMAGE_RECORD,
    REPO,
    constraint_pins,
    dockerfile_stages,
    no_binary_names,
    pip_steps,
)

MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
PYTHON = (3, 11)
REGENERATE = "regenerate with: .venv/bin/python tools/image_wheels.py"
COMPILERS = ("build-essential", "gcc")
LEGACY_GLIBC = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}


@cache
def record() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(IMAGE_RECORD.read_text(encoding="utf-8"))
    return loaded


def pins() -> dict[str, dict[str, Any]]:
    """The record's pins by canonical name."""
    return {canonicalize_name(pin["name"]): pin for pin in record()["pins"]}


def glibc_minor() -> int:
    major, _, minor = record()["glibc"].partition(".")
    assert major == "2"
    return int(minor)


def installable(tag: Tag, machine: str, glibc: int) -> bool:
    """Whether CPython 3.11 on linux/`machine` with glibc 2.`glibc` installs a `tag` wheel."""
    interpreter = re.fullmatch(r"(cp|py)(\d)(\d*)", tag.interpreter)
    if interpreter is None or int(interpreter[2]) != PYTHON[0]:
        return False
    minor = int(interpreter[3]) if interpreter[3] else 0
    if tag.abi == "abi3":
        python_ok = interpreter[1] == "cp" and minor <= PYTHON[1]
    elif tag.abi == "none":
        python_ok = not interpreter[3] or minor == PYTHON[1]
    else:
        python_ok = tag.abi == f"cp{PYTHON[0]}{PYTHON[1]}" and minor == PYTHON[1]
    if tag.platform == "any":
        return python_ok and tag.abi == "none"
    legacy = re.fullmatch(r"(manylinux\d+)_(\w+)", tag.platform)
    modern = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", tag.platform)
    if modern:
        needs, arch = int(modern[1]), modern[2]
    elif legacy and legacy[1] in LEGACY_GLIBC:
        needs, arch = LEGACY_GLIBC[legacy[1]], legacy[2]
    else:
        return False
    return python_ok and arch == machine and needs <= glibc


def project_pins() -> dict[str, Version]:
    """pyproject.toml's runtime dependencies, each pinned with ==, by canonical name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {}
    for text in project["dependencies"]:
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{text}: the project pins its dependencies with =="
        pinned[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pinned


def build_stage() -> list[tuple[str, str]]:
    (build,) = [stage for stage in dockerfile_stages() if " AS build" in stage[0][1]]
    return build


def test_record_covers_exactly_the_resolved_pins() -> None:
    """The project's pins and, through their recorded requirements, all of theirs: no more.

    A dependency added to pyproject.toml, or a pin changed there, without running the tool
    fails here; so does a record entry nothing requires any more.
    """
    recorded = pins()
    direct = project_pins()
    missing = sorted(name for name in direct if name not in recorded)
    assert not missing, f"no record for {missing}: {REGENERATE}"
    for name, version in direct.items():
        assert Version(recorded[name]["version"]) == version, f"{name}: {REGENERATE}"
    reached: set[str] = set()
    queue = list(direct)
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        assert name in recorded, f"{name} (a dependency's dependency) has no record: {REGENERATE}"
        reached.add(name)
        queue += [canonicalize_name(required) for required in recorded[name]["requires"]]
    assert sorted(reached) == sorted(recorded), f"entries nothing requires: {REGENERATE}"


def test_constraints_pin_exactly_the_record() -> None:
    """image/constraints.txt, which the build stage resolves against, pins the recorded versions."""
    locked = {canonicalize_name(name): Version(version) for name, version in constraint_pins()}
    recorded = {name: Version(pin["version"]) for name, pin in pins().items()}
    assert locked == recorded, REGENERATE


def test_record_describes_the_image_platforms() -> None:
    """The record was made for CPython 3.11 on both platforms the image is built for."""
    assert record()["python"] == f"{PYTHON[0]}.{PYTHON[1]}"
    assert record()["platforms"] == MACHINES
    assert tuple(MACHINES) == IMAGE_PLATFORMS
    for pin in record()["pins"]:
        assert sorted(pin["wheels"]) == sorted(IMAGE_PLATFORMS), pin["name"]


def test_every_pin_has_a_wheel_for_each_platform_or_is_compiled() -> None:
    """Each recorded wheel is the pin's and installs on the platform's python:3.11-slim; a pin
    without one has an sdist and is named in the build stage's `--no-binary`."""
    compiled = {canonicalize_name(name) for name in no_binary_names(build_stage())}
    for name, pin in pins().items():
        for platform, wheel in pin["wheels"].items():
            if wheel is None:
                sdist = pin.get("sdist")
                assert sdist, f"{name} has neither a {platform} wheel nor an sdist"
                assert parse_sdist_filename(sdist) == (name, Version(pin["version"]))
                assert name in compiled, (
                    f"{name} has no {platform} wheel: build it in the build stage "
                    "(pip wheel --no-binary NAME)"
                )
                continue
            wheel_name, version, _, tags = parse_wheel_filename(wheel)
            assert (wheel_name, version) == (name, Version(pin["version"])), wheel
            assert any(installable(tag, MACHINES[platform], glibc_minor()) for tag in tags), (
                f"{wheel} does not install on {platform}"
            )


def test_build_stage_compiles_only_what_lacks_a_wheel() -> None:
    """`--no-binary` names only pins some platform has no wheel for: nothing compiles needlessly."""
    recorded = pins()
    for name in no_binary_names(build_stage()):
        key = canonicalize_name(name)
        assert key in recorded, f"--no-binary {name}: not a pinned dependency"
        assert None in recorded[key]["wheels"].values(), f"{name} has wheels for every platform"


def test_only_the_build_stage_has_a_compiler() -> None:
    """The build stage installs a compiler before its pip steps; the final stage installs none
    and installs from the built wheels only (`--no-index`)."""
    build, final = build_stage(), dockerfile_stages()[-1]
    runs = [rest for keyword, rest in build if keyword == "RUN"]
    apt = next(i for i, rest in enumerate(runs) if "apt-get install" in rest)
    first_pip = next(i for i, rest in enumerate(runs) if rest.startswith("pip "))
    assert apt < first_pip
    assert any(compiler in runs[apt].split() for compiler in COMPILERS)
    final_runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "apt-get" not in final_runs
    assert not any(compiler in final_runs.split() for compiler in COMPILERS)
    (install,) = pip_steps(final)
    assert install[0] == "install"
    assert "--no-index" in install


def test_build_stage_resolves_against_the_constraints() -> None:
    """The pip step that resolves dependencies uses image/constraints.txt, which is COPYed in."""
    build = build_stage()
    resolving = [step for step in pip_steps(build) if "--no-deps" not in step]
    assert resolving, "no build step resolves the dependencies"
    relative = str(IMAGE_CONSTRAINTS.relative_to(REPO))
    for step in resolving:
        given = [step[i + 1] for i, word in enumerate(step) if word in ("-c", "--constraint")]
        given += [word.partition("=")[2] for word in step if word.startswith("--constraint=")]
        assert given == [relative], step
    copied = [rest.split() for keyword, rest in build if keyword == "COPY"]
    assert [relative, str(IMAGE_CONSTRAINTS.parent.relative_to(REPO)) + "/"] in copied


@pytest.mark.parametrize(
    ("filename", "platform", "expected"),
    [
        ("a-1-py3-none-any.whl", "linux/arm64", True),
        ("a-1-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl", "linux/arm64", True),
        ("a-1-cp310-abi3-manylinux2014_aarch64.whl", "linux/arm64", True),
        ("a-1-cp311-cp311-manylinux1_x86_64.whl", "linux/amd64", True),
        ("a-1-cp311-cp311-manylinux1_x86_64.whl", "linux/arm64", False),
        ("a-1-cp311-cp311-manylinux_2_39_aarch64.whl", "linux/arm64", False),
        ("a-1-cp312-cp312-manylinux_2_17_aarch64.whl", "linux/arm64", False),
        ("a-1-cp312-abi3-manylinux_2_17_aarch64.whl", "linux/arm64", False),
        ("a-1-cp311-cp311-musllinux_1_2_aarch64.whl", "linux/arm64", False),
        ("a-1-cp311-cp311-linux_aarch64.whl", "linux/arm64", False),
        ("a-1-py2-none-any.whl", "linux/amd64", False),
    ],
)
def test_installable_judges_tags(filename: str, platform: str, expected: bool) -> None:
    """The check above accepts exactly the wheels pip installs on the slim image (glibc 2.36)."""
    tags = parse_wheel_filename(filename)[3]
    assert any(installable(tag, MACHINES[platform], 36) for tag in tags) is expected
