"""API keys: who is calling, for which tenant, allowed to do what, within which limits.

A key is `wpk_<id>_<secret>`: the id (12 hex digits) names the key in listings and logs, the
secret (256 random bits) is shown once when the key is made and never stored. Redis keeps only
the SHA-256 of the whole key (a fast hash is right for a high-entropy secret: there is nothing to
guess), with the key's tenant, scopes, limits and last use. Keys are made, listed and revoked with
`waypoint-admin keys`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_common.errors import InputError

Scope = Literal["trips:read", "trips:write", "trips:book"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
_KEY = re.compile(r"^wpk_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# Last use is written at most this often per key and process: a write per request is not worth it.
LAST_USE_EVERY_SECONDS = 60.0


class InvalidKeyRequest(InputError):
    """A key cannot be made as asked (bad tenant, unknown scope, a limit out of range)."""


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What one key may use. `None` takes the server's default (`WAYPOINT_KEY_*`)."""

    requests_per_minute: int | None = None
    concurrent_waits: int | None = None
    daily_spend_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret."""

    id: str
    tenant: str
    scopes: frozenset[str]
    name: str
    limits: KeyLimits
    created_at: str
    last_used_at: str | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
"""


class ApiKeyStore:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._last_use_written: dict[str, float] = {}
        self._touch = redis.register_script(_TOUCH)

    @staticmethod
    def _record(digest: str) -> str:
        return keys.api_key(digest)

    # Key id -> digest, for listing and revoking. Records and index share the hash tag
    # `{apikeys}`, so making and revoking a key (one transaction) also run on Redis Cluster.
    INDEX = keys.API_KEY_INDEX

    @staticmethod
    def digest(presented: str) -> str:
        return hashlib.sha256(presented.encode()).hexdigest()

    @staticmethod
    def well_formed(presented: str) -> bool:
        return bool(_KEY.match(presented))

    async def create(
        self,
        tenant: str,
        scopes: Iterable[str],
        *,
        name: str = "",
        limits: KeyLimits | None = None,
    ) -> tuple[str, ApiKey]:
        """Make a key; returns the key itself (shown once) and what is stored about it."""
        if not _TENANT.match(tenant):
            raise InvalidKeyRequest(
                f"tenant: {tenant!r} must be 1-63 lower-case letters, digits, '.', '_' or '-'"
            )
        wanted = frozenset(scopes)
        unknown = sorted(wanted - set(SCOPES))
        if unknown or not wanted:
            raise InvalidKeyRequest(f"scopes: give one or more of {', '.join(SCOPES)} (got {sorted(wanted)})")
        limits = limits or KeyLimits()
        if limits.requests_per_minute is not None and not 1 <= limits.requests_per_minute <= 100_000:
            raise InvalidKeyRequest("requests_per_minute: must be between 1 and 100000")
        if limits.concurrent_waits is not None and not 0 <= limits.concurrent_waits <= 10_000:
            raise InvalidKeyRequest("concurrent_waits: must be between 0 and 10000")
        if limits.daily_spend_usd is not None and not 0 <= limits.daily_spend_usd <= 10_000_000:
            raise InvalidKeyRequest("daily_spend_usd: must be between 0 and 10000000")
        key_id = secrets.token_hex(6)
        presented = f"wpk_{key_id}_{secrets.token_urlsafe(32)}"
        digest = self.digest(presented)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        fields = {
            "id": key_id,
            "tenant": tenant,
            "scopes": " ".join(sorted(wanted)),
            "name": name[:120],
            "created_at": created,
        }
        for limit, value in (
            ("requests_per_minute", limits.requests_per_minute),
            ("concurrent_waits", limits.concurrent_waits),
            ("daily_spend_usd", limits.daily_spend_usd),
        ):
            if value is not None:
                fields[limit] = str(value)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._record(digest), items=[part for pair in fields.items() for part in pair])
            pipe.hset(self.INDEX, key_id, digest)
            await pipe.execute()
        return presented, _from_fields(fields)

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The key's record, or None for a malformed, unknown or revoked key."""
        if not self.well_formed(presented):
            return None
        digest = self.digest(presented)
        fields: dict[str, str] = await self.redis.hgetall(self._record(digest))  # type: ignore[assignment]
        if not fields:
            return None
        key = _from_fields(fields)
        # The id inside the key must be the stored one: a record is never found by another key.
        match = _KEY.match(presented)
        if match is None or match.group("id") != key.id:
            return None
        await self._note_use(digest, key.id)
        return key

    async def _note_use(self, digest: str, key_id: str) -> None:
        now = time.monotonic()
        if now - self._last_use_written.get(key_id, -LAST_USE_EVERY_SECONDS) < LAST_USE_EVERY_SECONDS:
            return
        self._last_use_written[key_id] = now
        # Only while the record exists: a revoked key must not come back as a stub.
        await self._touch(
            keys=[self._record(digest)], args=[dt.datetime.now(dt.UTC).isoformat(timespec="seconds")]
        )

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        index: dict[str, str] = await self.redis.hgetall(self.INDEX)  # type: ignore[assignment]
        if not index:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for digest in index.values():
            pipe.hgetall(self._record(digest))
        keys = [_from_fields(f) for f in await pipe.execute() if f]
        return sorted(
            (k for k in keys if tenant is None or k.tenant == tenant), key=lambda k: (k.tenant, k.created_at)
        )

    async def revoke(self, key_id: str) -> bool:
        """Revoke at once: the next request with the key is refused. False when no such key."""
        digest = await self.redis.hget(self.INDEX, key_id)
        if digest is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._record(str(digest)))
            pipe.hdel(self.INDEX, key_id)
            await pipe.execute()
        return True


def _from_fields(fields: dict[str, str]) -> ApiKey:
    def number(name: str) -> float | None:
        value = fields.get(name)
        return float(value) if value not in (None, "") else None

    rpm, waits = number("requests_per_minute"), number("concurrent_waits")
    return ApiKey(
        id=fields["id"],
        tenant=fields["tenant"],
        scopes=frozenset(fields.get("scopes", "").split()),
        name=fields.get("name", ""),
        limits=KeyLimits(
            requests_per_minute=int(rpm) if rpm is not None else None,
            concurrent_waits=int(waits) if waits is not None else None,
            daily_spend_usd=number("daily_spend_usd"),
        ),
        created_at=fields.get("created_at", ""),
        last_used_at=fields.get("last_used_at"),
    )
