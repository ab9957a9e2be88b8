"""The results document: a versioned JSON record of one run, written atomically, and read back.

It is the product of a run: the console summary, the HTML and JUnit reports and `merge` read only
this. Field names listed in `REQUIRED_FIELDS` are a contract with other tools.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PHASE_FIELDS",
    "REQUIRED_FIELDS",
    "SCHEMA_VERSION",
    "ResultsError",
    "load_documents",
    "load_results",
    "write_atomic",
    "write_results",
]

SCHEMA_VERSION = 1

REQUIRED_FIELDS = (
    "schema_version",
    "run_id",
    "scenario",
    "verdict",
    "exit_code",
    "trace_id",
    "phases",
    "expectations",
    "replicas",
)
PHASE_FIELDS = (
    "name",
    "start_s",
    "end_s",
    "target_rate",
    "achieved_rate",
    "scheduled",
    "sent",
    "dropped",
    "succeeded",
    "failed",
    "latency_ms",
)
EXPECTATION_FIELDS = ("text", "scope", "verdict", "observed", "met_at_s")


class ResultsError(Exception):
    """A results file that cannot be written or read."""


def write_results(document: Mapping[str, Any], path: Path) -> Path:
    """Write `document` to `path` atomically (a temp file in the same directory, then rename)."""
    text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return write_atomic(path, text)


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same directory and a rename, so a
    reader never sees half a file and a failed write leaves the old one in place.

    A path that exists and is not a regular file (`/dev/stdout`, a FIFO, a device such as
    `/dev/full`) is written to directly: renaming a temp file over it would replace the device
    node itself (as root, in /dev).
    """
    if path.exists() and not path.is_file() and not path.is_dir():
        with path.open("w", encoding="utf-8", errors="replace") as stream:
            stream.write(text)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            # mkstemp makes the file 0600; give it the mode open() would (0666 & ~umask).
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_results(path: Path) -> dict[str, Any]:
    """Read a results file, checking its schema version and required fields."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a results file ({exc})") from None
    return _checked(path, data)


def _checked(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a results file (not a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: results schema version {version!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ResultsError(f"{path}: missing fields: {', '.join(missing)}")
    return data


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The results in a file: a results file, or a log (`kubectl logs` of sharded pods run with
    `--print-results`) holding one results document per line among other lines."""
    try:
        return [load_results(path)]
    except ResultsError as exc:
        if "not a results file" not in str(exc):
            raise
        first = exc
    documents = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            text = line.strip()
            if not (text.startswith("{") and '"schema_version"' in text):
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and "run_id" in data and "phases" in data:
                documents.append(_checked(path, data))
    if not documents:
        raise first
    return documents
