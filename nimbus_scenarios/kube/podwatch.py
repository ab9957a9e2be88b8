"""The Deployment's pods, followed from a background thread: `PodWatcher`, an `ObjectWatcher`
(`kube.watch`) that lists the pods matching the Deployment's selector, then watches them from the
list's resourceVersion. A dropped stream resumes from the last resourceVersion seen (no
transition is lost: the server replays what the client missed), 410 Gone relists, a 403 on watch
falls back to listing every `poll_interval_s`, and a 403 on that list gives up
(`PodsForbidden`): the pods' breakdown is then missing.

What the thread sees goes to the loop as `PodsListed` (every pod there is: one absent from it is
gone) or `PodChanged` (one watch event), with `Contact`, `Relisted`, `ModeChanged` and `Failed`
as for the Deployment; `kube.recording` folds them into `PodRecord`s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.kube.api import (
    LIST_PODS,
    WATCH_PODS,
    KubeObject,
    call_json,
    get_in,
    items_of,
)
from nimbus_scenarios.kube.watch import ObjectWatcher, WatchTiming

__all__ = ["PodChanged", "PodWatcher", "PodsForbidden", "PodsListed"]


@dataclass(frozen=True, slots=True)
class PodsListed:
    """A list of the Deployment's pods: every one there is now."""

    pods: tuple[KubeObject, ...]


@dataclass(frozen=True, slots=True)
class PodChanged:
    """One watch event about a pod: `ADDED`, `MODIFIED` or `DELETED`."""

    kind: str
    pod: KubeObject


@dataclass(frozen=True, slots=True)
class PodsForbidden:
    """Neither watching nor listing the pods is allowed: the watcher has stopped."""


class PodWatcher(ObjectWatcher):
    """Follows the pods matching `selector` (a label selector string) in `namespace`."""

    def __init__(
        self,
        api: k8s.ApiClient,
        namespace: str,
        selector: str,
        timing: WatchTiming,
        report: Callable[[Any], object],
    ) -> None:
        super().__init__(api, namespace, f"pods {namespace}/{selector}", timing, report)
        self._selector = selector

    def _list(self) -> tuple[str | None, list[KubeObject]]:
        listing = call_json(
            self._api,
            LIST_PODS,
            self._namespace,
            label_selector=self._selector,
            _request_timeout=self._timing.request_timeout_s,
        )
        version = get_in(listing, "metadata", "resourceVersion")
        return (str(version) if version else None), items_of(listing)

    def _list_objects(self) -> str | None:
        version, pods = self._list()
        self._post(PodsListed(tuple(pods)))
        return version

    def _watch_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        selector = {"label_selector": self._selector}
        return WATCH_PODS.method(self._api), (self._namespace,), selector

    def _event(self, kind: str, raw: object) -> None:
        if kind in ("ADDED", "MODIFIED", "DELETED") and isinstance(raw, dict):
            self._post(PodChanged(kind, raw))

    def _poll(self) -> None:
        try:
            _, pods = self._list()
        except ApiException as exc:
            if exc.status != 403:
                raise
            self._post(PodsForbidden())
            self.halt()
            return
        self._post(PodsListed(tuple(pods)))
