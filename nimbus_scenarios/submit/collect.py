"""The run's results from its pods' logs: one document per shard, merged into one.

Every shard 0..N-1 must have left its document in its log; a shard without one (its pod never
ran, was killed, or the runner stopped before it could judge) is an infrastructure failure
(exit 4) that names the shard, its pod, how it ended and what the runner said last. So is a
document that is not whole (a chunk missing or corrupt): the runner wrote it whole, so the log
was damaged on its way here (cut, rotated, a line split or changed); the error names the shard
and the chunks (`results.logwire`), where `merge` of a saved log would say exit 2. The
documents are merged as `merge` does (every shard once, re-judged on merged histograms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nimbus_scenarios.errors import ClusterError, ResultsError
from nimbus_scenarios.kube.pods import JobStatus, PodStatus
from nimbus_scenarios.merge import merge_results
from nimbus_scenarios.results.model import RunResults
from nimbus_scenarios.submit.follow import describe
from nimbus_scenarios.submit.logs import last_words, shard_results

__all__ = ["Collected", "ShardLog", "collect"]


@dataclass(frozen=True, slots=True)
class ShardLog:
    """What one shard left: its newest pod (None if it never had one) and that pod's log
    (None if it could not be read)."""

    shard: int
    pod: PodStatus | None
    text: str | None
    problem: str = ""
    """Why the log could not be read."""


@dataclass(frozen=True, slots=True)
class Collected:
    """The run's results and a line for each shard whose pod ended other than cleanly."""

    results: RunResults
    notes: tuple[str, ...]


def _where(log: ShardLog) -> str:
    return f"shard {log.shard}" + (f" (pod {log.pod.name})" if log.pod is not None else "")


def _problem(log: ShardLog, job: JobStatus | None) -> str | None:
    """Why this shard has no results document, or None if it may have one."""
    if log.pod is None:
        why = f"the Job failed: {job.reason}" if job and job.finished == "Failed" else "none seen"
        return f"shard {log.shard}: no pod ({why})"
    if log.text is None:
        return f"{_where(log)}: its log cannot be read ({log.problem or 'no answer'})"
    return None


def _document(log: ShardLog, shards: int) -> RunResults | str:
    """The shard's last results document, or the reason it has none."""
    assert log.text is not None
    assert log.pod is not None
    state = describe(log.pod)
    try:
        documents = shard_results(log.text, _where(log))
    except ResultsError as exc:
        # Written whole by the runner, damaged on the way: infrastructure, not bad input.
        return f"{exc} (the log was damaged on its way here; the pod ended {state})"
    if not documents:
        said = last_words(log.text)
        detail = f"; it said: {said}" if said else ""
        return f"{_where(log)} ended {state} with no results in its log{detail}"
    document = documents[-1]
    index = document.shard.index if document.shard is not None else 0
    if shards > 1 and index != log.shard:
        return f"{_where(log)}: its results are those of shard {index}"
    return document


def collect(logs: Sequence[ShardLog], shards: int, job: JobStatus | None = None) -> Collected:
    """The merged results of shards 0..shards-1 (`logs` may come in any order).

    Raises `ClusterError` naming every shard that left no results.
    """
    by_shard = {log.shard: log for log in logs}
    problems: list[str] = []
    documents: list[tuple[ShardLog, RunResults]] = []
    for shard in range(shards):
        log = by_shard.get(shard, ShardLog(shard, None, None))
        problem = _problem(log, job)
        found = _document(log, shards) if problem is None else problem
        if isinstance(found, str):
            problems.append(found)
        else:
            documents.append((log, found))
    if problems:
        raise ClusterError("; ".join(problems))
    notes = tuple(
        f"{_where(log)} ended {describe(log.pod)}"
        + (f": {document.error}" if document.error else "")
        for log, document in documents
        if log.pod is not None and log.pod.exit_code not in (0, 1)
    )
    if shards == 1:
        return Collected(documents[0][1], notes)
    try:
        merged = merge_results(
            [document for _, document in documents],
            names=[_where(log) for log, _ in documents],
        )
    except ResultsError as exc:
        raise ClusterError(f"the shards' results cannot be merged: {exc}") from None
    return Collected(merged, notes)
