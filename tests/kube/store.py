"""What `ApiServer` does to objects beyond kmock's dict merge, and the controllers' way in.

- `defaults(body)`: what the API server sets on create (uid, creationTimestamp, generation);
- `conflict`, `immutable_change`: the 409 AlreadyExists and 422 Invalid answers, worded like the
  API server's;
- `Store`: how the emulated controllers (`jobs.py`, `kubelet.py`) read and write objects on the
  server's loop without HTTP. Every write is versioned, logged for watches and told to the
  listeners, exactly like a write that came over HTTP.
- `Store.delete` with a propagation policy is the garbage collector: `Background` deletes the
  object, then every object whose `ownerReferences` name its uid; `Foreground` marks the object
  (`deletionTimestamp`, finalizer `foregroundDeletion`), deletes those, then the object;
  `Orphan` (the default for batch/v1 Jobs, as on a real server) leaves them, without the
  reference.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp.web
import kmock

from tests.kube.podlog import status

if TYPE_CHECKING:
    from tests.kube.apiserver import ApiServer

VERSIONS = {"": "v1", "batch": "v1", "apps": "v1", "autoscaling": "v2"}
POLICIES = frozenset({"Background", "Foreground", "Orphan"})
DEPENDENTS = (("", "pods"), ("", "configmaps"), ("batch", "jobs"))
"""The kinds of object the garbage collector looks at for dependents."""


def now() -> str:
    """The current time as the API writes timestamps."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def defaults(body: dict[str, Any]) -> None:
    """What the API server sets on every new object (kept when the client sent them)."""
    metadata = body.setdefault("metadata", {})
    metadata.setdefault("uid", str(uuid.uuid4()))
    metadata.setdefault("creationTimestamp", now())
    metadata.setdefault("generation", 1)


def conflict(plural: str, group: str, name: str) -> aiohttp.web.Response:
    """409 AlreadyExists for a second create of `name`."""
    qualified = f"{plural}.{group}" if group else plural
    return status(409, "AlreadyExists", f'{qualified} "{name}" already exists')


def immutable_change(
    plural: str, old: dict[str, Any] | None, new: dict[str, Any]
) -> aiohttp.web.Response | None:
    """422 Invalid when `new` changes an immutable ConfigMap's (or Secret's) data; else None."""
    if old is None or plural not in {"configmaps", "secrets"} or not old.get("immutable"):
        return None
    changed = [k for k in ("data", "binaryData") if k in new and new[k] != old.get(k)]
    if new.get("immutable") is False:
        changed.append("immutable")
    if not changed:
        return None
    kind = "ConfigMap" if plural == "configmaps" else "Secret"
    name = old.get("metadata", {}).get("name")
    message = (
        f'{kind} "{name}" is invalid: {changed[0]}: Forbidden: '
        "field is immutable when `immutable` is set"
    )
    return status(422, "Invalid", message)


def owned_by(body: dict[str, Any], uid: str) -> bool:
    """Whether `body` names `uid` among its owners."""
    owners = body.get("metadata", {}).get("ownerReferences") or []
    return any(owner.get("uid") == uid for owner in owners)


class Store:
    """Objects read and written on the server's loop, as the controllers do."""

    def __init__(self, server: ApiServer) -> None:
        self._server = server

    def get(
        self, group: str, plural: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """A copy of the live object, or None."""
        obj = self._server._find(group, plural, namespace, name)
        return None if obj is None or obj.deleted else copy.deepcopy(obj.raw)

    def list(
        self, group: str, plural: str, namespace: str | None = None, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the live objects, in a namespace (or all) and owned by uid `owner`."""
        found = []
        for (resource, ns, _), obj in list(self._server.objects.items()):
            if (resource.group or "", resource.plural) != (group, plural) or obj.deleted:
                continue
            if namespace is not None and ns != namespace:
                continue
            if owner is None or owned_by(obj.raw, owner):
                found.append(copy.deepcopy(obj.raw))
        return found

    async def create(self, group: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store a new object (ADDED); its name must be free."""
        body = copy.deepcopy(body)
        defaults(body)
        metadata = body["metadata"]
        namespace, name = metadata.get("namespace"), metadata["name"]
        async with self._server._write_lock:
            if self.get(group, plural, namespace, name) is not None:
                raise ValueError(f"{plural} {namespace}/{name} already exists")
            version = self._server._next_version()
            metadata["resourceVersion"] = str(version)
            resource = kmock.resource(group=group, version=VERSIONS.get(group, "v1"), plural=plural)
            key = (resource, namespace, name)
            obj = self._server._find(group, plural, namespace, name)
            if obj is None:
                self._server.objects[key] = body
            else:
                obj.create(body)
            self._server._publish(version, group, plural, namespace, "ADDED", body)
        return copy.deepcopy(body)

    async def replace(self, group: str, plural: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Replace a live object with `body` (MODIFIED); None if it is gone."""
        body = copy.deepcopy(body)
        metadata = body["metadata"]
        namespace, name = metadata.get("namespace"), metadata["name"]
        async with self._server._write_lock:
            obj = self._server._find(group, plural, namespace, name)
            if obj is None or obj.deleted:
                return None
            version = self._server._next_version()
            metadata["resourceVersion"] = str(version)
            obj.create(body)  # a new version of the whole object, not a merge
            self._server._publish(version, group, plural, namespace, "MODIFIED", body)
        return copy.deepcopy(body)

    async def delete(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        policy: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object (DELETED) and collect its dependents by `policy`; None if absent."""
        body = self.get(group, plural, namespace, name)
        if body is None:
            return None
        policy = policy or default_policy(group, plural)
        uid = body.get("metadata", {}).get("uid")
        if uid and policy == "Foreground":  # marked first: no controller adds dependents
            metadata = body["metadata"]
            metadata["deletionTimestamp"] = now()
            metadata["finalizers"] = [*metadata.get("finalizers", []), "foregroundDeletion"]
            await self.replace(group, plural, body)
            await self.collect(uid, policy)
            body = self.get(group, plural, namespace, name) or body
        async with self._server._write_lock:
            obj = self._server._find(group, plural, namespace, name)
            if obj is None or obj.deleted:
                return None
            obj.delete()
            version = self._server._next_version()
            body["metadata"]["resourceVersion"] = str(version)
            self._server._publish(version, group, plural, namespace, "DELETED", body)
        if uid:
            await self.collect(uid, policy)
        return body

    async def collect(self, uid: str, policy: str) -> None:
        """The garbage collector: delete (or orphan) every object owned by `uid`."""
        for group, plural in DEPENDENTS:
            for body in self.list(group, plural, owner=uid):
                metadata = body["metadata"]
                if policy == "Orphan":
                    owners = metadata.get("ownerReferences") or []
                    kept = [o for o in owners if o.get("uid") != uid]
                    metadata.pop("ownerReferences")
                    if kept:
                        metadata["ownerReferences"] = kept
                    await self.replace(group, plural, body)
                else:
                    await self.delete(group, plural, metadata.get("namespace"), metadata["name"])
            await asyncio.sleep(0)


def default_policy(group: str, plural: str) -> str:
    """The propagation policy a DELETE without one gets."""
    return "Orphan" if (group, plural) in {("batch", "jobs")} else "Background"
