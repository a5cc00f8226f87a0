"""The Redis connection every service shares within its process."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect_redis(url: str, *, max_connections: int = 64) -> Redis:
    """A pooled asyncio client with short timeouts and retried connection errors.

    Only connection-level failures are retried (a command that never reached Redis);
    the scripts we run are idempotent, so a retried one is safe as well.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def redis_ready(redis: Redis) -> bool:
    """True when Redis answers a PING."""
    try:
        return bool(await redis.ping())
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return False
