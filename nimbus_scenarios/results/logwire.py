"""Results documents through a pod log: gzip, base64, numbered lines with checks.

`run --print-results` writes its document to stdout for `submit` and `merge` to find in the pod's
log. One JSON line does not survive the trip: a 30-minute run's document is near 1 MB, the
kubelet splits lines over 16 KiB, rotates the log at 10 MiB, and Loki refuses lines over 256 KB.
So the document (`to_json(results, indent=None)`, UTF-8) is gzip-compressed, base64-encoded and
cut into chunks of `CHUNK_CHARS` characters, one line each, every line at most `MAX_LINE_CHARS`:

    nimbus-results v1 run=<run> shard=<i>/<N>|- chunk=<k>/<n> sha256=<64 hex> crc32=<8 hex> <data>

- `run`: the run id as a file-name-safe label (`io.safe_file_name(run_id, 64)`); `shard`: the
  shard's index and count, `-` for a document without one;
- `chunk`: this line's number, from 1, and the document's number of lines;
- `sha256`: of the whole gzip payload (the base64-decoded concatenation of every chunk): with the
  run and shard it names the document, and it verifies the reassembled payload;
- `crc32`: of `run=… sha256=<hex> <data>`, the line from `run=` on without this field, so that
  a damaged line is found and named on its own, whichever of its fields is damaged;
- `data`: the chunk, base64 characters only.

Reading (`documents_in_text`) looks for the prefix anywhere in a line (`kubectl logs --prefix`
and `--timestamps` put text before it), so the logs of several pods can be concatenated,
interleaved with any other output, and hold a line twice (a log read again) or in any order. Each
document must arrive whole: a missing chunk, a damaged line that no intact copy replaces, lines
of one document that disagree on its number of chunks, or a payload whose sha256 differs are
refused (`ResultsError`, exit 2) naming the run, the shard and the chunk numbers. The payload
inflates to at most `io.MAX_RESULTS_BYTES` and is read as strictly as a results file. One-line
JSON documents, which `--print-results` wrote before this format, are still read.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.results.io import (
    MAX_RESULTS_BYTES,
    document_text,
    from_json,
    from_json_data,
    parse_json,
    read_document_text,
    safe_file_name,
    to_json,
)
from nimbus_scenarios.results.model import RunResults, ShardInfo

__all__ = [
    "CHUNK_CHARS",
    "MAX_LINE_CHARS",
    "PREFIX",
    "chunk_of",
    "documents_in_text",
    "encode_lines",
    "load_documents",
]

PREFIX: Final = "nimbus-results"
VERSION: Final = 1

MAX_LINE_CHARS: Final = 12_000
"""The longest line written: well under the 16 KiB at which the kubelet (and Docker's json-file
driver) split a line, with room for a prefix the log collector adds."""

CHUNK_CHARS: Final = 11_600
"""Base64 characters per line (a multiple of 4); the fields before them take at most 400."""

MAX_CHUNKS: Final = math.ceil(math.ceil(MAX_RESULTS_BYTES * 1.01 / 3) * 4 / CHUNK_CHARS)
"""The most chunks a document may claim: enough for a payload as large as the largest results
document, even if it did not compress at all."""

_LINE = re.compile(rf"{PREFIX} v(?P<version>\d{{1,6}})(?: (?P<rest>.*)|$)")
_FIELDS = re.compile(
    r"run=(?P<run>[A-Za-z0-9._-]{1,64}) shard=(?P<shard>-|\d{1,6}/\d{1,6}) "
    r"chunk=(?P<index>\d{1,6})/(?P<count>\d{1,6}) sha256=(?P<sha>[0-9a-f]{64}) "
    r"crc32=(?P<crc>[0-9a-f]{8}) (?P<data>[A-Za-z0-9+/=]*)"
)


# ------------------------------------------------------------------------------ writing


def shard_label(shard: ShardInfo | None) -> str:
    """`i/N`, or `-` for a document without a shard."""
    return "-" if shard is None else f"{shard.index}/{shard.count}"


def encode_lines(results: RunResults) -> tuple[str, ...]:
    """The document as log lines (no newlines), each at most `MAX_LINE_CHARS` characters."""
    payload = gzip.compress(to_json(results, indent=None).encode("utf-8"), mtime=0)
    text = base64.b64encode(payload).decode("ascii")
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    run = safe_file_name(results.run_id, 64)
    shard = shard_label(results.shard)
    sha = hashlib.sha256(payload).hexdigest()
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        fields = f"run={run} shard={shard} chunk={number}/{len(chunks)} sha256={sha}"
        crc = _crc(fields, chunk)
        lines.append(f"{PREFIX} v{VERSION} {fields} crc32={crc} {chunk}")
    return tuple(lines)


def _crc(fields: str, data: str) -> str:
    return f"{zlib.crc32(f'{fields} {data}'.encode('ascii')):08x}"


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class _Key:
    """What names one document in a log."""

    run: str
    shard: str
    sha: str

    def __str__(self) -> str:
        shard = "" if self.shard == "-" else f" shard {self.shard}"
        return f"results of run {self.run}{shard} (sha256 {self.sha[:12]})"


@dataclass(slots=True)
class _Document:
    """The chunks of one document found so far (mutable while the log is read)."""

    key: _Key
    first_line: int
    counts: dict[int, int] = field(default_factory=dict)
    """Each number of chunks the document's lines claim, with the first log line claiming it."""
    chunks: dict[int, str] = field(default_factory=dict)
    damaged: dict[int, tuple[int, str]] = field(default_factory=dict)
    """Chunk number → (log line, why) of a copy that failed its check."""
    conflicts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Scan:
    documents: dict[_Key, _Document] = field(default_factory=dict)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    """(log line, why) of lines with the prefix whose fields cannot be read at all."""
    old: list[tuple[int, str]] = field(default_factory=list)
    """(log line, text) of one-line JSON documents (before chunked lines)."""


def documents_in_text(text: str, name: str) -> list[RunResults]:
    """Every results document in a log text, in the order they start in it.

    Chunked documents are reassembled and verified; one-line JSON documents are read as
    before. `name` (the log's file name) begins every error message."""
    scan = _scan(text)
    problems = [f"line {line}: {why}" for line, why in scan.unreadable]
    for document in scan.documents.values():
        problems.extend(f"{document.key}: {problem}" for problem in _problems(document))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more problems)" if len(problems) > 10 else ""
        raise ResultsError(f"{name}: a results document in the log is not whole: {shown}{more}")
    found: list[tuple[int, RunResults]] = [
        (document.first_line, _decode(document, name)) for document in scan.documents.values()
    ]
    found.extend(
        (line, results) for line, item in scan.old if (results := _old_document(item, name))
    )
    found.sort(key=lambda pair: pair[0])
    return [results for _, results in found]


def chunk_of(line: str) -> tuple[int, int] | None:
    """`(chunk, chunks)` of a results line whose fields can be read, else None (another line,
    or one cut short or damaged; its crc32 is not checked here)."""
    matched = _LINE.search(line.rstrip())
    if matched is None or matched["rest"] is None:
        return None
    fields = _FIELDS.fullmatch(matched["rest"])
    return None if fields is None else (int(fields["index"]), int(fields["count"]))


def _scan(text: str) -> _Scan:
    scan = _Scan()
    for number, line in enumerate(text.splitlines(), start=1):
        matched = _LINE.search(line.rstrip())
        if matched is not None:
            _read_line(scan, number, matched)
            continue
        stripped = line.strip()
        if stripped.startswith("{") and '"schema_version"' in stripped:
            scan.old.append((number, stripped))
    return scan


def _read_line(scan: _Scan, number: int, matched: re.Match[str]) -> None:
    version = int(matched["version"])
    if version != VERSION:
        scan.unreadable.append(
            (number, f"a `{PREFIX}` line of format v{version} (this version reads v{VERSION})")
        )
        return
    rest = matched["rest"] or ""
    fields = _FIELDS.fullmatch(rest)
    if fields is None:
        scan.unreadable.append(
            (number, f"a `{PREFIX}` line whose fields cannot be read (cut short or damaged)")
        )
        return
    key = _Key(fields["run"], fields["shard"], fields["sha"])
    document = scan.documents.get(key)
    if document is None:
        document = scan.documents[key] = _Document(key, number)
    index, count, data = int(fields["index"]), int(fields["count"]), fields["data"]
    header = rest.partition(" crc32=")[0]
    if _crc(header, data) != fields["crc"]:
        # The header fields may be the damaged part: a line that is not whole says nothing
        # about the document's number of chunks.
        document.damaged.setdefault(index, (number, "its crc32 does not match"))
        return
    document.counts.setdefault(count, number)
    if not 1 <= index <= count:
        document.conflicts.append(f"line {number} is chunk {index} of {count}")
        return
    known = document.chunks.setdefault(index, data)
    if known != data:
        document.conflicts.append(f"chunk {index} appears twice, different (line {number})")


def _problems(document: _Document) -> Iterator[str]:
    yield from document.conflicts
    counts = document.counts
    if len(counts) > 1:
        claims = ", ".join(f"{count} (line {line})" for count, line in sorted(counts.items()))
        yield f"its lines disagree on its number of chunks: {claims}"
        return
    if not counts:
        # Every line of this document is damaged: name them.
        for index, (line, why) in sorted(document.damaged.items()):
            yield f"chunk {index} is corrupt (line {line}: {why})"
        return
    (count,) = counts
    if count > MAX_CHUNKS:
        yield f"it claims {count} chunks (a results document takes at most {MAX_CHUNKS})"
        return
    missing = []
    for index in range(1, count + 1):
        if index in document.chunks:
            continue
        damage = document.damaged.get(index)
        if damage is None:
            missing.append(index)
        else:
            yield f"chunk {index}/{count} is corrupt (line {damage[0]}: {damage[1]})"
    if missing:
        numbers = _ranges(missing)
        are = "chunks {} of {} are" if len(missing) > 1 else "chunk {} of {} is"
        yield f"{are.format(numbers, count)} missing"
        # A damaged line whose own chunk number is intact elsewhere (or out of range) may be
        # the missing chunk with its number damaged: name it. A whole document needs none.
        for index, (line, why) in sorted(document.damaged.items()):
            if index in document.chunks or index > count:
                yield f"line {line} is damaged ({why}; it says chunk {index})"


def _ranges(numbers: list[int]) -> str:
    """`1, 3-5, 9`."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)


def _decode(document: _Document, name: str) -> RunResults:
    key = document.key
    where = f"{name}: {key}"
    text = "".join(document.chunks[i] for i in range(1, len(document.chunks) + 1))
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ResultsError(f"{where}: its chunks are not base64 ({exc})") from None
    if hashlib.sha256(payload).hexdigest() != key.sha:
        raise ResultsError(
            f"{where}: its chunks do not add up to the document (their sha256 is "
            f"{hashlib.sha256(payload).hexdigest()[:12]}, its lines say {key.sha[:12]})"
        )
    results = from_json(document_text(_inflate(payload, where), where), where)
    if (safe_file_name(results.run_id, 64), shard_label(results.shard)) != (key.run, key.shard):
        raise ResultsError(
            f"{where}: the document inside is run {results.run_id} shard "
            f"{shard_label(results.shard)}, not the one its lines name"
        )
    return results


def _inflate(payload: bytes, where: str) -> bytes:
    """The gzip payload inflated, to at most `MAX_RESULTS_BYTES` + 1 bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(payload, MAX_RESULTS_BYTES + 1)
    except zlib.error as exc:
        raise ResultsError(f"{where}: its payload does not inflate ({exc})") from None
    if inflater.unconsumed_tail or len(raw) > MAX_RESULTS_BYTES:
        limit = MAX_RESULTS_BYTES // (1024 * 1024)
        raise ResultsError(f"{where}: inflates past the {limit} MiB a results file may be")
    if not inflater.eof or inflater.unused_data:
        raise ResultsError(f"{where}: its payload is not one whole gzip stream")
    return raw


def _old_document(text: str, name: str) -> RunResults | None:
    """A one-line JSON document (what `--print-results` wrote before chunked lines), read
    strictly; None for a line that is other JSON (a structured log line)."""
    try:
        data = parse_json(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "run_id" in data and "phases" in data:
        return from_json_data(data, name)
    return None


def load_documents(path: Path) -> list[RunResults]:
    """The results in a file: a results file, or a log (`kubectl logs` of pods run with
    `--print-results`) holding chunked documents (or one-line JSON ones) among other lines."""
    text = read_document_text(path)
    problem = "no results document in it"
    try:
        data = parse_json(text)
    except ValueError as exc:
        data = None
        # One JSON document that failed (not text, nor a log of several: "Extra data"): why.
        if text.lstrip().startswith(("{", "[")) and not str(exc).startswith("Extra data"):
            problem = str(exc)
    if isinstance(data, dict):
        return [from_json_data(data, str(path))]
    documents = documents_in_text(text, str(path))
    if not documents:
        raise ResultsError(f"{path}: not a results file ({problem})")
    return documents
