"""The Redis connection every service shares within its process: one node, or a Redis Cluster.

`REDIS_URL` names either a single Redis (`redis://host:port/0`, `rediss://…` for TLS) or a
Redis Cluster (`redis+cluster://host:port,host:port,…`, `rediss+cluster://…`): the scheme
decides, so one variable says it all. A cluster URL lists one or more of its nodes (the client
discovers the rest; list several, so that one node being down does not stop a process from
starting), may carry credentials (`redis+cluster://user:password@…`) and the options redis-py's
`RedisCluster` takes as a query string, and has no database but 0.

Everything the services do works on both, because every key that one Lua script or transaction
touches shares a hash tag (`keys.py`). A plain `redis://` URL naming one node of a cluster does
not work: the first key on another node answers MOVED.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MaxConnectionsError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What the services hold: a single-node client or a cluster client. Both have every command
# the services use; the cluster one routes each command by its key's slot.
RedisClient: TypeAlias = Redis | RedisCluster

# What "Redis is unreachable (or not serving yet)" looks like to a client: worth waiting out,
# never a reason to give up on a piece of work. (A cluster that lost a master with no replica
# to replace it answers CLUSTERDOWN.)
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
    OSError,
)

# Every connection's time-outs, one node or a cluster's (also the rate limiter's own cluster
# client): a Redis that does not answer is found out in seconds.
TIMEOUTS: dict[str, float] = {"socket_connect_timeout": 2, "socket_timeout": 5}


def _connection_settings() -> dict[str, Any]:
    """What every pooled connection gets, one node or a cluster's: the time-outs, a health
    check on a connection idle for a while, and connection errors retried a couple of times."""
    return {
        "decode_responses": True,
        **TIMEOUTS,
        "health_check_interval": 15,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    }


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_DEFAULT_PORT = 6379


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """A `redis+cluster://` URL taken apart: the nodes it lists and what each connection needs."""

    scheme: str  # `redis` or `rediss`, what each node's connection is
    userinfo: str  # `user:password@` as written, or empty
    nodes: tuple[tuple[str, int], ...]
    query: str  # connection options, as written

    @property
    def hosts(self) -> str:
        """The nodes as a URL writes them: `host:port,[::1]:port`."""
        return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in self.nodes)

    def node_urls(self) -> list[str]:
        """A single-node URL for each node, with the same credentials, TLS and options."""
        query = f"?{self.query}" if self.query else ""
        return [f"{self.scheme}://{self.userinfo}{hosts}/0{query}" for hosts in self.hosts.split(",")]

    def connection_options(self) -> dict[str, Any]:
        """What every node's connection gets from the URL, as redis-py's `RedisCluster.from_url`
        takes them from one node's URL: credentials, TLS and the query's options."""
        options: dict[str, Any] = dict(parse_url(self.node_urls()[0]))
        for name in ("host", "port", "db"):
            options.pop(name, None)
        if options.pop("connection_class", None) is SSLConnection:
            options["ssl"] = True
        return options


def cluster_url(url: str) -> ClusterUrl | None:
    """The cluster `url` names, or None when it names a single Redis; ValueError when it is a
    cluster URL that cannot be used (no node, a node without a valid port, a database but 0)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        return None
    parts = urlsplit(f"cluster://{rest}")
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has only database 0, not {parts.path.lstrip('/')!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_node(item) for item in hosts.split(",") if item.strip())
    if not nodes:
        raise ValueError("a Redis Cluster URL names at least one node: redis+cluster://host:port[,host:port]")
    return ClusterUrl(CLUSTER_SCHEMES[scheme.lower()], f"{userinfo}@" if userinfo else "", nodes, parts.query)


def _node(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, after = item[1:].partition("]")
        port = after.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise ValueError(f"no host in cluster node {item!r}")
    if not port:
        return host, _DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port in cluster node {item!r}")
    return host, int(port)


def connect_redis(url: str, *, max_connections: int = 64, pool_timeout: float = 5.0) -> RedisClient:
    """A pooled asyncio client with short timeouts and retried connection errors: a `Redis`,
    or a `ClusterClient` for a `redis+cluster://` URL.

    The pool blocks: when all `max_connections` are in use, a command waits up to
    `pool_timeout` seconds for one to come back instead of failing at once ("Too many
    connections" would read as "Redis is down" to every caller). Nothing may hold a pooled
    connection for long: no blocking reads on this client except a worker's short job poll.
    On a cluster the bound is per node (see `ClusterClient`).

    Only connection-level failures are retried (a command that never reached Redis);
    the scripts we run are idempotent, so a retried one is safe as well.
    """
    cluster = cluster_url(url)
    if cluster is not None:
        return ClusterClient(cluster, max_connections=max_connections, pool_timeout=pool_timeout)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        **_connection_settings(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


class ClusterClient(RedisCluster):
    """redis-py's asyncio `RedisCluster` with the single-node client's settings, and three
    differences made good:

    - **A bounded pool that waits.** `max_connections` bounds each node's connections, as in
      redis-py; a command that finds its node's all in use waits up to `pool_timeout` for one
      (redis-py fails it at once with `MaxConnectionsError`). A pipeline does not wait: redis-py
      tries it again a couple of times, then fails it.
    - **Unreachable is a connection error.** When no node answers, redis-py raises
      `RedisClusterException`; here it is a `ConnectionError`, and so is a cluster that keeps
      answering CLUSTERDOWN, as a single Redis being down is: a 503 to the API, a pause to workers.
    - **Discovery only on the client's own thread.** redis-py 8.1 queues each command of a
      transaction (`pipeline(transaction=True)`) on a helper thread with an event loop of its
      own, and rediscovers the cluster there when it is due: the connections it makes are tied to
      that loop, gone when the command is queued. Here discovery is left to the next command on
      the thread that made the client (a transaction's WATCH and EXEC run there, and retry on a
      stale slot map). So make the client on the thread that runs its event loop (every service
      does), and open a transaction with `async with client.pipeline(transaction=True)`, so that
      a client never used before discovers the cluster first.
    """

    def __init__(self, url: ClusterUrl, *, max_connections: int = 64, pool_timeout: float = 5.0) -> None:
        settings: dict[str, Any] = {
            "max_connections": max_connections,
            **_connection_settings(),
            **url.connection_options(),
        }
        super().__init__(startup_nodes=[ClusterNode(host, port) for host, port in url.nodes], **settings)
        self.url = url
        self.pool_timeout = pool_timeout
        self._home_thread = threading.get_ident()

    async def initialize(self, *args: Any, **kwargs: Any) -> ClusterClient:
        if threading.get_ident() != self._home_thread:
            return self  # a transaction's helper thread: see the class's documentation
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            if isinstance(exc.__cause__, REDIS_UNAVAILABLE):
                raise RedisConnectionError(f"no Redis Cluster node answers ({exc.__cause__})") from exc
            raise
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pool_timeout
        while True:
            try:
                return await super().execute_command(*args, **kwargs)
            except MaxConnectionsError:
                # Raised before anything was sent: waiting and asking again is safe.
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.02))
            except ClusterDownError as exc:
                raise RedisConnectionError(f"the Redis Cluster is down ({exc})") from exc


async def redis_ready(redis: RedisClient) -> bool:
    """True when Redis answers a PING (on a cluster: every node the client knows)."""
    try:
        return bool(await redis.ping())
    except REDIS_UNAVAILABLE:
        return False
