"""The one way to open a Redis client: a single server (``redis://``) or a Cluster.

``redis+cluster://host:port,host:port,...`` (or ``rediss+cluster://`` for TLS) opens redis-py's
asyncio ``RedisCluster`` seeded with those nodes. The rest of the code base keeps the
``redis.asyncio.Redis`` type: the cluster client offers the same commands, and every multi-key
command and script of livesell stays inside one hash tag (``docs/architecture.md``).

redis-py's cluster pipelines refuse ``transaction=True``; ``ClusterClient`` runs such a
pipeline as MULTI/EXEC on the node that owns its keys' one slot, so the room's atomic reads
(``chat/room.py``) keep their meaning on a Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MovedError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

#: How long a call waits for a free connection before failing (as the blocking pool does).
POOL_WAIT_S = 5

#: Socket settings shared by single-server and cluster clients.
_TIMEOUTS = {"socket_timeout": 5, "socket_connect_timeout": 1}


def is_cluster(redis: object) -> bool:
    """Whether ``redis`` talks to a Redis Cluster (scripts and pub/sub differ there)."""
    return isinstance(redis, RedisCluster)


def publish_command(redis: object) -> str:
    """PUBLISH on one Redis; sharded SPUBLISH on a Cluster (the message stays on its shard)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Cluster (``redis+cluster://host:port,...``)."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_seeds(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` seed nodes of a ``redis+cluster://`` URL."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    seeds = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster node {part!r} is not host:port in {url!r}")
        seeds.append((host.strip("[]"), int(port)))
    return seeds


def connect(url: str, pool_size: int) -> Redis:
    """A client for ``url``; its pools wait for a free connection instead of failing under load."""
    if is_cluster_url(url):
        return cast(Redis, _cluster(url, pool_size))
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=POOL_WAIT_S, **_TIMEOUTS
    )
    return Redis(connection_pool=pool)


async def close(redis: Redis) -> None:
    """Close a client made by ``connect`` (a cluster client's ``aclose`` only resets it)."""
    if isinstance(redis, ClusterClient):
        await redis.close_all()
    else:
        await redis.aclose()


def _cluster(url: str, pool_size: int) -> ClusterClient:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    return ClusterClient(  # type: ignore[abstract]  # redis-py's stubs, not a real ABC
        startup_nodes=[ClusterNode(h, p) for h, p in cluster_seeds(url)],
        username=user or None,
        password=password or None,
        ssl=parts.scheme == "rediss+cluster",
        # Per node; a cluster command retries MOVED/ASK and failovers on its own.
        max_connections=pool_size,
        require_full_coverage="partial" not in query,
        **_TIMEOUTS,
    )


class ClusterClient(RedisCluster):
    """``RedisCluster`` whose ``pipeline(transaction=True)`` runs MULTI/EXEC on one slot's node.

    It also waits for a free connection, as the single-server client's blocking pool does:
    redis-py's cluster nodes fail with "Too many connections" instead, which in a rush turned
    buys into 503s. At most ``max_connections`` calls are in flight, each holding at most one
    connection per node.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool_size = int(kwargs["max_connections"])
        self._in_flight = asyncio.Semaphore(self._pool_size)
        self._node_pools: dict[str, ConnectionPool] = {}

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait (at most ``POOL_WAIT_S``) until fewer than the pool size of calls are running."""
        try:
            await asyncio.wait_for(self._in_flight.acquire(), POOL_WAIT_S)
        except TimeoutError:
            raise RedisConnectionError("no cluster connection available") from None
        try:
            yield
        finally:
            self._in_flight.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run one command when a connection is free (see the class)."""
        async with self.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        """A transaction bound to its keys' slot, or redis-py's (non-atomic) cluster pipeline."""
        if transaction:
            return SlotTransaction(self)
        return ScriptFriendlyPipeline(self)  # type: ignore[abstract]

    async def script_load(self, script: Any) -> str:  # type: ignore[override]
        """Load a script on every node, replicas included, so a promoted replica has it.

        redis-py loads on the primaries it knows; right after a failover that list can still
        name the old primary, and the retried EVALSHA met NOSCRIPT again. A node that is down
        is skipped; it loads the script on its first NOSCRIPT after coming back.
        """
        sha: str | None = None
        failure: Exception | None = None
        for node in self.get_nodes():
            try:
                reply = await self.execute_command("SCRIPT LOAD", script, target_nodes=node)
            except (RedisConnectionError, OSError, ResponseError) as exc:
                failure = exc
                continue
            sha = reply.decode() if isinstance(reply, bytes) else str(reply)
        if sha is None:
            raise failure or RedisClusterException("no cluster node to load a script on")
        return sha

    def node_pool(self, slot: int) -> ConnectionPool:
        """The connection pool of the primary that owns ``slot`` (as the client last saw it)."""
        node = self.nodes_manager.get_node_from_slot(slot)
        pool = self._node_pools.get(node.name)
        if pool is None:
            # The node's own connection settings (auth, TLS, timeouts, the cluster's parser).
            pool = self._node_pools[node.name] = BlockingConnectionPool(
                connection_class=node.connection_class,
                max_connections=self._pool_size,
                timeout=POOL_WAIT_S,
                **node.connection_kwargs,
            )
        return pool

    async def aclose(self) -> None:
        """Re-read the cluster's layout before the next command; keep the open connections.

        redis-py calls this itself after a connection error or CLUSTERDOWN (a failover) to force
        that re-read, and its version also cut every connection of every node: the requests
        using them at that moment failed with errors that are not even ``RedisError`` (500s
        instead of 503s). Connections to a dead node fail on their own. To really close the
        client use ``close()`` (module level) or ``close_all()``.
        """
        self._initialize = True

    async def close_all(self) -> None:
        """Close every connection: the cluster's and the per-node transaction pools."""
        await self.nodes_manager.aclose()
        await self.nodes_manager.aclose("startup_nodes")
        self._initialize = True
        for pool in self._node_pools.values():
            await pool.aclose()
        self._node_pools.clear()


class ScriptFriendlyPipeline(ClusterPipeline):
    """A cluster pipeline that also takes EVALSHA (a registered script) and TIME.

    redis-py blocks both in cluster pipelines. EVALSHA goes to its first key's slot like any
    keyed command; TIME to the default node (the nodes of one deployment share NTP time).
    redis-py's ``AsyncScript`` awaits a pipeline that is not a single-server ``Pipeline``,
    which would empty it; here awaiting keeps the queue.
    """

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Queue a script call (routed by its first key)."""
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def time(self, **kwargs: Any) -> Any:
        """Queue TIME on the default node."""
        return self.execute_command("TIME", target_nodes=RedisCluster.DEFAULT_NODE, **kwargs)

    def __await__(self) -> Any:
        return self._ready().__await__()

    async def _ready(self) -> ScriptFriendlyPipeline:
        if self._client._initialize:
            await self._client.initialize()
        return self

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        """Run the queued commands; a script unknown to a node is loaded and the batch rerun."""
        stack = list(self._command_stack)
        client = cast(ClusterClient, self._client)
        try:
            async with client.turn():
                return await super().execute(raise_on_error, allow_redirections)
        except NoScriptError:
            pass
        # After a failover the new primary has never seen our scripts (the script cache is
        # not replicated). Pipelined scripts are phase checks: rerunning them is harmless.
        for cmd in stack:
            if cmd.args and str(cmd.args[0]).upper() == "EVALSHA":
                source = _SCRIPTS.get(str(cmd.args[1]))
                if source is not None:
                    await self._client.script_load(source)
        self._command_stack = stack
        async with client.turn():
            return await super().execute(raise_on_error, allow_redirections)


#: Script sources by SHA, so a pipeline can load one a new primary lacks (see luascript.py).
_SCRIPTS: dict[str, str] = {}


def remember_script(sha: str, source: str) -> None:
    """Record a registered script's source for ``ScriptFriendlyPipeline``'s NOSCRIPT recovery."""
    _SCRIPTS[sha] = source


class SlotTransaction(Pipeline):
    """MULTI/EXEC of commands whose keys share one slot, sent to the node that owns it."""

    def __init__(self, cluster: ClusterClient) -> None:
        # The pool is chosen at execute(), once the keys (and so the slot) are known.
        super().__init__(cast(ConnectionPool, None), cluster.response_callbacks, True, None)
        self._cluster = cluster

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the transaction on the slot's primary; after MOVED or a dropped node, once more."""
        stack = list(self.command_stack)
        if self._cluster._initialize:
            await self._cluster.initialize()
        for attempt in (1, 2):
            self.command_stack = list(stack)
            self.connection_pool = self._cluster.node_pool(self._slot(stack))
            try:
                return await super().execute(raise_on_error)
            except (ResponseError, RedisConnectionError) as exc:
                moved = isinstance(exc, (MovedError, TryAgainError)) or str(exc).startswith("MOVED")
                if attempt == 2 or not (moved or isinstance(exc, RedisConnectionError)):
                    raise
                # The slot moved (a failover or resharding): learn the new owner and retry.
                # A queued transaction that met MOVED never ran, so retrying cannot apply twice.
                await self._cluster.nodes_manager.initialize()
        raise AssertionError("unreachable")

    def _slot(self, stack: list[Any]) -> int:
        slots = set()
        for args, _options in stack:
            name = str(args[0]).upper()
            if name in ("TIME", "PING") or len(args) < 2:
                continue
            slots.add(self._cluster.keyslot(args[1]))
        if len(slots) != 1:
            raise RedisClusterException(f"a transaction must touch exactly one slot, not {slots}")
        return slots.pop()
