"""The near cache while a Redis Cluster's topology changes under it.

Each test runs on a cluster of its own, since it moves slots: three primaries, and a
fourth node that joins empty.  A slot changes owner the way ``redis-cli --cluster
reshard`` moves it (``SETSLOT IMPORTING`` / ``MIGRATING``, ``MIGRATE`` of its keys,
``SETSLOT NODE`` on every primary), then its key is written on the new owner: the near
tier must never serve the copy it held from the old owner past the propagation bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import FIXTURE_TIMEOUT, TEST_SERVER_ARGS
from tests.near_support import PATIENCE, copy_held, eventually, fresh_prefix, near_store
from tests.redis_servers import RedisCluster, RedisServer, free_cluster_port

pytestmark = [pytest.mark.anyio, pytest.mark.cluster]

#: How long a write on the new owner may take to reach the tier (the README's bound).
BOUND = 1.0


class Topology:
    """A cluster of three primaries and a fourth node, and the moves the tests make."""

    def __init__(self) -> None:
        self.cluster = RedisCluster(extra_args=TEST_SERVER_ARGS)
        try:
            port = free_cluster_port()
            self.spare = RedisServer(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
                *TEST_SERVER_ARGS,
                port=port,
            )
        except BaseException:
            self.cluster.close()
            raise

    @property
    def url(self) -> str:
        return self.cluster.url

    @staticmethod
    def client(node: RedisServer) -> redis.Redis:
        return redis.Redis(node.host, node.port, socket_timeout=5)

    def node_id(self, node: RedisServer) -> str:
        with self.client(node) as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def join_spare(self) -> None:
        """Make the fourth node a member (a primary owning no slot) that every node knows."""
        first = self.cluster.nodes[0]
        with self.client(self.spare) as client:
            client.execute_command("CLUSTER", "MEET", first.host, str(first.port))
        self.cluster.nodes.append(self.spare)
        self.cluster.wait_until_ok()

    def owner(self, key: str) -> RedisServer:
        with self.client(self.cluster.nodes[0]) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for node in self.cluster.nodes:
            with self.client(node) as client:
                if int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) or any(
                    start <= slot <= end for start, end in self._own_ranges(client)
                ):
                    return node
        raise AssertionError(f"no node owns the slot of {key}")

    @staticmethod
    def _own_ranges(client: redis.Redis) -> list[tuple[int, int]]:
        nodes = client.execute_command("CLUSTER", "NODES")
        text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
        [mine] = [line for line in text.splitlines() if "myself" in line.split()[2]]
        ranges = []
        for field in mine.split()[8:]:
            if field.startswith("["):
                continue  # a slot being moved, not owned
            start, _, end = field.partition("-")
            ranges.append((int(start), int(end or start)))
        return ranges

    def move_slot_of(self, key: str, target: RedisServer) -> None:
        """Move ``key``'s slot, with its keys, from its owner to ``target``."""
        source = self.owner(key)
        assert source is not target
        with self.client(source) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        source_id, target_id = self.node_id(source), self.node_id(target)
        with self.client(target) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        with self.client(source) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                client.execute_command(
                    "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys
                )
        for node in [target, source, *self.cluster.nodes]:
            with self.client(node) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        deadline = time.monotonic() + PATIENCE
        while self.owner(key) is not target:
            assert time.monotonic() < deadline, "the slot never settled on its new owner"
            time.sleep(0.05)

    def close(self) -> None:
        self.cluster.close()
        self.spare.close()


@pytest.fixture
def topology() -> Iterator[Topology]:
    topology = Topology()
    try:
        yield topology
    finally:
        topology.close()


async def write_on_new_owner_is_seen(
    topology: Topology, store: RedisStore, writer: RedisStore, key: str
) -> None:
    """Write ``key`` (moved) through ``writer``, then read it through ``store`` until it
    answers the new value: within :data:`BOUND`, and never the old one after it."""
    await writer.set(key, b"new", 60)
    written = time.monotonic()
    while True:
        await asyncio.sleep(0.001)  # a near hit never yields: let the invalidations in
        value = await store.get(key)
        elapsed = time.monotonic() - written
        if value == b"new":
            break
        assert value == b"old", value
        assert elapsed <= BOUND, f"the old copy was still served {elapsed:.2f} s after the write"
    # The tier keeps copies from the new owner, and hears of its writes.
    await copy_held(store, key)
    await writer.set(key, b"newer", 60)
    written = time.monotonic()
    while (value := await store.get(key)) != b"newer":
        assert value == b"new", value
        await asyncio.sleep(0.001)
        assert time.monotonic() - written <= BOUND, "a write on the new owner never arrived"


@pytest.mark.parametrize("target", ["another primary", "a node that joined"])
async def test_a_moved_key_written_on_its_new_owner_is_never_served_stale(
    topology: Topology, target: str
) -> None:
    prefix = fresh_prefix()
    key = prefix + "page:moved"
    store = near_store(topology.url, prefix, cluster=True)
    writer = RedisStore.from_url(topology.url, cluster=True, timeout=FIXTURE_TIMEOUT)
    try:
        await writer.set(key, b"old", 60)
        await copy_held(store, key)
        if target == "a node that joined":
            topology.join_spare()
            new_owner = topology.spare
        else:
            new_owner = next(n for n in topology.cluster.nodes if n is not topology.owner(key))
        topology.move_slot_of(key, new_owner)
        await write_on_new_owner_is_seen(topology, store, writer, key)
    finally:
        await store.aclose()
        await writer.aclose()


async def test_a_copy_read_after_the_move_is_not_kept_from_an_untracked_owner(
    topology: Topology,
) -> None:
    """Read first from the new owner (the spare joined after tracking began), then write."""
    prefix = fresh_prefix()
    key = prefix + "page:moved"
    store = near_store(topology.url, prefix, cluster=True)
    writer = RedisStore.from_url(topology.url, cluster=True, timeout=FIXTURE_TIMEOUT)
    try:
        await writer.set(key, b"old", 60)
        await copy_held(store, key)
        topology.join_spare()
        topology.move_slot_of(key, topology.spare)

        async def moved_read() -> bool:
            return await store.get(key) == b"old"

        await eventually(moved_read, "a read of the moved key")
        for _ in range(5):  # a few reads: any copy kept now comes from the new owner
            assert await store.get(key) == b"old"
        await write_on_new_owner_is_seen(topology, store, writer, key)
    finally:
        await store.aclose()
        await writer.aclose()
