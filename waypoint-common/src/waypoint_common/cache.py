"""A short-lived cache of good answers in Redis, for degrading gracefully when a server is down."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson
from redis.exceptions import RedisError

from waypoint_common import keys
from waypoint_common.connections import RedisClient


class ResultCache:
    """Last good answers by call, kept `ttl` seconds; reads and writes never fail the caller."""

    def __init__(self, redis: RedisClient, namespace: str, *, ttl: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl

    def _key(self, name: str, arguments: Mapping[str, Any]) -> str:
        digest = hashlib.sha256(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        return keys.search_cache(self.namespace, name, digest)

    async def put(self, name: str, arguments: Mapping[str, Any], value: Any) -> None:
        try:
            payload = orjson.dumps({"stored_at": time.time(), "value": value})
            await self.redis.set(self._key(name, arguments), payload, ex=max(1, int(self.ttl)))
        except RedisError:
            return

    async def get(self, name: str, arguments: Mapping[str, Any]) -> tuple[Any, float] | None:
        """The cached answer and its age in seconds, or None."""
        try:
            raw = await self.redis.get(self._key(name, arguments))
        except RedisError:
            return None
        if raw is None:
            return None
        entry = orjson.loads(raw)
        return entry["value"], max(0.0, time.time() - float(entry["stored_at"]))
