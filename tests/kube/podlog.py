"""The `pods/log` subresource: a container's output as the API server serves it.

`PodLog` is one container's output, line by line with the time each line was written; the
emulated kubelet (`kubelet.py`) fills it while the container runs and ends it when the container
exits. `serve_log` answers `GET .../pods/NAME/log` from it, as a real server does:

- plain text (`text/plain`), the whole log so far, or with `follow=true` a stream that sends
  each line as it is written and ends when the container does;
- `tailLines`, `sinceSeconds`, `sinceTime`, `limitBytes`, `timestamps` and `container`;
- 404 for a pod that does not exist, and 400 "container ... is waiting to start: REASON" while
  its container has not started (being created, or its image not pulled).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import kmock

MAX_FOLLOW_S = 600.0
"""The longest a followed log stream stays open, whatever the container does."""

PULLING = {"ErrImagePull", "ImagePullBackOff"}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a container's output (without its newline) and when it was written."""

    at: datetime.datetime
    text: str


@dataclass
class PodLog:
    """One container's output so far; `ended` once the container has exited."""

    lines: list[LogLine] = field(default_factory=list)
    ended: bool = False
    _tick: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, text: str) -> None:
        """Add one line (no newline) written now."""
        self.lines.append(LogLine(datetime.datetime.now(datetime.UTC), text))
        self._wake()

    def end(self) -> None:
        """The container has exited: followers finish."""
        self.ended = True
        self._wake()

    @property
    def text(self) -> str:
        """The whole log as the API serves it."""
        return "".join(f"{line.text}\n" for line in self.lines)

    async def changed(self, timeout_s: float) -> None:
        """Wait until a line is written or the log ends, or `timeout_s` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tick.wait(), timeout_s)

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()


def status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    """A `Status` answer worded like the API server's."""
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return aiohttp.web.json_response(body, status=code)


async def serve_log(
    request: kmock.Request, pod: Mapping[str, Any] | None, log: PodLog | None
) -> aiohttp.web.StreamResponse:
    """Answer `GET .../pods/NAME/log` for `pod` (None: absent) from its container's `log`."""
    name = request.name
    if pod is None:
        return status(404, "NotFound", f'pods "{name}" not found')
    params = request.params
    containers = [c.get("name", "") for c in pod.get("spec", {}).get("containers", [])]
    container = params.get("container") or (containers[0] if containers else "")
    if container not in containers:
        return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
    if params.get("previous") == "true":
        message = f'previous terminated container "{container}" in pod "{name}" not found'
        return status(400, "BadRequest", message)
    if log is None:
        message = f'container "{container}" in pod "{name}" is waiting to start: {_waiting(pod)}'
        return status(400, "BadRequest", message)
    lines = _chosen(log.lines, params)
    stamps = params.get("timestamps") == "true"
    limit = int(params["limitBytes"]) if params.get("limitBytes") else None
    if params.get("follow") != "true":
        text = "".join(_render(line, stamps) for line in lines)
        return aiohttp.web.Response(text=text[:limit] if limit else text)
    return await _follow(request, log, lines, stamps, limit)


def _waiting(pod: Mapping[str, Any]) -> str:
    for state in pod.get("status", {}).get("containerStatuses", []):
        if state.get("state", {}).get("waiting", {}).get("reason") in PULLING:
            return "trying and failing to pull image"
    return "ContainerCreating"


def _chosen(lines: list[LogLine], params: Mapping[str, str]) -> list[LogLine]:
    """The lines the query asks for: since a moment, then the last `tailLines`."""
    since: datetime.datetime | None = None
    if params.get("sinceSeconds"):
        seconds = int(params["sinceSeconds"])
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    elif params.get("sinceTime"):
        since = datetime.datetime.fromisoformat(params["sinceTime"].replace("Z", "+00:00"))
    chosen = [line for line in lines if since is None or line.at >= since]
    if params.get("tailLines"):
        tail = int(params["tailLines"])
        chosen = chosen[-tail:] if tail > 0 else []
    return chosen


def _render(line: LogLine, stamps: bool) -> str:
    if not stamps:
        return f"{line.text}\n"
    return f"{line.at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {line.text}\n"


async def _follow(
    request: kmock.Request,
    log: PodLog,
    first: list[LogLine],
    stamps: bool,
    limit: int | None,
) -> aiohttp.web.StreamResponse:
    """Stream `first`, then every line written after them, until the container ends."""
    raw = request._raw_request
    assert raw is not None
    response = aiohttp.web.StreamResponse()
    response.content_type = "text/plain"
    await response.prepare(raw)
    sent = len(log.lines)  # `first` ends at the log's current end
    budget = limit if limit else None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_FOLLOW_S
    pending = list(first)
    with contextlib.suppress(ConnectionError):
        while True:
            for line in pending:
                data = _render(line, stamps).encode()
                if budget is not None:
                    data, budget = data[:budget], budget - len(data)
                await response.write(data)
                if budget is not None and budget <= 0:
                    await response.write_eof()
                    return response
            if log.ended and sent >= len(log.lines):
                break
            if loop.time() >= deadline or raw.transport is None or raw.transport.is_closing():
                break
            await log.changed(0.5)
            pending, sent = log.lines[sent:], len(log.lines)
        await response.write_eof()
    return response
