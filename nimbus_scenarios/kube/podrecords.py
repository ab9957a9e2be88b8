"""The Deployment's pods as `PodRecord`s (`nimbus_scenarios.scaling`), from the pod objects a list
or a watch delivers: pure bookkeeping, no calls, on the event loop.

`PodBook.update` folds one sighting of a pod into its record; every moment comes from the API's
own times, put on the run's clock by the `ApiTimes` the caller passes (`api_times`):

- `created`: metadata.creationTimestamp;
- `scheduled`: the `PodScheduled` condition's lastTransitionTime once it is True;
- `started`: once every container is running, the latest of their `state.running.startedAt`;
- `ready`: the `Ready` condition's lastTransitionTime the first time it is seen True (a pod that
  goes unready and ready again keeps its first);
- `deleted`: when its deletion was asked (metadata.deletionTimestamp less
  deletionGracePeriodSeconds: the API sets the timestamp to the end of the grace period), or
  when a DELETED event or a relist without it showed it gone, whichever is seen first;
- `restarts`: the sum of its containers' restartCount (it never goes down);
- `terminations`: the reasons of the container terminations seen (`lastState.terminated`,
  `state.terminated`), each once, in the order they ended.

A moment the API does not give stays None, except `deleted`, which falls back to when the pod was
seen gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import replace

from nimbus_scenarios.kube.api import KubeObject, as_int, as_str, get_in
from nimbus_scenarios.scaling import PodRecord

__all__ = ["ApiTimes", "PodBook", "api_times", "parse_api_time"]

ApiTimes = Callable[[object], float | None]
"""An API timestamp (RFC 3339 text) → the run's clock; None when it is missing or malformed."""


def parse_api_time(value: object) -> float | None:
    """An RFC 3339 API timestamp (`2026-01-01T00:00:05Z`, with or without fractions) as Unix
    seconds; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def api_times(seen: float, wall_now: float) -> ApiTimes:
    """API times → the run's clock, for what was seen at run time `seen` (wall time `wall_now`).

    A moment is `seen - (wall_now - api_time)`. API timestamps have whole seconds
    (creationTimestamp, lastTransitionTime), so one that falls in the very second the change was
    seen is taken as the moment seen, which is finer; an older one stays as the API says.
    """

    def to_run(value: object) -> float | None:
        wall = parse_api_time(value)
        if wall is None:
            return None
        moment = seen - (wall_now - wall)
        if wall.is_integer() and moment <= seen < moment + 1.0:
            return seen
        return moment

    return to_run


class PodBook:
    """One `PodRecord` per pod seen, in the order first seen (see the module docstring)."""

    def __init__(self) -> None:
        self._records: list[PodRecord] = []
        self._index: dict[str, int] = {}
        self._ended: dict[str, set[tuple[str, str, str, str]]] = {}

    @property
    def records(self) -> list[PodRecord]:
        """The latest record of each pod, in the order first seen (read it, never change it)."""
        return self._records

    def update(self, pod: KubeObject, times: ApiTimes) -> None:
        """Fold one sighting of `pod` into its record."""
        name = as_str(get_in(pod, "metadata", "name"))
        if name is None:
            return
        old = self._record(name)
        record = replace(
            old,
            created=_first(old.created, times(get_in(pod, "metadata", "creationTimestamp"))),
            scheduled=_first(old.scheduled, _became_true(pod, "PodScheduled", times)),
            started=_first(old.started, _all_running(pod, times)),
            ready=_first(old.ready, _became_true(pod, "Ready", times)),
            deleted=_first(old.deleted, _deletion_asked(pod, times)),
            restarts=max(old.restarts, _restarts(pod)),
            terminations=(*old.terminations, *self._new_terminations(name, pod, times)),
        )
        self._records[self._index[name]] = record

    def delete(self, pod: KubeObject, times: ApiTimes, seen: float) -> None:
        """`pod` was seen deleted at run time `seen` (a DELETED event)."""
        self.update(pod, times)
        name = as_str(get_in(pod, "metadata", "name"))
        if name is not None:
            self._gone(name, seen)

    def relist(self, pods: Iterable[KubeObject], times: ApiTimes, seen: float) -> None:
        """A list showed every pod there is at run time `seen`: those not in it are gone."""
        present: set[str] = set()
        for pod in pods:
            self.update(pod, times)
            name = as_str(get_in(pod, "metadata", "name"))
            if name is not None:
                present.add(name)
        for name in [r.name for r in self._records if r.name not in present]:
            self._gone(name, seen)

    def _record(self, name: str) -> PodRecord:
        if name not in self._index:
            self._index[name] = len(self._records)
            self._records.append(PodRecord(name=name))
        return self._records[self._index[name]]

    def _gone(self, name: str, seen: float) -> None:
        index = self._index[name]
        record = self._records[index]
        if record.deleted is None:
            self._records[index] = replace(record, deleted=seen)

    def _new_terminations(self, name: str, pod: KubeObject, times: ApiTimes) -> list[str]:
        """Reasons of terminations not seen before, in the order they ended."""
        ended = self._ended.setdefault(name, set())
        found: list[tuple[float, str]] = []
        for status in _container_statuses(pod):
            container = as_str(get_in(status, "name")) or ""
            for where in ("lastState", "state"):
                terminated = get_in(status, where, "terminated")
                if terminated is None:
                    continue
                reason = as_str(get_in(terminated, "reason")) or "Unknown"
                started = as_str(get_in(terminated, "startedAt")) or ""
                finished = as_str(get_in(terminated, "finishedAt")) or ""
                key = (container, started, finished, reason)
                if key in ended:
                    continue
                ended.add(key)
                found.append((times(finished) or 0.0, reason))
        return [reason for _, reason in sorted(found, key=lambda item: item[0])]


def _first(old: float | None, new: float | None) -> float | None:
    return old if old is not None else new


def _container_statuses(pod: KubeObject) -> list[object]:
    listed = get_in(pod, "status", "containerStatuses")
    return listed if isinstance(listed, list) else []


def _became_true(pod: KubeObject, kind: str, times: ApiTimes) -> float | None:
    """When condition `kind` turned True, if it is True now."""
    listed = get_in(pod, "status", "conditions")
    for condition in listed if isinstance(listed, list) else []:
        if get_in(condition, "type") == kind and get_in(condition, "status") == "True":
            return times(get_in(condition, "lastTransitionTime"))
    return None


def _all_running(pod: KubeObject, times: ApiTimes) -> float | None:
    """When the last of its containers started running, if all of them run now."""
    statuses = _container_statuses(pod)
    starts = [times(get_in(s, "state", "running", "startedAt")) for s in statuses]
    if not starts or any(start is None for start in starts):
        return None
    return max(start for start in starts if start is not None)


def _deletion_asked(pod: KubeObject, times: ApiTimes) -> float | None:
    end = times(get_in(pod, "metadata", "deletionTimestamp"))
    if end is None:
        return None
    grace = as_int(get_in(pod, "metadata", "deletionGracePeriodSeconds")) or 0
    return end - grace


def _restarts(pod: KubeObject) -> int:
    return sum(as_int(get_in(s, "restartCount")) or 0 for s in _container_statuses(pod))
