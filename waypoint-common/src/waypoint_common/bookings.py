"""The booking side of a tool server: ids, owners, exactly-once writes and cancels, as MCP tool errors.

Each server keeps one `BookingLedger` per kind of inventory item (a flight offer, a hotel,
a restaurant). A booking id is random (`FB-<32 hex>-<offer id>`): unguessable, made on the
first write and returned unchanged by every replay of it. It carries the item it belongs to,
so any replica can find the booking's hash-tagged keys from the id alone.

Every booking belongs to an owner: the tenant the orchestrator names in the MCP request's
`_meta` under `OWNER_META_KEY` (never a tool argument, so a model choosing arguments can never
name another owner). A write without one is refused; getting or cancelling a booking that is
not the caller's own answers exactly like an unknown booking id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from waypoint_common.connections import RedisClient
from waypoint_common.idempotency import IdempotentWriteStore, WriteRefused, random_id

OWNER_META_KEY = "waypoint/owner"
MAX_OWNER_LENGTH = 128
ID_HEX_LENGTH = 32


def _valid_owner(value: object) -> str | None:
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_OWNER_LENGTH
        and value.isprintable()
        and value.strip() == value
    ):
        return value
    return None


def request_owner(ctx: Context[Any, Any]) -> str | None:
    """The owner named in the request's `_meta`, or None when absent or malformed."""
    meta = ctx.request_context.meta
    return _valid_owner(meta.get(OWNER_META_KEY)) if meta else None


def writing_owner(ctx: Context[Any, Any]) -> str:
    """The owner a write is made for; refuses the write (naming `owner`) when there is none."""
    meta = ctx.request_context.meta
    raw = meta.get(OWNER_META_KEY) if meta else None
    if raw is None:
        raise ToolError(
            f"owner: a write needs the booking's owner (the tenant), which the caller names in the "
            f"request's _meta under {OWNER_META_KEY!r}, not as an argument"
        )
    owner = _valid_owner(raw)
    if owner is None:
        raise ToolError(
            f"owner: _meta {OWNER_META_KEY!r} must be a string of 1-{MAX_OWNER_LENGTH} printable "
            "characters without surrounding spaces"
        )
    return owner


class BookingLedger:
    """Bookings against one kind of item, e.g. `BookingLedger(redis, "flights", "flight", "FB")`."""

    def __init__(
        self, redis: RedisClient, service: str, kind: str, prefix: str, *, id_field: str = "booking_id"
    ) -> None:
        self.store = IdempotentWriteStore(redis, service)
        self.kind = kind
        self.prefix = prefix
        self.id_field = id_field
        self._pattern = re.compile(rf"^{re.escape(prefix)}-[0-9a-f]{{{ID_HEX_LENGTH}}}-(.+)$")

    def tag(self, item_id: str) -> str:
        return f"{self.kind}:{item_id}"

    def new_booking_id(self, item_id: str) -> str:
        """A fresh, unguessable id; a replay gets the id its first write stored instead."""
        return f"{random_id(self.prefix, ID_HEX_LENGTH // 2)}-{item_id}"

    def unknown(self, booking_id: str) -> ToolError:
        """The one answer for a booking id that is malformed, unknown or someone else's."""
        return ToolError(f"{self.id_field}: unknown booking {booking_id!r}")

    def item_of(self, booking_id: str) -> str:
        match = self._pattern.match(booking_id)
        if match is None:
            raise self.unknown(booking_id)
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
        owner: str,
        request_id: str,
        item_id: str,
        booking: Mapping[str, Any],
        counters: Sequence[str],
        amount: int,
        initial: int,
        item_field: str,
    ) -> dict[str, Any]:
        """Commit the booking for `owner` exactly once; returns the booking as first stored."""
        try:
            stored = await self.store.commit(
                tool=tool,
                arguments=arguments,
                owner=owner,
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
        return stored

    async def get(self, booking_id: str, owner: str | None) -> dict[str, Any]:
        """`owner`'s booking; anyone else's, or any without an owner, is an unknown booking."""
        tag = self.tag(self.item_of(booking_id))
        booking = None if owner is None else await self.store.get(tag, booking_id, owner)
        if booking is None:
            raise self.unknown(booking_id)
        return booking

    async def lookup(
        self, booking_id: str | None, request_id: str | None, owner: str | None
    ) -> dict[str, Any]:
        """A get tool's answer: the booking named by its id, or by the request id that made it."""
        if (booking_id is None) == (request_id is None):
            raise ToolError(f"{self.id_field}: give either {self.id_field} or request_id (one of them)")
        if booking_id is not None:
            return await self.get(booking_id, owner)
        assert request_id is not None
        return await self.find(request_id, owner)

    async def find(self, request_id: str, owner: str | None) -> dict[str, Any]:
        """`owner`'s booking made by the write with `request_id` (read only): how a caller whose
        answer was lost learns the outcome without writing again."""
        booking = None if owner is None else await self.store.find(request_id, owner)
        if booking is None:
            raise ToolError(f"request_id: no booking was made with request id {request_id!r}")
        return booking

    async def cancel(
        self,
        *,
        tool: str,
        booking_id: str,
        owner: str | None,
        request_id: str,
        counters: Sequence[str],
        amount: int,
    ) -> dict[str, Any]:
        """Cancel `owner`'s booking and give the capacity back, exactly once however often asked."""
        if owner is None:
            raise self.unknown(booking_id)
        try:
            stored = await self.store.release(
                tool=tool,
                arguments={self.id_field: booking_id},
                owner=owner,
                request_id=request_id,
                tag=self.tag(self.item_of(booking_id)),
                booking_id=booking_id,
                counters=counters,
                amount=amount,
            )
        except WriteRefused as exc:
            if exc.field == "booking_id":
                raise self.unknown(booking_id) from None
            raise ToolError(str(exc)) from None
        return stored
