"""The booking side of a tool server: ids, exactly-once writes and cancels, as MCP tool errors.

Each server keeps one `BookingLedger` per kind of inventory item (a flight offer, a hotel,
a restaurant). A booking id carries the item it belongs to (`FB-<hash>-<offer id>`), so any
replica can find the booking's hash-tagged keys from the id alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from redis.asyncio import Redis

from waypoint_common.idempotency import IdempotentWriteStore, WriteRefused, derived_id


class BookingLedger:
    """Bookings against one kind of item, e.g. `BookingLedger(redis, "flights", "flight", "FB")`."""

    def __init__(
        self, redis: Redis, service: str, kind: str, prefix: str, *, id_field: str = "booking_id"
    ) -> None:
        self.store = IdempotentWriteStore(redis, service)
        self.kind = kind
        self.prefix = prefix
        self.id_field = id_field
        self._pattern = re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{10}}-(.+)$")

    def tag(self, item_id: str) -> str:
        return f"{self.kind}:{item_id}"

    def booking_id(self, request_id: str, item_id: str) -> str:
        """The id a request's booking gets: the same for every replay of that request."""
        return f"{derived_id(self.prefix, request_id)}-{item_id}"

    def item_of(self, booking_id: str) -> str:
        match = self._pattern.match(booking_id)
        if match is None:
            raise ToolError(f"{self.id_field}: unknown booking {booking_id!r}")
        return match.group(1)

    async def remaining(self, counters: Sequence[tuple[str, str, int]]) -> list[int]:
        """Capacity left on each `(item id, counter, initial capacity)`, in one round trip."""
        return await self.store.remaining(
            [(self.tag(item), counter, initial) for item, counter, initial in counters]
        )

    async def book(
        self,
        *,
        tool: str,
        arguments: Mapping[str, Any],
        request_id: str,
        item_id: str,
        booking: Mapping[str, Any],
        counters: Sequence[str],
        amount: int,
        initial: int,
        item_field: str,
    ) -> dict[str, Any]:
        """Commit the booking exactly once; returns the booking as first stored."""
        try:
            outcome = await self.store.commit(
                tool=tool,
                arguments=arguments,
                request_id=request_id,
                tag=self.tag(item_id),
                booking_id=str(booking[self.id_field]),
                booking=booking,
                counters=counters,
                amount=amount,
                initial=initial,
                sold_out_field=item_field,
            )
        except WriteRefused as exc:
            raise ToolError(str(exc)) from None
        return outcome.result

    async def get(self, booking_id: str) -> dict[str, Any]:
        booking = await self.store.get(self.tag(self.item_of(booking_id)), booking_id)
        if booking is None:
            raise ToolError(f"{self.id_field}: unknown booking {booking_id!r}")
        return booking

    async def cancel(
        self, *, tool: str, booking_id: str, request_id: str, counters: Sequence[str], amount: int
    ) -> dict[str, Any]:
        """Cancel and give the capacity back, exactly once however often it is asked."""
        try:
            outcome = await self.store.release(
                tool=tool,
                arguments={self.id_field: booking_id},
                request_id=request_id,
                tag=self.tag(self.item_of(booking_id)),
                booking_id=booking_id,
                counters=counters,
                amount=amount,
            )
        except WriteRefused as exc:
            if exc.field == "booking_id":
                raise ToolError(f"{self.id_field}: unknown booking {booking_id!r}") from None
            raise ToolError(str(exc)) from None
        return outcome.result
