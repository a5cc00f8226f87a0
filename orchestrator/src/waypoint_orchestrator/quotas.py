"""Per-key limits, kept in Redis so every orchestrator replica enforces the same ones.

- `RequestRate`: requests a minute (a moving window, from the `limits` library's Redis
  strategy: one Lua script per hit, exact across replicas), with what the IETF `RateLimit` and
  `RateLimit-Policy` headers report. On a Redis Cluster the library has a cluster client of its
  own (it cannot share ours), made from the same URL, with at most 8 connections per node.
- `WaitSlots`: how many requests of a key may hold the server open at once (event streams and
  `Prefer: wait`). A slot is a member of a sorted set scored by its lease's end, taken by a Lua
  script that first drops expired leases: a replica that dies cannot leak slots for longer than
  a lease.
- `SpendLedger`: the booking spend of a key per UTC day, reserved atomically before a trip's
  booking saga books anything, once per trip, and given back when the saga undoes its bookings.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from waypoint_common import keys
from waypoint_common.connections import TIMEOUTS, ClusterClient, RedisClient

POLICY = "default"


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int = 60

    def headers(self) -> dict[str, str]:
        """IETF httpapi-ratelimit-headers: the policy and what is left of it."""
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_seconds}',
        }


class RequestRate:
    """Requests per minute per key."""

    def __init__(self, redis: RedisClient) -> None:
        storage: RedisStorage
        if isinstance(redis, ClusterClient):
            # The library's cluster URL names the nodes; credentials, TLS and options are ours.
            storage = RedisClusterStorage(
                f"async+redis+cluster://{redis.url.hosts}",
                implementation="redispy",
                key_prefix=keys.RATE_PREFIX,
                **{
                    "max_connections": 8,
                    **TIMEOUTS,
                    **redis.url.connection_options(),
                },
            )
        elif isinstance(redis, Redis):
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                # The options are typed as scalars, but a pool is documented and passed through.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
                key_prefix=keys.RATE_PREFIX,
            )
        else:
            raise TypeError("a Redis Cluster client for the rate limit is made by connect_redis")
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key_id: str, per_minute: int) -> RateDecision:
        item = RateLimitItemPerMinute(per_minute)
        allowed = await self._limiter.hit(item, key_id)
        stats = await self._limiter.get_window_stats(item, key_id)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, per_minute, max(0, stats.remaining), reset)


_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

_RENEW_SLOT = """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class WaitSlots:
    """Requests of one key that may hold the server open at the same time."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._take = redis.register_script(_TAKE_SLOT)
        self._renew = redis.register_script(_RENEW_SLOT)

    @staticmethod
    def key(key_id: str) -> str:
        return keys.wait_slots(key_id)

    async def take(self, key_id: str, limit: int, lease_seconds: float) -> str | None:
        """A slot's id, or None when the key already holds `limit` of them."""
        if limit <= 0:
            return None
        slot = uuid.uuid4().hex
        now_ms = int(time.time() * 1000)
        lease_ms = int(lease_seconds * 1000)
        taken = await self._take(
            keys=[self.key(key_id)], args=[now_ms, now_ms + lease_ms, limit, slot, lease_ms]
        )
        return slot if int(taken) == 1 else None

    async def renew(self, key_id: str, slot: str, lease_seconds: float) -> bool:
        lease_ms = int(lease_seconds * 1000)
        renewed = await self._renew(
            keys=[self.key(key_id)], args=[int(time.time() * 1000) + lease_ms, slot, lease_ms]
        )
        return int(renewed) == 1

    async def release(self, key_id: str, slot: str) -> None:
        await self.redis.zrem(self.key(key_id), slot)

    async def held(self, key_id: str) -> int:
        now_ms = int(time.time() * 1000)
        return int(await self.redis.zcount(self.key(key_id), f"({now_ms}", "+inf"))


_RESERVE = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return {1, redis.call('HGET', KEYS[1], 'total') or '0'} end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local amount = tonumber(ARGV[2])
if total + amount > tonumber(ARGV[3]) then return {0, tostring(total)} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local new = redis.call('HINCRBYFLOAT', KEYS[1], 'total', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, new}
"""

_REFUND = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[1], 'total', -tonumber(held))
return 1
"""


@dataclass(frozen=True, slots=True)
class SpendDecision:
    allowed: bool
    spent_usd: float
    cap_usd: float


class SpendLedger:
    """Booking spend per key and UTC day; a trip's amount is reserved once, before it books."""

    TTL_SECONDS = 3 * 24 * 3600

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._refund = redis.register_script(_REFUND)

    @staticmethod
    def key(key_id: str, day: dt.date) -> str:
        return keys.spend(key_id, day.isoformat())

    async def reserve(
        self, key_id: str, day: dt.date, trip_id: str, amount_usd: float, cap_usd: float
    ) -> SpendDecision:
        """Reserve the trip's amount against the day's cap; a trip already reserved passes again."""
        raw = await self._reserve(
            keys=[self.key(key_id, day)],
            args=[f"trip:{trip_id}", repr(round(amount_usd, 2)), repr(cap_usd), self.TTL_SECONDS],
        )
        return SpendDecision(bool(int(raw[0])), float(raw[1]), cap_usd)

    async def refund(self, key_id: str, day: dt.date, trip_id: str) -> bool:
        """Give a trip's reservation back (its bookings were undone); once, however often asked."""
        return bool(int(await self._refund(keys=[self.key(key_id, day)], args=[f"trip:{trip_id}"])))

    async def spent(self, key_id: str, day: dt.date) -> float:
        total = await self.redis.hget(self.key(key_id, day), "total")
        return float(total or 0)
