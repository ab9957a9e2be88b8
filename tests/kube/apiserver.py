"""kmock's KubernetesEmulator, extended where the tests need a real API server's behaviour.

kmock keeps objects in memory and serves list/get/create/patch/delete and a watch stream, but
it has no resourceVersions, ignores field and label selectors, replays every object as ADDED
on each watch, never answers 410 Gone, has no RBAC and stores SelfSubjectAccessReviews as
plain objects. `ApiServer` adds, on top of it and only for these tests:

- a global resourceVersion stamped on every write and an event log, so a watch resumes from a
  resourceVersion (replaying what happened since) and the list carries the collection's version;
- `compact()`, after which a watch from an older version gets an ERROR event with code 410;
- `fieldSelector` (`metadata.name`, `metadata.namespace`) and `labelSelector` (`k=v`, `k!=v`,
  `k`, `!k`, `k in (…)`, `k notin (…)`) on list and watch, and `timeoutSeconds` on watch;
- a denied set of (verb, group, resource): such requests get 403, and SelfSubjectAccessReviews
  are answered from the same set;
- `drop_watches()` (abruptly or cleanly) and `watch_gate` (hold new watch requests), to cut the
  stream and change things while the client is disconnected; `go_down()` to play a dead server;
- `bookmark_every(s)`: BOOKMARK events on watches that ask for them (`allowWatchBookmarks`),
  carrying the version up to which the stream has sent every change;
- `silence_watches()`: the open streams stay open but send nothing more, not even their end at
  `timeoutSeconds` (a stuck proxy connection), while later watches work; with `new=True` later
  watches are silent from the start too (a stuck watch cache), until `voice_watches()`;
- `state.fetches`: every GET of one object, counted.

docs/kmock.md lists the differences from a real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import kmock
from kubernetes import client as k8s

from tests.kube import store
from tests.kube.podlog import PodLog, serve_log, status
from tests.kube.selectors import selected

BUILTIN_GROUPS = frozenset({"", "apps", "autoscaling", "batch"})
VERBS = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.UPDATE: "patch",
    kmock.action.DELETE: "delete",
}
WRITES = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
KINDS = {"deployments": "Deployment", "pods": "Pod", "jobs": "Job", "configmaps": "ConfigMap"}
ORPHANING = frozenset({("batch", "jobs")})
"""Resources whose DELETE orphans their dependents unless told otherwise (batch/v1 Jobs do)."""
Denied = tuple[str, str, str]  # (verb, group, resource)
Listener = Callable[[str, str, str, dict[str, Any]], None]
"""Told every change as (group, plural, event type, object): the emulated controllers."""


@dataclass
class _Stream:
    """One open watch request."""

    request: kmock.Request
    dropped: bool = False
    abrupt: bool = False
    silent: bool = False


@dataclass
class _Event:
    version: int
    group: str
    resource: str
    namespace: str | None
    body: dict[str, Any]


@dataclass
class ApiState:
    """What `ApiServer` adds to kmock's state."""

    version: int = 0
    compacted: int = 0
    log: list[_Event] = field(default_factory=list)
    denied: set[Denied] = field(default_factory=set)
    crds: set[tuple[str, str]] = field(default_factory=set)
    watch_params: list[dict[str, str]] = field(default_factory=list)
    list_params: list[dict[str, str]] = field(default_factory=list)
    fetches: list[tuple[str, str | None]] = field(default_factory=list)
    """Every GET of one object: (resource, name)."""
    bookmark_every_s: float | None = None
    bookmarks_sent: int = 0
    silence_new: bool = False
    down: bool = False
    open_streams: dict[int, _Stream] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    logs: dict[tuple[str, str], PodLog] = field(default_factory=dict)
    """Each started container's output, by (namespace, pod name): what `pods/log` serves."""


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with resourceVersions, 410, selectors, RBAC and stream control."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.state = ApiState()
        self.watch_gate = asyncio.Event()
        self.watch_gate.set()
        self._tick = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self.store = store.Store(self)

    # ------------------------------------------------------------ test controls
    def compact(self) -> None:
        """Forget history: a watch from any version before now gets 410 Gone."""
        self.state.compacted = self.state.version
        self.state.log.clear()

    def drop_watches(self, *, abrupt: bool = True) -> int:
        """End every open watch: cut the connection (abrupt) or end the stream cleanly."""
        streams = list(self.state.open_streams.values())
        for stream in streams:
            stream.dropped = True
            stream.abrupt = abrupt
        self._wake()
        return len(streams)

    def silence_watches(self, *, new: bool = False) -> int:
        """Hold every open watch open without sending anything more (events, bookmarks or the
        end at timeoutSeconds) until it is dropped; with `new`, later watches too. How many
        were open."""
        self.state.silence_new = self.state.silence_new or new
        streams = list(self.state.open_streams.values())
        for stream in streams:
            stream.silent = True
        self._wake()
        return len(streams)

    def voice_watches(self) -> None:
        """New watches speak again (silenced open ones stay silent until dropped)."""
        self.state.silence_new = False

    def bookmark_every(self, seconds: float | None) -> None:
        """Send a BOOKMARK every `seconds` on watches that allow them (None: no more)."""
        self.state.bookmark_every_s = seconds
        self._wake()

    @property
    def open_watches(self) -> int:
        """How many watch requests are streaming now."""
        return len(self.state.open_streams)

    async def go_down(self) -> None:
        """Behave like a dead server: stop listening, then cut every open watch and every new
        request.

        Listening stops first: a reconnect that raced the shutdown could otherwise be accepted
        and then left unanswered by the closing aiohttp server, and the client would wait for
        its read timeout instead of seeing the server gone.
        """
        for server in self.servers:
            runner = server.server.runner
            for site in list(runner.sites) if runner is not None else []:
                await site.stop()
        self.state.down = True
        self.drop_watches(abrupt=True)

    def deny(self, verb: str, group: str, resource: str) -> None:
        """Forbid `verb` on `group`/`resource` from now on (403; reviews say not allowed)."""
        self.state.denied.add((verb, group, resource))

    # ------------------------------------------------------------ request handling
    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self.state.down:
            _abort(request)
            return aiohttp.web.Response(status=503)
        resource = request.resource
        if resource is None or resource.plural is None:
            return await super()._handle(request)
        group, plural = resource.group or "", resource.plural
        if plural == "selfsubjectaccessreviews":
            return self._review(request)
        if plural == "pods" and request.subresource == "log" and request.name is not None:
            if ("get", group, "pods/log") in self.state.denied:
                return _forbidden("get", group, "pods/log", request.namespace)
            pod = self.store.get(group, plural, request.namespace, request.name)
            log = self.state.logs.get((request.namespace or "", request.name))
            return await serve_log(request, pod, log if pod is not None else None)
        verb = VERBS.get(request.action) if request.action is not None else None
        if request.method == kmock.method.PUT and request.name is not None:
            verb = "update"
        if verb is not None and (verb, group, plural) in self.state.denied:
            return _forbidden(verb, group, plural, request.namespace)
        if request.action == kmock.action.FETCH:
            self.state.fetches.append((plural, request.name))
        if verb == "update":
            return await self._replace(request, group, plural)
        if request.action not in WRITES:
            return await super()._handle(request)
        data = request.data if isinstance(request.data, dict) else {}
        name = request.name or data.get("metadata", {}).get("name")
        namespace = request.namespace or data.get("metadata", {}).get("namespace")
        old = self.store.get(group, plural, namespace, name) if name else None
        if request.action == kmock.action.CREATE:
            if old is not None:
                return store.conflict(plural, group, name)
            store.defaults(data)
        elif request.action == kmock.action.UPDATE and request.subresource is None:
            refused = store.immutable_change(plural, old, data)
            if refused is not None:
                return refused
        policy = None
        if request.action == kmock.action.DELETE and old is not None:
            policy = request.params.get("propagationPolicy") or data.get("propagationPolicy")
            policy = policy or store.default_policy(group, plural)
            if policy == "Foreground":
                gone = await self.store.delete(group, plural, namespace, name, policy)
                return aiohttp.web.json_response(gone)
        async with self._write_lock:
            version = self._next_version()
            if request.action != kmock.action.DELETE and isinstance(request.data, dict):
                metadata = request.data.setdefault("metadata", {})
                metadata["resourceVersion"] = str(version)
            response = await super()._handle(request)
            if response.status < 300:
                self._record(request, group, plural, version)
        if policy is not None and old is not None:
            await self.store.collect(old["metadata"].get("uid", ""), policy)
        return response

    async def _replace(
        self, request: kmock.Request, group: str, plural: str
    ) -> aiohttp.web.StreamResponse:
        """PUT: replace the whole object (immutable ConfigMaps refuse a change of data)."""
        data = request.data if isinstance(request.data, dict) else {}
        old = self.store.get(group, plural, request.namespace, request.name or "")
        if old is None:
            return status(404, "NotFound", f'{plural} "{request.name}" not found')
        refused = store.immutable_change(plural, old, data)
        if refused is not None:
            return refused
        data.setdefault("metadata", {}).update(
            {k: v for k, v in old["metadata"].items() if k in {"uid", "creationTimestamp"}}
        )
        data["metadata"].update(name=request.name, namespace=request.namespace)
        return aiohttp.web.json_response(await self.store.replace(group, plural, data))

    def _next_version(self) -> int:
        self.state.version += 1
        return self.state.version

    def _record(self, request: kmock.Request, group: str, plural: str, version: int) -> None:
        data = request.data if isinstance(request.data, Mapping) else {}
        name = request.name or data.get("metadata", {}).get("name")
        namespace = request.namespace or data.get("metadata", {}).get("namespace")
        obj = self._find(group, plural, namespace, name)
        if obj is None:
            return
        if obj.deleted:
            body = copy.deepcopy(obj.last.raw)
            body.setdefault("metadata", {})["resourceVersion"] = str(version)
            kind = "DELETED"
        else:
            body = copy.deepcopy(obj.raw)
            kind = "ADDED" if request.action == kmock.action.CREATE else "MODIFIED"
        self._publish(version, group, plural, namespace, kind, body)

    def _publish(
        self,
        version: int,
        group: str,
        plural: str,
        namespace: str | None,
        kind: str,
        body: dict[str, Any],
    ) -> None:
        """Log a change for the watches and tell the listeners."""
        event = _Event(version, group, plural, namespace, {"type": kind, "object": body})
        self.state.log.append(event)
        self._wake()
        for listener in list(self.state.listeners):
            listener(group, plural, kind, copy.deepcopy(body))

    def _find(
        self, group: str, plural: str, namespace: str | None, name: str | None
    ) -> kmock.Object | None:
        for (resource, ns, obj_name), obj in self.objects.items():
            if (resource.group or "", resource.plural) == (group, plural) and (ns, obj_name) == (
                namespace,
                name,
            ):
                return obj
        return None

    def _live(self, request: kmock.Request) -> list[dict[str, Any]]:
        assert request.resource is not None
        group, plural = request.resource.group or "", request.resource.plural
        found = []
        for (resource, ns, _), obj in self.objects.items():
            if (resource.group or "", resource.plural) != (group, plural) or obj.deleted:
                continue
            if request.namespace is not None and ns != request.namespace:
                continue
            if selected(obj.raw, request.params):
                found.append(copy.deepcopy(obj.raw))
        return found

    def _known(self, request: kmock.Request) -> bool:
        assert request.resource is not None
        group, plural = request.resource.group or "", request.resource.plural
        return group in BUILTIN_GROUPS or (group, plural) in self.state.crds

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        if not self._known(request):
            raise kmock.KubernetesResourceNotFoundError()
        self.state.list_params.append(dict(request.params))
        return {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": str(self.state.version)},
            "items": self._live(request),
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        self.state.watch_params.append(dict(request.params))
        await self.watch_gate.wait()
        yield b""  # the headers go out: the stream is open
        stream = _Stream(request, silent=self.state.silence_new)
        key = id(stream)
        self.state.open_streams[key] = stream
        try:
            async for event in self._events(request, stream):
                yield event
        finally:
            self.state.open_streams.pop(key, None)
        if stream.abrupt:
            _abort(request)  # cut the connection mid-stream: no final chunk

    async def _events(self, request: kmock.Request, stream: _Stream) -> AsyncIterator[Any]:
        assert request.resource is not None
        group, plural = request.resource.group or "", request.resource.plural
        params = request.params
        loop = asyncio.get_running_loop()
        timeout = float(params.get("timeoutSeconds") or 3600)
        deadline = loop.time() + timeout
        since = params.get("resourceVersion") or "0"
        if since == "0":  # no version: the current state first, as synthetic ADDED events
            cursor = self.state.version
            for body in [] if stream.silent else self._live(request):
                yield {"type": "ADDED", "object": body}
        else:
            cursor = int(since)
            if cursor < self.state.compacted:
                yield _expired(cursor, self.state.compacted)
                return
        bookmarks = params.get("allowWatchBookmarks") == "true"
        next_bookmark = loop.time()
        while not stream.dropped:
            tick = self._tick
            if stream.silent:  # held open, saying nothing, until dropped or the client leaves
                if _gone(request):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), 0.1)
                continue
            for event in [e for e in self.state.log if e.version > cursor]:
                cursor = event.version
                if (event.group, event.resource) != (group, plural):
                    continue
                if request.namespace is not None and event.namespace != request.namespace:
                    continue
                if selected(event.body["object"], params):
                    yield event.body
            now = loop.time()
            every = self.state.bookmark_every_s
            if bookmarks and every is not None and now >= next_bookmark:
                next_bookmark = now + every
                self.state.bookmarks_sent += 1
                yield _bookmark(request, cursor)
            left = deadline - now
            if left <= 0 or stream.dropped:
                return
            if bookmarks and every is not None:
                left = min(left, max(next_bookmark - now, 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), left)

    def _review(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        data = request.data if isinstance(request.data, Mapping) else {}
        attributes = data.get("spec", {}).get("resourceAttributes", {})
        plural = attributes.get("resource") or ""
        if attributes.get("subresource"):
            plural = f"{plural}/{attributes['subresource']}"
        asked = (attributes.get("verb"), attributes.get("group") or "", plural)
        allowed = asked not in self.state.denied
        reason = "" if allowed else "denied by the test's RBAC table"
        return aiohttp.web.json_response(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": data.get("spec", {}),
                "status": {"allowed": allowed, "reason": reason},
            },
            status=201,
        )


def _gone(request: kmock.Request) -> bool:
    """Whether the client has closed the connection of `request`."""
    raw = request._raw_request
    return raw is None or raw.transport is None or raw.transport.is_closing()


def _bookmark(request: kmock.Request, version: int) -> dict[str, Any]:
    """A BOOKMARK event: every change up to `version` was sent; the object carries only that."""
    assert request.resource is not None
    group, api_version = request.resource.group or "", request.resource.version or "v1"
    return {
        "type": "BOOKMARK",
        "object": {
            "apiVersion": f"{group}/{api_version}" if group else api_version,
            "kind": KINDS.get(request.resource.plural or "", ""),
            "metadata": {"resourceVersion": str(version)},
        },
    }


def _abort(request: kmock.Request) -> None:
    raw = request._raw_request
    if raw is not None and raw.transport is not None:
        raw.transport.abort()


def _forbidden(
    verb: str, group: str, plural: str, namespace: str | None
) -> aiohttp.web.StreamResponse:
    qualified = f"{plural}.{group}" if group else plural
    message = (
        f'{qualified} is forbidden: User "system:serviceaccount:test:runner" cannot {verb}'
        f' resource "{plural}" in API group "{group}" in the namespace "{namespace}"'
    )
    status = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": {"group": group, "kind": plural},
        "code": 403,
    }
    return aiohttp.web.json_response(status, status=403)


def _expired(version: int, compacted: int) -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {version} ({compacted})",
            "reason": "Expired",
            "code": 410,
        },
    }


def api_client(url: str) -> k8s.ApiClient:
    """The official client pointed at a test server (plain HTTP on 127.0.0.1, no retries)."""
    configuration = k8s.Configuration(host=url.rstrip("/"))
    configuration.retries = 0
    return k8s.ApiClient(configuration)


def close(api: k8s.ApiClient) -> None:
    """Release the client's connection pool."""
    api.close()  # type: ignore[no-untyped-call]  # the client's close() is unannotated
