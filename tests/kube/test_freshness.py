"""Tests for the freshness of `kube.replicas`: how far ClusterReplicaSource's samples are proven
complete (`fresh_until`). Events, bookmarks and GETs of the Deployment prove it; a watch held
open silently while the Deployment changes is found out by the GET and cut; a dead API, or a
gap longer than `stale_after_s`, leaves the data stale.

Through the source and the official client, against the emulated API server of `apiserver.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses

from tests.kube.support import (
    DEPLOYMENTS,
    FAST,
    Cluster,
    deployment,
    readies,
    run,
    started,
)
from tests.support.wait import eventually

NO_GETS = dataclasses.replace(FAST, fresh_interval_s=60.0)
"""Timing under which only the watch (events, bookmarks) can prove freshness."""


def deployment_lists(cluster: Cluster) -> int:
    """How many times the Deployment was listed (the first sample, and each relist)."""
    return sum(
        p.get("fieldSelector") == "metadata.name=consumer" for p in cluster.server.state.list_params
    )


def deployment_gets(cluster: Cluster) -> int:
    """How many times the Deployment was read by name."""
    return cluster.server.state.fetches.count(("deployments", "consumer"))


def test_bookmarks_prove_a_quiet_watch_fresh_and_move_its_version() -> None:
    """The watch asks for bookmarks; on a quiet Deployment they alone keep the data fresh (no
    GET), and a dropped stream resumes from the last bookmark's version."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        cluster.server.bookmark_every(0.05)
        async with started(cluster, timing=NO_GETS) as source:
            first = source.fresh_until
            assert first is not None
            await eventually(lambda: (source.fresh_until or 0.0) > first + 0.5)
            assert cluster.server.state.watch_params[0]["allowWatchBookmarks"] == "true"
            assert cluster.server.state.bookmarks_sent >= 5
            assert deployment_gets(cluster) == 0
            # A write elsewhere moves the server's version; the next bookmark carries it.
            await cluster.create(DEPLOYMENTS, deployment("other"))
            version = str(cluster.server.state.version)
            sent = cluster.server.state.bookmarks_sent
            await eventually(lambda: cluster.server.state.bookmarks_sent >= sent + 2)
            assert cluster.server.drop_watches(abrupt=True) == 1
            await eventually(lambda: len(cluster.server.state.watch_params) == 2)
            assert cluster.server.state.watch_params[1]["resourceVersion"] == version
            assert readies(source) == [1]

    run(test)


def test_without_bookmarks_a_quiet_watch_goes_stale() -> None:
    """No event, no bookmark and no GET for longer than `stale_after_s`: the data is stale from
    the last proof (the first list), though the source is not lost."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster, timing=NO_GETS) as source:
            first = source.fresh_until
            assert first is not None
            loop = asyncio.get_running_loop()
            await eventually(lambda: loop.time() - first > NO_GETS.stale_after_s + 0.2)
            assert source.fresh_until == first
            assert source.lost_at is None

    run(test)


def test_a_stream_ended_cleanly_proves_nothing() -> None:
    """A watch the server ends cleanly (as a proxy in the way might) is resumed, but its end
    does not prove the data fresh: only events, bookmarks and answers do."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster, timing=NO_GETS) as source:
            first = source.fresh_until
            await eventually(lambda: cluster.server.open_watches == 1)
            watches = cluster.server.state.watch_params
            for count in (2, 3):
                assert cluster.server.drop_watches(abrupt=False) == 1
                await eventually(lambda n=count: len(watches) == n)
                await eventually(lambda: cluster.server.open_watches == 1)
            assert source.fresh_until == first
            assert source.lost_at is None

    run(test)


def test_gets_prove_a_quiet_watch_fresh() -> None:
    """Without events or bookmarks, a GET every `fresh_interval_s` finds the version the watch
    last delivered: the data stays fresh, and nothing is resynced."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster) as source:
            first = source.fresh_until
            assert first is not None
            loop = asyncio.get_running_loop()
            await eventually(lambda: loop.time() - first > FAST.stale_after_s + 0.5)
            fresh = source.fresh_until
            assert fresh is not None
            assert loop.time() - fresh <= FAST.stale_after_s
            assert deployment_gets(cluster) >= 5
            assert source.resyncs == 0
            assert readies(source) == [1]

    run(test)


def test_a_silent_watch_missing_a_change_is_cut_and_resumed() -> None:
    """The watch is held open silently while the Deployment scales to 3: the GET sees a version
    the watch did not deliver, the stream is cut and resumed from its version (no relist), the
    change is replayed, and the data stays fresh throughout."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster) as source:
            await eventually(lambda: cluster.server.open_watches == 1)
            before = str(cluster.server.state.version)
            assert cluster.server.silence_watches() == 1
            await cluster.scale(replicas=3, current=3, ready=3)
            await eventually(lambda: readies(source)[-1] == 3)
            assert source.resyncs == 1
            assert deployment_lists(cluster) == 1  # resumed, not relisted
            resumed = cluster.server.state.watch_params[1]
            assert resumed["resourceVersion"] == before
            fresh = source.fresh_until
            assert fresh is not None
            assert fresh >= source.samples[-1].at  # no gap long enough to go stale

    run(test)


def test_a_watch_that_stays_silent_after_a_resync_is_relisted() -> None:
    """Every watch silent (a stuck watch cache): the resumed stream brings nothing either, so
    the next resync relists, and the list records the change."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster) as source:
            cluster.server.silence_watches(new=True)
            await cluster.scale(ready=3)
            await eventually(lambda: readies(source)[-1] == 3)
            assert source.resyncs == 2
            assert deployment_lists(cluster) == 2  # the first list and the relist
            cluster.server.voice_watches()

    run(test)


def test_a_dead_api_leaves_the_data_stale_before_the_source_is_lost() -> None:
    """Once the API server dies, nothing proves the data any more: it is stale from the last
    proof before the death, while the source still retries (it is lost only later)."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        timing = dataclasses.replace(FAST, lost_after_s=30.0)
        async with started(cluster, timing=timing) as source:
            loop = asyncio.get_running_loop()
            await eventually(lambda: deployment_gets(cluster) >= 1)  # proofs are flowing
            killed_at = loop.time()
            await cluster.kill_server()

            def overdue() -> bool:
                fresh = source.fresh_until
                return fresh is not None and loop.time() - fresh > timing.stale_after_s

            await eventually(overdue, timeout_s=5)
            fresh = source.fresh_until
            assert fresh is not None
            assert fresh <= killed_at
            assert source.lost_at is None

    run(test)


def test_a_proof_after_a_long_gap_does_not_make_the_data_fresh_again() -> None:
    """Watch silent and GET forbidden for longer than `stale_after_s`, then the watch resumes
    and replays a change: the change is recorded, but the data stays stale from before the gap
    (the change may have happened at any moment of it)."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster) as source:
            await eventually(lambda: cluster.server.open_watches == 1)
            cluster.server.deny("get", "apps", "deployments")
            assert cluster.server.silence_watches() == 1
            gap_from = source.fresh_until
            assert gap_from is not None
            loop = asyncio.get_running_loop()
            await eventually(lambda: loop.time() - gap_from > FAST.stale_after_s + 0.3)
            await cluster.scale(ready=3)
            assert cluster.server.drop_watches(abrupt=True) == 1
            await eventually(lambda: readies(source)[-1] == 3)
            assert source.fresh_until is not None
            assert source.fresh_until - gap_from < FAST.stale_after_s  # not moved past the gap
            assert source.lost_at is None

    run(test)


def test_polls_prove_freshness_when_watch_is_forbidden() -> None:
    """Polling (watch forbidden) proves the data fresh at each answer."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        cluster.server.deny("watch", "apps", "deployments")
        async with started(cluster, check_permissions=False) as source:
            await eventually(lambda: source.mode == "poll")
            first = source.fresh_until
            assert first is not None
            loop = asyncio.get_running_loop()
            await eventually(lambda: loop.time() - first > FAST.stale_after_s + 0.5)
            fresh = source.fresh_until
            assert fresh is not None
            assert loop.time() - fresh <= FAST.stale_after_s

    run(test)
