"""Fan-out of trip events to the requests waiting for them, one Redis reader per process.

`TripStore` PUBLISHes a trip's id (and the status it has after the change) on `CHANNEL` in the
same script that appends the trip's events. Each orchestrator process runs one `EventHub`: a
single subscriber on a connection of its own (not from the shared pool) that wakes the local
waiters of that trip. A waiter (an SSE stream, a `Prefer: wait` request) then reads what is new
with a quick non-blocking XRANGE or GET (a `Prefer: wait` request only once the published status
is one it waits for): a pooled connection is held for milliseconds, never while waiting.

Pub/sub is "at most once": a message sent while the subscriber reconnects is lost. So a lost
notification may only delay a waiter, never lose an event: every waiter also looks again on a
timer (`recheck_seconds`), and after every (re)subscription the hub wakes every waiter.

On a Redis Cluster a PUBLISH on any node reaches the subscribers of every node (the cluster bus
carries it), so the hub subscribes on one node the URL lists, the next one after each reconnect:
a node that is down costs one reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.asyncio import Redis

from waypoint_common import keys
from waypoint_common.connections import REDIS_UNAVAILABLE, cluster_url

log = logging.getLogger(__name__)

CHANNEL = keys.TRIP_EVENTS_CHANNEL


class Subscription:
    """One waiter's interest in one trip: `wait` returns when the trip may have changed."""

    def __init__(self, hub: EventHub, trip_id: str) -> None:
        self.hub = hub
        self.trip_id = trip_id
        # The trip's status as last published (`TripStore` publishes it with every change);
        # None while no status has come, or when notifications may have been lost.
        self.status: str | None = None
        self._changed = asyncio.Event()

    def notify(self, status: str | None = None) -> None:
        """Events were appended to the trip; `status` is its status after them when one was
        published (None when the events changed no state)."""
        if status is not None:
            self.status = status
        self._changed.set()

    def forget(self) -> None:
        """Notifications may have been lost: the trip's status is unknown until it is read."""
        self.status = None
        self._changed.set()

    def clear(self) -> None:
        """Forget earlier notifications: call before reading, so none that comes after is missed."""
        self._changed.clear()

    async def wait(self, at_most: float | None = None) -> bool:
        """Until a notification (True), the re-check timer or `at_most` seconds (False), whichever
        is first. The timer has a little jitter, so that many waiters do not all read at once."""
        period = self.hub.recheck_seconds * random.uniform(0.8, 1.0)
        limit = period if at_most is None else max(0.0, min(at_most, period))
        try:
            await asyncio.wait_for(self._changed.wait(), limit)
        except TimeoutError:
            return False
        return True


class EventHub:
    """The process's one subscriber to `CHANNEL`, waking local `Subscription`s by trip id."""

    def __init__(self, url: str, *, recheck_seconds: float = 5.0, channel: str = CHANNEL) -> None:
        self.url = url
        self.channel = channel
        self.recheck_seconds = recheck_seconds
        self.connected = asyncio.Event()
        self._waiters: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._subscribed = False
        # Where the subscriber connects: the one Redis, or each listed cluster node in turn.
        cluster = cluster_url(url)
        self._nodes = cluster.node_urls() if cluster is not None else [url]
        self._connections = random.randrange(len(self._nodes))  # processes spread over the nodes

    # -- waiters ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, trip_id: str) -> AsyncIterator[Subscription]:
        """Register a waiter for the trip for the duration of the block (removed however it ends)."""
        sub = Subscription(self, trip_id)
        self._waiters.setdefault(trip_id, set()).add(sub)
        try:
            yield sub
        finally:
            waiters = self._waiters.get(trip_id)
            if waiters is not None:
                waiters.discard(sub)
                if not waiters:
                    del self._waiters[trip_id]

    @property
    def waiting(self) -> int:
        """How many waiters are registered in this process."""
        return sum(len(w) for w in self._waiters.values())

    def notify(self, message: str) -> None:
        """Wake the waiters of the trip a message on `CHANNEL` names: `<trip id> [<status>]`."""
        trip_id, _, status = message.partition(" ")
        for sub in self._waiters.get(trip_id, ()):
            sub.notify(status or None)

    def notify_all(self) -> None:
        for waiters in self._waiters.values():
            for sub in waiters:
                sub.forget()

    # -- the subscriber ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.connected.clear()
        self.notify_all()

    async def _run(self) -> None:
        # The subscription's own reads are not worth a trace each (one per message or second).
        with suppress_instrumentation():
            backoff = 0.1
            while not self._closing:
                self._subscribed = False
                try:
                    await self._listen()
                except asyncio.CancelledError:
                    raise
                except REDIS_UNAVAILABLE as exc:
                    log.warning("trip event subscription lost (%r); reconnecting", exc)
                except Exception:
                    log.exception("trip event subscription failed; reconnecting")
                self.connected.clear()
                # Whatever was published meanwhile is lost: let every waiter look for itself.
                self.notify_all()
                backoff = 0.1 if self._subscribed else min(backoff * 2, 5.0)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _listen(self) -> None:
        # A client of its own with one connection: the subscriber never takes a pooled one.
        node = self._nodes[self._connections % len(self._nodes)]
        self._connections += 1
        client: Redis = Redis.from_url(
            node,
            decode_responses=True,
            max_connections=1,
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=10,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._subscribed = True
            self.connected.set()
            self.notify_all()  # anything published before the subscription took effect
            while True:
                message: Any = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self.notify(str(message["data"]))
        finally:
            self.connected.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            with contextlib.suppress(Exception):
                await client.aclose()
