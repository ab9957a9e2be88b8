"""Pin the image's runtime dependencies and record which have a wheel for each image platform.

    .venv/bin/python tools/image_wheels.py

Resolves what `pip install .` installs today (pip's dry-run report, nothing installed), then
asks the package index, once per pin and platform, for the wheel pip would pick for CPython 3.11
on that platform's manylinux (`pip download --only-binary=:all: --no-deps --platform ...`), and
for the sdist of any pin that lacks one. It writes two files:

- image/constraints.txt: the pins, which the Dockerfile's build stage resolves against, so the
  image gets exactly the versions recorded;
- image/wheels.json: the record, per pin: version, requirements (names), the wheel per platform
  (null when the index has none) and, where a wheel is missing, the sdist to build.

tests/deploy/test_image_platforms.py checks, offline, that the record covers exactly the pins
the project resolves to and that every pin without a wheel is built in the build stage. Run this
again after changing a dependency in pyproject.toml (or to take newer transitive releases).
Exit codes: 0 written, 2 wrong interpreter or usage, 4 pip or the index failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
IMAGE_DIR = REPO / "image"
CONSTRAINTS = IMAGE_DIR / "constraints.txt"
RECORD = IMAGE_DIR / "wheels.json"

PYTHON = "3.11"
# The oldest glibc of the python:3.11-slim bases (Debian bookworm; trixie has 2.41): a wheel
# for manylinux_2_X with X up to this runs on either.
GLIBC_MINOR = 36
# Docker platform -> (Python's platform_machine, the oldest manylinux glibc minor it has).
PLATFORMS: Mapping[str, tuple[str, int]] = {
    "linux/amd64": ("x86_64", 5),
    "linux/arm64": ("aarch64", 17),
}
LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
PIP_TIMEOUT_S = 300
WORKERS = 4


class ToolError(Exception):
    """A failure this tool reports in one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Pin:
    """One resolved distribution: its name (as published), version and requirement names."""

    name: str
    version: str
    requires: tuple[str, ...]


def platform_tags(machine: str, oldest_minor: int) -> list[str]:
    """The manylinux platform tags a python:3.11-slim image on `machine` can install."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(oldest_minor, GLIBC_MINOR + 1)]
    tags += [
        f"{alias}_{machine}" for minor, alias in LEGACY_MANYLINUX.items() if minor >= oldest_minor
    ]
    return tags


def pip(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pip ARGS`, bounded in time; a timeout is an infrastructure failure."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"pip {' '.join(args[:2])} took over {PIP_TIMEOUT_S} s", 4) from exc


def resolve(project: Path, scratch: Path) -> dict[str, Any]:
    """pip's installation report for `pip install PROJECT` into an empty environment."""
    report = scratch / "report.json"
    result = pip(
        ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), "."],
        project,
    )
    if result.returncode != 0:
        raise ToolError(f"resolving {project} failed:\n{result.stderr.strip()}", 4)
    loaded: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return loaded


def closure(report: Mapping[str, Any], machine: str) -> list[Pin]:
    """The project's runtime requirements and theirs, with markers evaluated on linux/`machine`.

    The report was resolved on this machine; a requirement that applies only on `machine` and
    was therefore not resolved here is an error (it cannot be pinned from this report).
    """
    items = report["install"]
    project = next(item for item in items if item.get("requested"))
    by_name = {canonicalize_name(item["metadata"]["name"]): item["metadata"] for item in items}
    environment: dict[str, str] = {
        **{key: str(value) for key, value in default_environment().items()},
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "python_version": PYTHON,
    }

    def wanted(metadata: Mapping[str, Any], extras: Iterable[str]) -> list[Requirement]:
        chosen = []
        for text in metadata.get("requires_dist", []):
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras)
            ):
                chosen.append(requirement)
        return chosen

    pins: dict[str, Pin] = {}
    queue = [(canonicalize_name(project["metadata"]["name"]), frozenset[str]())]
    seen: set[tuple[str, frozenset[str]]] = set()
    root = queue[0][0]
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in by_name:
            raise ToolError(f"{name} is required on {machine} but was not resolved here", 4)
        metadata = by_name[name]
        requirements = wanted(metadata, extras)
        for requirement in requirements:
            queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
        if name != root:
            requires: set[str] = {canonicalize_name(r.name) for r in requirements}
            if name in pins:
                requires |= set(pins[name].requires)
            pins[name] = Pin(metadata["name"], metadata["version"], tuple(sorted(requires)))
    return sorted(pins.values(), key=lambda pin: canonicalize_name(pin.name))


def downloaded(pin: Pin, options: list[str], scratch: Path) -> str | None:
    """The file pip downloads for `pin` with `options`, or None when the index has none."""
    target = Path(tempfile.mkdtemp(dir=scratch))
    result = pip(
        [
            "download",
            "--quiet",
            "--no-deps",
            "--dest",
            str(target),
            *options,
            f"{pin.name}=={pin.version}",
        ],
        scratch,
    )
    files = sorted(path.name for path in target.iterdir())
    if result.returncode == 0 and len(files) == 1:
        return files[0]
    if "No matching distribution" in result.stderr:
        return None
    raise ToolError(f"pip download {pin.name}=={pin.version} failed:\n{result.stderr.strip()}", 4)


def wheel_options(platform: str) -> list[str]:
    """`pip download` options selecting CPython 3.11 wheels for a Docker platform."""
    machine, oldest = PLATFORMS[platform]
    options = [
        "--only-binary=:all:",
        "--python-version",
        PYTHON,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON.replace('.', '')}",
    ]
    for tag in platform_tags(machine, oldest):
        options += ["--platform", tag]
    return options


def record_pin(pin: Pin, scratch: Path) -> dict[str, Any]:
    """One pin's entry: its wheel per platform and, if one is missing, its sdist."""
    wheels = {platform: downloaded(pin, wheel_options(platform), scratch) for platform in PLATFORMS}
    entry: dict[str, Any] = {
        "name": pin.name,
        "version": pin.version,
        "requires": list(pin.requires),
        "wheels": wheels,
    }
    if None in wheels.values():
        entry["sdist"] = downloaded(pin, ["--no-binary=:all:"], scratch)
    return entry


def build_record(project: Path) -> dict[str, Any]:
    """Resolve `project` and look up every pin's wheels (the record, as written)."""
    with tempfile.TemporaryDirectory(prefix="image-wheels-") as tmp:
        scratch = Path(tmp)
        report = resolve(project, scratch)
        per_platform = {
            platform: closure(report, machine) for platform, (machine, _) in PLATFORMS.items()
        }
        first, *others = per_platform.values()
        if any(pins != first for pins in others):
            raise ToolError(
                "the platforms resolve to different pins: one lock cannot serve both", 4
            )
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            entries = list(pool.map(lambda pin: record_pin(pin, scratch), first))
    return {
        "generated_by": "python tools/image_wheels.py",
        "python": PYTHON,
        "glibc": f"2.{GLIBC_MINOR}",
        "platforms": {platform: machine for platform, (machine, _) in PLATFORMS.items()},
        "pins": entries,
    }


def constraints_text(record: Mapping[str, Any]) -> str:
    """image/constraints.txt: one `name==version` a line, the pins of the record."""
    lines = [
        "# The image's runtime dependencies, pinned: the Dockerfile's build stage resolves",
        "# against this file. Generated with image/wheels.json by tools/image_wheels.py.",
        *(f"{pin['name']}=={pin['version']}" for pin in record["pins"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--project", type=Path, default=REPO, help="the project to resolve")
    args = parser.parse_args(argv)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != PYTHON:
        print(
            f"image_wheels: run me with Python {PYTHON} (the image's), not {running}",
            file=sys.stderr,
        )
        return 2
    try:
        record = build_record(args.project)
    except ToolError as exc:
        print(f"image_wheels: {exc}", file=sys.stderr)
        return exc.code
    IMAGE_DIR.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    CONSTRAINTS.write_text(constraints_text(record), encoding="utf-8")
    missing = []
    for pin in record["pins"]:
        lacking = [platform for platform, wheel in pin["wheels"].items() if wheel is None]
        if lacking:
            missing.append(f"{pin['name']}=={pin['version']} ({', '.join(lacking)})")
    written = f"{CONSTRAINTS.relative_to(REPO)} and {RECORD.relative_to(REPO)}"
    print(f"{len(record['pins'])} pins written to {written}")
    print("without a wheel:", ", ".join(missing) if missing else "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
