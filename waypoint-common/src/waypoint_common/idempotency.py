"""Idempotent, capacity-checked writes in Redis: the store behind every booking tool.

A write happens in two atomic steps:

1. **Claim** the request id: `SET NX` of a global record holding a fingerprint of the
   tool and its arguments. The same request id with other arguments is refused here,
   whichever inventory item it names.
2. **Commit** under the item's hash tag, in one Lua script: if the request id already
   committed, return the stored result; otherwise check every capacity counter, take the
   capacity, store the booking and the result. Concurrent callers (any replica) serialize on
   the script, so exactly one writes and every other caller gets the same answer.

A crash between the two steps leaves only the claim, and a retry with the same request id
and arguments passes the claim and commits. Every key a script touches shares the item's
hash tag (`{flight:<offer>}`), so the scripts also run on Redis Cluster.

Every booking has an owner (the tenant the caller named), stored beside it and part of the
write's fingerprint: a booking is found, and cancelled, only by its owner; to anyone else it
does not exist, and another owner reusing a request id is refused like any other mismatch.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio.cluster import RedisCluster

from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_common.errors import StateError

_COMMIT = """
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp then
  if fp ~= ARGV[1] then return {'conflict', ''} end
  return {'replay', redis.call('HGET', KEYS[1], 'result')}
end
local amount = tonumber(ARGV[3])
local initial = tonumber(ARGV[4])
for i = 3, #KEYS do
  local left = redis.call('GET', KEYS[i])
  if left == false then left = initial else left = tonumber(left) end
  if left < amount then return {'sold_out', tostring(i - 3) .. ':' .. tostring(left)} end
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], initial, 'NX')
  redis.call('DECRBY', KEYS[i], amount)
end
redis.call('HSET', KEYS[2], 'data', ARGV[2], 'status', 'confirmed', 'request_id', ARGV[5], 'owner', ARGV[6])
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'result', ARGV[2], 'booking', KEYS[2])
return {'created', ARGV[2]}
"""

_RELEASE = """
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp then
  if fp ~= ARGV[1] then return {'conflict', ''} end
  return {'replay', redis.call('HGET', KEYS[1], 'result')}
end
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[5] then return {'missing', ''} end
local outcome = 'already_cancelled'
if redis.call('HGET', KEYS[2], 'status') ~= 'cancelled' then
  redis.call('HSET', KEYS[2], 'status', 'cancelled', 'cancel_request_id', ARGV[4])
  local amount = tonumber(ARGV[2])
  for i = 3, #KEYS do redis.call('INCRBY', KEYS[i], amount) end
  outcome = 'cancelled'
end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'result', ARGV[3])
return {outcome, ARGV[3]}
"""


class WriteRefused(StateError):
    """A write that cannot happen; `field` names the argument at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RequestIdConflict(WriteRefused):
    """The request id was used before with different arguments."""

    def __init__(self) -> None:
        super().__init__(
            "request_id", "already used with different arguments; use a new request_id for a new write"
        )


class SoldOut(WriteRefused):
    """Not enough capacity left on one of the counters."""

    def __init__(self, field: str, index: int, left: int) -> None:
        super().__init__(field, f"sold out ({left} left)")
        self.index = index
        self.left = left


class UnknownBooking(WriteRefused):
    def __init__(self, field: str = "booking_id") -> None:
        super().__init__(field, "no such booking")


def fingerprint(tool: str, arguments: Mapping[str, Any], owner: str) -> str:
    """A stable digest of a tool call's arguments (request_id excluded) and its owner."""
    payload = {k: v for k, v in arguments.items() if k != "request_id"}
    canonical = orjson.dumps({"tool": tool, "args": payload, "owner": owner}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def random_id(prefix: str, nbytes: int = 16) -> str:
    """An unguessable id for the entity a request creates (replays return the stored one)."""
    return f"{prefix}-{secrets.token_hex(nbytes)}"


class IdempotentWriteStore:
    """Capacity-checked, exactly-once writes for one service's inventory."""

    def __init__(self, redis: RedisClient, service: str, *, record_ttl_seconds: int = 30 * 24 * 3600) -> None:
        self._redis = redis
        self._service = service
        self._ttl = record_ttl_seconds
        self._commit = redis.register_script(_COMMIT)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def capacity_key(tag: str, counter: str) -> str:
        return keys.capacity(tag, counter)

    @staticmethod
    def booking_key(tag: str, booking_id: str) -> str:
        return keys.booking(tag, booking_id)

    @staticmethod
    def _record_key(tag: str, request_id: str) -> str:
        return keys.write_record(tag, request_id)

    def _claim_key(self, request_id: str) -> str:
        return keys.write_claim(self._service, request_id)

    async def _claim(self, request_id: str, digest: str, tag: str) -> None:
        """Claim the request id for this write: its fingerprint and the item's tag (so that the
        request's outcome can be looked up by its id alone, see `find`)."""
        key = self._claim_key(request_id)
        ttl = self._ttl or None
        claim = f"{digest} {tag}"
        if await self._redis.set(key, claim, nx=True, ex=ttl):
            return
        existing = await self._redis.get(key)
        if existing is not None and existing != claim:
            raise RequestIdConflict
        if existing is None and not await self._redis.set(key, claim, nx=True, ex=ttl):
            # Expired and re-claimed by someone else between our two calls.
            raise RequestIdConflict

    async def find(self, request_id: str, owner: str) -> dict[str, Any] | None:
        """The booking a write request made, as it stands now (confirmed or cancelled); None when
        that request booked nothing (yet), or not for `owner`. Reads only."""
        claim = await self._redis.get(self._claim_key(request_id))
        if claim is None or " " not in str(claim):
            return None
        tag = str(claim).split(" ", 1)[1]
        booking_key = await self._redis.hget(self._record_key(tag, request_id), "booking")
        if booking_key is None:
            return None
        fields = await self._redis.hgetall(str(booking_key))
        if not fields or fields.get("owner") != owner:
            return None
        booking: dict[str, Any] = orjson.loads(fields["data"])
        booking["status"] = fields["status"]
        return booking

    async def remaining(self, counters: Sequence[tuple[str, str, int]]) -> list[int]:
        """Capacity left on each `(tag, counter, initial)`: `initial` where nothing was taken yet.

        One MGET (on a Redis Cluster, one per slot: redis-py's `mget_nonatomic` splits it). A
        search reads hundreds of counters: one command instead of hundreds in a pipeline.
        """
        if not counters:
            return []
        names = [self.capacity_key(tag, counter) for tag, counter, _ in counters]
        if isinstance(self._redis, RedisCluster):
            values = await self._redis.mget_nonatomic(names)
        else:
            values = await self._redis.mget(names)
        return [initial if v is None else int(v) for v, (_, _, initial) in zip(values, counters, strict=True)]

    async def commit(
        self,
        *,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str,
        request_id: str,
        tag: str,
        booking_id: str,
        booking: Mapping[str, Any],
        counters: Sequence[str],
        amount: int,
        initial: int,
        sold_out_field: str,
    ) -> dict[str, Any]:
        """Take `amount` from every counter and store `booking` for `owner`, once per request id."""
        digest = fingerprint(tool, arguments, owner)
        await self._claim(request_id, digest, tag)
        keys = [
            self._record_key(tag, request_id),
            self.booking_key(tag, booking_id),
            *(self.capacity_key(tag, c) for c in counters),
        ]
        raw = await self._commit(
            keys=keys, args=[digest, orjson.dumps(booking).decode(), amount, initial, request_id, owner]
        )
        outcome, payload = str(raw[0]), str(raw[1])
        if outcome == "conflict":
            raise RequestIdConflict
        if outcome == "sold_out":
            index, _, left = payload.partition(":")
            raise SoldOut(sold_out_field, int(index), int(left))
        if self._ttl:
            await self._redis.expire(keys[0], self._ttl)
        stored: dict[str, Any] = orjson.loads(payload)  # as first written: a replay returns the same
        return stored

    async def get(self, tag: str, booking_id: str, owner: str) -> dict[str, Any] | None:
        """The booking as stored, with its current status; None when unknown or not `owner`'s."""
        fields = await self._redis.hgetall(self.booking_key(tag, booking_id))
        if not fields or fields.get("owner") != owner:
            return None
        booking: dict[str, Any] = orjson.loads(fields["data"])
        booking["status"] = fields["status"]
        return booking

    async def release(
        self,
        *,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str,
        request_id: str,
        tag: str,
        booking_id: str,
        counters: Sequence[str],
        amount: int,
    ) -> dict[str, Any]:
        """Cancel `owner`'s booking and give its capacity back, exactly once however often asked."""
        digest = fingerprint(tool, arguments, owner)
        await self._claim(request_id, digest, tag)
        booking = await self.get(tag, booking_id, owner)
        if booking is None:
            raise UnknownBooking
        booking["status"] = "cancelled"
        keys = [
            self._record_key(tag, request_id),
            self.booking_key(tag, booking_id),
            *(self.capacity_key(tag, c) for c in counters),
        ]
        raw = await self._release(
            keys=keys, args=[digest, amount, orjson.dumps(booking).decode(), request_id, owner]
        )
        outcome, payload = str(raw[0]), str(raw[1])
        if outcome == "conflict":
            raise RequestIdConflict
        if outcome == "missing":
            raise UnknownBooking
        if self._ttl:
            await self._redis.expire(keys[0], self._ttl)
        cancelled: dict[str, Any] = orjson.loads(payload)  # as first answered: replays get the same
        return cancelled
