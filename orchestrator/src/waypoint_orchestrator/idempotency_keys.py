"""`Idempotency-Key` for `POST /v1/trips` (IETF httpapi idempotency-key draft, Stripe's semantics).

The key is claimed atomically with a fingerprint of the request body. While the first request is
being accepted a duplicate is told to come back (409); afterwards every replay gets the first
response; the same key with another body is refused (422). Records live 24 hours.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

KEY_TTL_SECONDS = 24 * 3600
PENDING_TTL_SECONDS = 60
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'fp', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'claimed', ''}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'mismatch', ''} end
if state == 'pending' then return {'in_flight', ''} end
return {'replay', redis.call('HGET', KEYS[1], 'response')}
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


class IdempotencyKeys:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)

    @staticmethod
    def _key(key: str) -> str:
        return f"wp:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"

    async def claim(self, key: str, digest: str) -> Claim:
        raw = await self._claim(keys=[self._key(key)], args=[digest, PENDING_TTL_SECONDS])
        outcome = str(raw[0])
        if outcome == "replay":
            stored = orjson.loads(raw[1])
            return Claim("replay", StoredResponse(stored["status_code"], stored["headers"], stored["body"]))
        return Claim(outcome)  # type: ignore[arg-type]

    async def complete(self, key: str, response: StoredResponse) -> None:
        payload = orjson.dumps(
            {"status_code": response.status_code, "headers": response.headers, "body": response.body}
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(key), mapping={"state": "done", "response": payload})
        pipe.expire(self._key(key), KEY_TTL_SECONDS)
        await pipe.execute()

    async def release(self, key: str) -> None:
        """Forget a claim whose request failed before it was accepted, so the client may retry."""
        await self.redis.delete(self._key(key))
