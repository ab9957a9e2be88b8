"""The watcher thread behind `replicas.ClusterReplicaSource`, in the `kube` layer: one Deployment
followed through the API from a background thread, because the official client blocks.

`DeploymentWatcher` (an `ObjectWatcher`, whose machinery `kube.podwatch.PodWatcher` shares for the
Deployment's pods) lists the Deployment when it has no resourceVersion to start from, then
watches it, asking for bookmarks (`allowWatchBookmarks`): a dropped stream resumes from the last
resourceVersion seen (an event's or a bookmark's), so no change is lost; 410 Gone (that version
was compacted) relists and watches on; 403 on watch falls back to polling with get; other
failures are retried with a doubling delay. `resync()` cuts a stream the loop has found silent
(the Deployment changed and the stream did not say so) and watches again from the last version,
or relists.

Every answer that shows the Deployment is `Observed` with the object's resourceVersion, and a
bookmark is a proving `Contact`: both show that nothing was missed up to then, which is how the
source measures freshness. A stream the server ended cleanly is a `Contact` that proves nothing
(the connection was alive; whether every change came through, the resumed watch will tell).

The thread owns only its `_Cursor`. Everything it learns is a `WatchEvent`, handed to the event
loop with `loop.call_soon_threadsafe`: the loop stays the only writer of the source's state and
the only clock (it stamps the samples and decides when the source is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterError
from nimbus_scenarios.kube.api import (
    GET_DEPLOYMENT,
    LIST_DEPLOYMENTS,
    WATCH_DEPLOYMENTS,
    KubeObject,
    as_int,
    as_str,
    call_json,
    describe_failure,
    get_in,
    items_of,
)

__all__ = [
    "Contact",
    "Deleted",
    "DeploymentCounts",
    "DeploymentWatcher",
    "Failed",
    "ModeChanged",
    "ObjectWatcher",
    "Observed",
    "Relisted",
    "WatchEvent",
    "WatchMode",
    "WatchTiming",
    "deployment_counts",
    "get_deployment",
    "list_deployment",
    "object_version",
]

log = logging.getLogger(__name__)


class WatchMode(StrEnum):
    """How the watcher follows the Deployment."""

    WATCH = "watch"
    POLL = "poll"  # get every `poll_interval_s`, after the API forbade watch


@dataclass(frozen=True, slots=True)
class DeploymentCounts:
    """A Deployment's status.readyReplicas, spec.replicas and status.replicas."""

    ready: int
    desired: int
    current: int


def deployment_counts(deployment: KubeObject) -> DeploymentCounts:
    """The counts of a Deployment object as the API serves it."""
    desired = as_int(get_in(deployment, "spec", "replicas"))
    return DeploymentCounts(
        ready=as_int(get_in(deployment, "status", "readyReplicas")) or 0,
        desired=1 if desired is None else desired,  # the API defaults spec.replicas to 1
        current=as_int(get_in(deployment, "status", "replicas")) or 0,
    )


def list_deployment(
    api: k8s.ApiClient, namespace: str, deployment: str, timeout: float
) -> tuple[str, KubeObject | None]:
    """The collection's resourceVersion and the Deployment (None if absent). Blocking; errors
    raise `ApiException` or a transport error."""
    listing = call_json(
        api,
        LIST_DEPLOYMENTS,
        namespace,
        field_selector=f"metadata.name={deployment}",
        _request_timeout=timeout,
    )
    version = str(get_in(listing, "metadata", "resourceVersion") or "")
    items = items_of(listing)
    return version, (items[0] if items else None)


def get_deployment(
    api: k8s.ApiClient, namespace: str, deployment: str, timeout: float
) -> KubeObject:
    """The Deployment, read by name (a quorum read: the latest state). Blocking; errors raise
    `ApiException` (404 when it is gone) or a transport error."""
    return call_json(api, GET_DEPLOYMENT, deployment, namespace, _request_timeout=timeout)


def object_version(obj: object) -> str | None:
    """An object's own resourceVersion (compared for equality only, as the API asks)."""
    return as_str(get_in(obj, "metadata", "resourceVersion"))


# ---------------------------------------------------------------- what the thread reports
@dataclass(frozen=True, slots=True)
class Observed:
    """The Deployment as a list, a watch event or a poll just showed it, with its own
    resourceVersion (None if it carried none)."""

    counts: DeploymentCounts
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """The API answered without news of the Deployment: a bookmark, which proves every change up
    to its version was sent (`proves`), or a stream the server ended cleanly, which shows only
    that the connection was alive."""

    proves: bool = False


@dataclass(frozen=True, slots=True)
class Deleted:
    """The Deployment is gone (DELETED, absent from a relist, or 404 on a poll); the thread ends."""


@dataclass(frozen=True, slots=True)
class Relisted:
    """410 Gone on a watch: the watcher lists again."""


@dataclass(frozen=True, slots=True)
class ModeChanged:
    """The watcher now works in `mode` (`poll` after a 403 on watch)."""

    mode: WatchMode


@dataclass(frozen=True, slots=True)
class Failed:
    """One attempt failed (an API error or no answer); the watcher retries after a delay."""

    reason: str


WatchEvent = Observed | Contact | Deleted | Relisted | ModeChanged | Failed
"""What the watcher thread tells the loop, in the order it happened."""


class WatchTiming(Protocol):
    """The pacing the watcher needs, in seconds (`replicas.SourceTiming` has it)."""

    @property
    def poll_interval_s(self) -> float: ...
    @property
    def watch_timeout_s(self) -> int: ...
    @property
    def request_timeout_s(self) -> float: ...
    @property
    def retry_delay_s(self) -> float: ...
    @property
    def retry_delay_max_s(self) -> float: ...


class _Gone(Exception):
    """The watched Deployment was deleted."""


@dataclass
class _Cursor:
    """The watcher thread's own state (never touched by the loop), hence mutable."""

    version: str | None  # where the next watch resumes; None: relist first
    mode: WatchMode = WatchMode.WATCH
    delay: float = 0.0


# ---------------------------------------------------------------- the watcher
class ObjectWatcher:
    """Follows objects of one kind from a daemon thread, reporting what it sees to `report` on
    the loop until it is halted: the resume, relist, poll and retry machinery, shared by
    `DeploymentWatcher` and `kube.podwatch.PodWatcher`, which say what to list, watch and poll
    (`_list_objects`, `_watch_call`, `_event`, `_poll`)."""

    def __init__(
        self,
        api: k8s.ApiClient,
        namespace: str,
        description: str,
        timing: WatchTiming,
        report: Callable[[Any], object],
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._timing = timing
        self._report = report
        self._description = description
        self._loop: asyncio.AbstractEventLoop | None = None
        # Thread-safe objects only: the loop halts and interrupts through them.
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch_lock = threading.Lock()
        self._watch: k8s_watch.Watch | None = None
        self._resync = threading.Event()
        self._relist = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop, version: str | None) -> None:
        """Start the thread, watching from `version` (None: list first). Once halted (even
        before this call), the thread ends without another request."""
        self._loop = loop
        cursor = _Cursor(version, delay=self._timing.retry_delay_s)
        self._thread = threading.Thread(
            target=self._run, args=(cursor,), name=f"kube-watch {self._description}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread is still alive."""
        return self._thread is not None and self._thread.is_alive()

    def halt(self) -> None:
        """Ask the thread to end; it checks between requests and between events."""
        self._halt.set()

    def interrupt(self) -> None:
        """Cut the open watch stream, if any, so a halted thread need not wait for the next
        event."""
        with self._watch_lock:
            watch = self._watch
        if watch is not None:
            watch.stop()  # type: ignore[no-untyped-call]  # kubernetes.watch is unannotated

    def resync(self, *, relist: bool) -> None:
        """Cut the open stream and watch again from the last resourceVersion seen (replaying
        what the stream missed), or relist first; neither counts as a failure."""
        if relist:
            self._relist.set()
        self._resync.set()
        self.interrupt()

    # ------------------------------------------------------------ what a kind says
    def _list_objects(self) -> str | None:
        """List, report what the list showed, and return its resourceVersion."""
        raise NotImplementedError

    def _watch_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """The list method to watch with, its arguments and its selectors."""
        raise NotImplementedError

    def _event(self, kind: str, raw: object) -> None:
        """Report one watch event (not a bookmark)."""
        raise NotImplementedError

    def _poll(self) -> None:
        """Read the objects once and report them (when watch is forbidden)."""
        raise NotImplementedError

    # ------------------------------------------------------------ the thread
    def _post(self, event: object) -> None:
        """From the watcher thread: report `event` on the loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            loop.call_soon_threadsafe(self._report, event)

    def _run(self, cursor: _Cursor) -> None:
        """The watcher thread: watch (or poll) until halted, reporting to the loop."""
        timing = self._timing
        while not self._halt.is_set():
            try:
                self._step(cursor)
                cursor.delay = timing.retry_delay_s
                continue
            except _Gone:
                self._post(Deleted())
                return
            except ApiException as exc:
                if self._halt.is_set():
                    return
                if exc.status == 410:
                    log.info("%s: 410 Gone; relisting", self._description)
                    self._post(Relisted())
                    cursor.version = None
                    continue
                if exc.status == 403 and cursor.mode == WatchMode.WATCH:
                    cursor.mode = WatchMode.POLL
                    self._post(ModeChanged(cursor.mode))
                    continue
                self._post(Failed(f"API answered {exc.status} {exc.reason or ''}".strip()))
            except Exception as exc:  # transport errors, and anything unexpected: retry
                if self._halt.is_set():
                    return
                self._post(Failed(describe_failure(exc)))
            self._halt.wait(cursor.delay)
            cursor.delay = min(cursor.delay * 2, timing.retry_delay_max_s)

    def _step(self, cursor: _Cursor) -> None:
        """One unit of work: a relist, a whole watch request, or one poll."""
        if cursor.mode == WatchMode.POLL:
            self._poll()
            self._halt.wait(self._timing.poll_interval_s)
            return
        if self._resync.is_set():  # the loop cut a silent stream
            self._resync.clear()
            if self._relist.is_set():
                self._relist.clear()
                cursor.version = None
        if cursor.version is None:  # first start without a version, after 410 Gone, or resync
            cursor.version = self._list_objects()
            if cursor.version is None:
                raise ClusterError("the list carried no resourceVersion to watch from")
        self._stream(cursor)

    def _stream(self, cursor: _Cursor) -> None:
        """One watch request from `cursor.version`, moving it along with every event."""
        timing = self._timing
        # return_type "object": events keep their raw dicts (kubernetes.watch is unannotated).
        watch = k8s_watch.Watch(return_type="object")  # type: ignore[no-untyped-call]
        with self._watch_lock:
            self._watch = watch
        try:
            if self._halt.is_set() or self._resync.is_set():
                return
            method, args, selectors = self._watch_call()
            events = watch.stream(  # type: ignore[no-untyped-call]
                method,
                *args,
                **selectors,
                resource_version=cursor.version,
                allow_watch_bookmarks=True,
                timeout_seconds=timing.watch_timeout_s,
                _request_timeout=(timing.request_timeout_s, timing.watch_timeout_s + 30),
            )
            for event in events:
                if self._halt.is_set():
                    return
                kind = event.get("type")
                raw = event.get("raw_object")
                cursor.version = (
                    as_str(get_in(raw, "metadata", "resourceVersion")) or cursor.version
                )
                if kind == "BOOKMARK":  # all changes up to its version were sent
                    self._post(Contact(proves=True))
                else:
                    self._event(str(kind), raw)
        except Exception:
            if self._resync.is_set() and not self._halt.is_set():
                return  # the loop cut this stream on purpose: not a failure
            raise
        finally:
            with self._watch_lock:
                self._watch = None
        if not self._halt.is_set() and not self._resync.is_set():
            self._post(Contact())  # the server ended the stream cleanly: it is alive


class DeploymentWatcher(ObjectWatcher):
    """Follows one Deployment from a daemon thread, reporting `WatchEvent`s to `report` on the
    loop until it is halted or the Deployment is deleted."""

    def __init__(
        self,
        api: k8s.ApiClient,
        namespace: str,
        deployment: str,
        timing: WatchTiming,
        report: Callable[[WatchEvent], object],
    ) -> None:
        super().__init__(api, namespace, f"deployment {namespace}/{deployment}", timing, report)
        self._deployment = deployment

    def _list_objects(self) -> str | None:
        version, deployment = list_deployment(
            self._api, self._namespace, self._deployment, self._timing.request_timeout_s
        )
        if deployment is None:
            raise _Gone
        self._post(Observed(deployment_counts(deployment), object_version(deployment)))
        return version or None

    def _watch_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        selector = {"field_selector": f"metadata.name={self._deployment}"}
        return WATCH_DEPLOYMENTS.method(self._api), (self._namespace,), selector

    def _event(self, kind: str, raw: object) -> None:
        if kind == "DELETED":
            raise _Gone
        if isinstance(raw, Mapping):
            self._post(Observed(deployment_counts(raw), object_version(raw)))

    def _poll(self) -> None:
        try:
            deployment = get_deployment(
                self._api, self._namespace, self._deployment, self._timing.request_timeout_s
            )
        except ApiException as exc:
            if exc.status == 404:
                raise _Gone from None
            raise
        self._post(Observed(deployment_counts(deployment), object_version(deployment)))
