"""Hard per-trip budgets, charged atomically in Redis before each step and each tool call.

A charge carries an id (the step, or the step and attempt): charging the same id twice, as a
retried or resumed step would, counts once. The check and the increment are one Lua script, so
any number of workers charging one trip can never take it past its limits.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Literal

from cachetools import LRUCache

from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_common.errors import FinalError
from waypoint_orchestrator.models import Limits, TripUsage, Used
from waypoint_orchestrator.store import TRIP_TTL_SECONDS

Counted = Literal["steps", "tool_calls", "tokens"]
BudgetName = Literal["steps", "tool_calls", "tokens", "wall_time"]
# How many trips' deadlines a ledger remembers.
DEADLINES_REMEMBERED = 4096

_CHARGE = """
local enforce = ARGV[6] == '1'
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
if enforce and deadline and tonumber(ARGV[5]) > deadline then return {-1, 0, 0} end
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit:' .. ARGV[1]))
local used = tonumber(redis.call('HGET', KEYS[1], 'used:' .. ARGV[1]) or '0')
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return {1, used, limit or -1} end
local amount = tonumber(ARGV[2])
if enforce and limit and used + amount > limit then return {0, used, limit} end
redis.call('HINCRBY', KEYS[1], 'used:' .. ARGV[1], amount)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, used + amount, limit or -1}
"""

# Settle a model call's token reservation with what the endpoint reported (once per settle id).
_SETTLE = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'used:tokens', tonumber(ARGV[3]) - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'used:cost_microusd', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


class BudgetExhausted(FinalError):
    """A trip's budget is spent; `budget` names it."""

    def __init__(self, budget: BudgetName, used: float, limit: float) -> None:
        super().__init__(f"budget exhausted: {budget} ({used:g} of {limit:g} used)")
        self.budget = budget
        self.used = used
        self.limit = limit


class BudgetLedger:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._charge = redis.register_script(_CHARGE)
        self._settle = redis.register_script(_SETTLE)
        # Trips' deadlines as read (the most recently used trips'): once opened, a trip's
        # deadline never changes.
        self._deadlines: LRUCache[str, float] = LRUCache(maxsize=DEADLINES_REMEMBERED)

    @staticmethod
    def _keys(trip_id: str) -> list[str]:
        return [keys.trip_budget(trip_id), keys.trip_charges(trip_id)]

    async def open(self, trip_id: str, limits: Limits) -> None:
        """Set the trip's limits and its deadline, once (a resumed trip keeps the first ones)."""
        key = self._keys(trip_id)[0]
        async with self.redis.pipeline(transaction=True) as pipe:
            for field, value in (
                ("limit:steps", limits.max_steps),
                ("limit:tool_calls", limits.max_tool_calls),
                ("limit:tokens", limits.max_tokens),
                ("limit:wall_seconds", limits.max_wall_seconds),
                ("deadline", time.time() + limits.max_wall_seconds),
            ):
                pipe.hsetnx(key, field, value)
            pipe.expire(key, TRIP_TTL_SECONDS)
            pipe.hget(key, "deadline")  # this one's, or the first one's
            *_, deadline = await pipe.execute()
        self._deadlines[trip_id] = float(deadline)

    async def charge(
        self, trip_id: str, budget: Counted, amount: int, charge_id: str, *, enforce: bool = True
    ) -> None:
        """Take `amount` from the budget, or raise `BudgetExhausted`; a repeated `charge_id` is free.

        `enforce=False` counts the use without refusing it, past the limit or the deadline: for
        the work that undoes or checks bookings, which a spent budget must not stop.
        """
        ok, used, limit = await self._charge(
            keys=self._keys(trip_id),
            args=[budget, amount, charge_id, TRIP_TTL_SECONDS, time.time(), "1" if enforce else "0"],
        )
        if int(ok) == -1:
            await self.check_deadline(trip_id)
        if int(ok) != 1:
            raise BudgetExhausted(budget, float(used), float(limit))

    async def settle_tokens(
        self, trip_id: str, settle_id: str, *, reserved: int, used: int, cost_usd: float
    ) -> None:
        """Replace a model call's token reservation (charged before the call, its worst case) by
        what the call used, and add its cost; a repeated `settle_id` changes nothing."""
        await self._settle(
            keys=self._keys(trip_id),
            args=[settle_id, reserved, used, round(cost_usd * 1_000_000), TRIP_TTL_SECONDS],
        )

    async def check_deadline(self, trip_id: str) -> None:
        raw = await self.redis.hmget(self._keys(trip_id)[0], ["deadline", "limit:wall_seconds"])
        deadline, limit = raw
        if deadline is not None and time.time() > float(deadline):
            raise BudgetExhausted("wall_time", float(limit or 0), float(limit or 0))

    async def deadline(self, trip_id: str) -> float | None:
        """The trip's deadline (a Unix time), None before its budgets are opened. Read once per
        trip and process (or learnt when opening them), and remembered (a few thousand trips')."""
        known = self._deadlines.get(trip_id)
        if known is not None:
            return known
        raw = await self.redis.hget(self._keys(trip_id)[0], "deadline")
        if raw is None:
            return None
        self._deadlines[trip_id] = float(raw)
        return float(raw)

    async def usage(self, trip_id: str) -> TripUsage | None:
        """The trip's limits, use and deadline; None before its budgets are opened (or after they expired)."""
        raw: dict[str, str] = await self.redis.hgetall(self._keys(trip_id)[0])  # type: ignore[assignment]
        if "deadline" not in raw:
            return None
        return TripUsage(
            limits=Limits(
                max_steps=int(raw["limit:steps"]),
                max_tool_calls=int(raw["limit:tool_calls"]),
                max_tokens=int(raw["limit:tokens"]),
                max_wall_seconds=float(raw["limit:wall_seconds"]),
            ),
            used=Used(
                steps=int(raw.get("used:steps", 0)),
                tool_calls=int(raw.get("used:tool_calls", 0)),
                tokens=int(raw.get("used:tokens", 0)),
                cost_usd=int(raw.get("used:cost_microusd", 0)) / 1_000_000,
            ),
            deadline=dt.datetime.fromtimestamp(float(raw["deadline"]), dt.UTC),
        )


class UncountedLedger(BudgetLedger):
    """Budgets switched off (`WAYPOINT_BUDGETS_ENABLED=false`), for measuring what they cost only:
    nothing is opened, charged or enforced in Redis, and a trip shows no usage. Never in
    production (the orchestrator refuses to start so there)."""

    async def open(self, trip_id: str, limits: Limits) -> None:
        return None

    async def charge(
        self, trip_id: str, budget: Counted, amount: int, charge_id: str, *, enforce: bool = True
    ) -> None:
        return None

    async def settle_tokens(
        self, trip_id: str, settle_id: str, *, reserved: int, used: int, cost_usd: float
    ) -> None:
        return None

    async def check_deadline(self, trip_id: str) -> None:
        return None

    async def deadline(self, trip_id: str) -> float | None:
        return None

    async def usage(self, trip_id: str) -> TripUsage | None:
        return None
