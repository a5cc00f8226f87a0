"""`Idempotency-Key` for `POST /v1/trips` (IETF httpapi idempotency-key draft, Stripe's semantics).

The key is claimed atomically with a fingerprint of the request body and the id of the trip the
request will create, decided at claim time. While a request holds the claim's lease a duplicate
is told to come back (409); afterwards every replay gets the first response; the same key with
another body is refused (422).

A request that failed (or died) before completing the record leaves it pending with its trip id.
The next request with the same key and body takes the claim over once the lease has run out (at
once when the failed request released it) and gets the same trip id: if the earlier attempt
stored the trip, the retry returns it; if it stored nothing, the retry creates it with that id.
So a retry never creates a second trip. Records live 24 hours.

The methods take the key string as the client sent it (a caller may qualify it, e.g. with the
tenant: `f"{tenant}:{key}"`); only its hash is stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from waypoint_common import keys
from waypoint_common.connections import RedisClient

KEY_TTL_SECONDS = 24 * 3600
# How long a request holds its claim: a duplicate meanwhile is 409. Longer than accepting a trip
# takes; if it runs out while the first request still works, both use the same trip id, and the
# trip is created once (`SET NX`).
LEASE_SECONDS = 10
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# KEYS[1] the record; ARGV: fingerprint, proposed trip id, lease ms, ttl s, owner token.
# (Every script here may run twice for one call: the client retries after a lost reply.)
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'fp', ARGV[1], 'trip', ARGV[2],
             'lease', now + tonumber(ARGV[3]), 'owner', ARGV[5])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return {'claimed', ARGV[2], '0'}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'mismatch', '', ''} end
if state ~= 'pending' then return {'replay', redis.call('HGET', KEYS[1], 'response'), ''} end
local trip = redis.call('HGET', KEYS[1], 'trip')
if trip and redis.call('HGET', KEYS[1], 'owner') == ARGV[5] then return {'claimed', trip, '1'} end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
if (not trip) or lease > now then return {'in_flight', '', ''} end
redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[3]), 'owner', ARGV[5])
return {'claimed', trip, '1'}
"""

# KEYS[1] the record; ARGV: owner token. Ends the lease of a pending claim this request holds.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'pending' and redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lease', '0')
  return 1
end
return 0
"""

# KEYS[1] the record; ARGV: owner token, old trip id, new trip id.
_REBIND = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
local trip = redis.call('HGET', KEYS[1], 'trip')
if trip == ARGV[3] then return 1 end
if trip ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'trip', ARGV[3])
return 1
"""


def valid_key(key: str) -> bool:
    """At most 255 visible ASCII characters (the draft's key is an RFC 8941 string)."""
    return bool(_VALID_KEY.match(key))


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Literal["claimed", "mismatch", "in_flight", "replay"]
    response: StoredResponse | None = None
    trip_id: str | None = None
    # Claimed from an earlier request with the same key that did not finish: it may have stored
    # the trip already.
    resumed: bool = False


class IdempotencyKeys:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._rebind = redis.register_script(_REBIND)

    @staticmethod
    def _key(key: str) -> str:
        return keys.idempotency_record(hashlib.sha256(key.encode()).hexdigest())

    async def claim(self, key: str, digest: str, trip_id: str, owner: str) -> Claim:
        """Claim `key` for a request with body `digest` that would create trip `trip_id`.

        `claimed` carries the trip id to use: `trip_id` for a new key, the recorded one when an
        earlier request with this key did not finish (`resumed`). `owner` identifies this request
        for `release` and `rebind`.
        """
        raw = await self._claim(
            keys=[self._key(key)], args=[digest, trip_id, LEASE_SECONDS * 1000, KEY_TTL_SECONDS, owner]
        )
        outcome = str(raw[0])
        if outcome == "replay":
            stored = orjson.loads(raw[1])
            return Claim("replay", StoredResponse(stored["status_code"], stored["headers"], stored["body"]))
        if outcome == "claimed":
            return Claim("claimed", trip_id=str(raw[1]), resumed=str(raw[2]) == "1")
        return Claim(outcome)  # type: ignore[arg-type]

    async def complete(self, key: str, response: StoredResponse) -> None:
        payload = orjson.dumps(
            {"status_code": response.status_code, "headers": response.headers, "body": response.body}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(key), mapping={"state": "done", "response": payload})
            pipe.expire(self._key(key), KEY_TTL_SECONDS)
            await pipe.execute()

    async def release(self, key: str, owner: str) -> None:
        """End this request's lease (it failed): a retry may take the claim over at once.

        The record keeps its trip id, so the retry creates that trip, or finds it if this
        request stored it after all.
        """
        await self._release(keys=[self._key(key)], args=[owner])

    async def rebind(self, key: str, owner: str, old_trip_id: str, new_trip_id: str) -> bool:
        """Record another trip id on a claim this request still holds (the old id can never be
        created). False when the claim is no longer this request's."""
        return bool(await self._rebind(keys=[self._key(key)], args=[owner, old_trip_id, new_trip_id]))
