"""The Redis connection every service shares within its process."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ReadOnlyError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What "Redis is unreachable (or not serving yet)" looks like to a client: worth waiting out,
# never a reason to give up on a piece of work.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    TryAgainError,
    OSError,
)


def connect_redis(url: str, *, max_connections: int = 64, pool_timeout: float = 5.0) -> Redis:
    """A pooled asyncio client with short timeouts and retried connection errors.

    The pool blocks: when all `max_connections` are in use, a command waits up to
    `pool_timeout` seconds for one to come back instead of failing at once ("Too many
    connections" would read as "Redis is down" to every caller). Nothing may hold a pooled
    connection for long: no blocking reads on this client except a worker's short job poll.

    Only connection-level failures are retried (a command that never reached Redis);
    the scripts we run are idempotent, so a retried one is safe as well.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


async def redis_ready(redis: Redis) -> bool:
    """True when Redis answers a PING."""
    try:
        return bool(await redis.ping())
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return False
