"""The common start of a sharded run, read from a ConfigMap (`run --start-at-from configmap/NAME`).

`submit` writes `data["start-at"]` once every shard's pod runs; until then the ConfigMap is
missing or holds no such key. `ConfigMapStart` is the `runner.start.StartSource` that reads it:
first a SelfSubjectAccessReview of `get configmaps` (`GET_CONFIGMAP`, in the permission table
only for runs that use the flag), so a missing permission ends the wait at once with the verb
named, then one GET per poll. Blocking client calls run in a thread.
"""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.kube.access import check_access
from nimbus_scenarios.kube.api import (
    GET_CONFIGMAP,
    TRANSPORT_ERRORS,
    api_error,
    as_str,
    call_json,
    get_in,
    unreachable,
)

__all__ = ["START_KEY", "ConfigMapStart"]

START_KEY = "start-at"
"""The ConfigMap key holding the start: Unix seconds or an ISO 8601 time."""


class ConfigMapStart:
    """ConfigMap `name` in `namespace`, read through `api` until it holds the start."""

    def __init__(
        self, api: k8s.ApiClient, namespace: str, name: str, *, request_timeout_s: float = 10.0
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.request_timeout_s = request_timeout_s
        self._checked = False

    @property
    def description(self) -> str:
        """`configmap NAMESPACE/NAME`."""
        return f"configmap {self.namespace}/{self.name}"

    def close(self) -> None:
        """Close the API client's connection pool (the run is over)."""
        self.api.close()  # type: ignore[no-untyped-call]  # the client leaves it unannotated

    async def read(self) -> str | None:
        """`data["start-at"]`, or None while the ConfigMap or the key is missing.

        Raises ClusterForbidden when `get configmaps` is not granted, ClusterUnreachable or
        ClusterError (worth retrying) when the API does not answer or answers an error.
        """
        if not self._checked:
            problems = await asyncio.to_thread(
                check_access, self.api, self.namespace, (GET_CONFIGMAP,)
            )
            if problems:
                raise ClusterForbidden("; ".join(problems))
            self._checked = True
        return await asyncio.to_thread(self._get)

    def _get(self) -> str | None:
        try:
            found = call_json(
                self.api,
                GET_CONFIGMAP,
                self.name,
                self.namespace,
                _request_timeout=self.request_timeout_s,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error(exc, GET_CONFIGMAP, self.namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None
        return as_str(get_in(found, "data", START_KEY))
