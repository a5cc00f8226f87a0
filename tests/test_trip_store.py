"""The trip store's compare-and-set (`TripStore.update`): a change starts from the document this
process last saw and is stored only if that is still the stored one; otherwise it runs again on
what the other writer stored. A refusal on an out-of-date document is not taken for an answer, a
script whose answer was lost finds its own write instead of applying the change twice, and a
step's checkpoint is stored with the change or not at all."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from tests.conftest import BACKENDS
from tests.helpers import new_trip
from tests.redisproxy import RedisProxy
from tests.support import RedisServer, redis_client
from waypoint_common.connections import RedisClient, connect_redis
from waypoint_orchestrator import states
from waypoint_orchestrator.models import Trip
from waypoint_orchestrator.store import _APPEND, TransitionRefused, TripStore


def warn(text: str, runs: list[str] | None = None) -> Callable[[Trip], list[states.Event]]:
    """A change that adds a warning (and notes each run)."""

    def change(t: Trip) -> list[states.Event]:
        if runs is not None:
            runs.append(text)
        t.warnings.append(text)
        return [("trip.warning", {"text": text})]

    return change


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_change_runs_again_on_what_another_process_wrote(redis: RedisClient) -> None:
    mine, theirs = TripStore(redis), TripStore(redis)  # two processes' stores
    trip = new_trip()
    assert await mine.create(trip, ("trip.accepted", {})) == "created"
    await theirs.get(trip.id)  # both have seen the trip as created

    await mine.update(trip.id, warn("first"))
    runs: list[str] = []
    after = await theirs.update(trip.id, warn("second", runs))  # from an out-of-date document

    assert runs == ["second", "second"]  # once on what it had seen, once on what is stored
    assert after.warnings == ["first", "second"]
    assert (await mine.get(trip.id)).warnings == ["first", "second"]
    assert [e.type for e in await mine.events(trip.id)] == ["trip.accepted", "trip.warning", "trip.warning"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_refusal_on_an_out_of_date_document_is_tried_on_the_stored_one(redis: RedisClient) -> None:
    mine, theirs = TripStore(redis), TripStore(redis)
    trip = new_trip()
    assert await mine.create(trip, ("trip.accepted", {})) == "created"
    await theirs.get(trip.id)
    await mine.update(trip.id, lambda t: states.move(t, "running"))

    seen: list[str] = []

    def finish(t: Trip) -> list[states.Event]:
        seen.append(t.status)
        if t.status != "running":
            raise TransitionRefused(t.status)
        return states.settle(t, "planned", "done")

    assert (await theirs.update(trip.id, finish)).status == "planned"
    assert seen == ["queued", "running"]
    # A refusal on the stored document stands (and it was read to be sure).
    seen.clear()
    with pytest.raises(TransitionRefused):
        await mine.update(trip.id, finish)
    assert seen == ["running", "planned"]
    assert (await mine.get(trip.id)).status == "planned"


async def test_an_update_whose_answer_was_lost_is_stored_once(redis_server: RedisServer) -> None:
    """The script ran, its answer was lost, redis-py sent it again: the second run finds the
    document it would store already stored, and the change is not applied a second time."""
    proxy = RedisProxy(redis_server.port)
    client = connect_redis(proxy.url)
    direct = redis_client(redis_server.url)
    try:
        store = TripStore(client)
        trip = new_trip()
        assert await store.create(trip, ("trip.accepted", {})) == "created"
        await store.emit(trip.id, "trip.note", {})  # the script is loaded: the next call is an EVALSHA
        sha = hashlib.sha1(_APPEND.encode()).hexdigest().encode()
        fired = proxy.trap(b"EVALSHA", sha, b"trip.warning", when="after", outage=0)

        runs: list[str] = []
        stored = await store.update(trip.id, warn("once", runs))

        assert fired.is_set()
        assert runs == ["once"]
        assert stored.warnings == ["once"]
        reread = await TripStore(direct).get(trip.id)
        assert reread.warnings == ["once"]
        kinds = [e.type for e in await TripStore(direct).events(trip.id)]
        assert kinds == ["trip.accepted", "trip.note", "trip.warning"]
    finally:
        await client.aclose()
        await direct.aclose()
        proxy.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_checkpoint_is_stored_with_its_change_or_not_at_all(redis: RedisClient) -> None:
    store = TripStore(redis)
    trip = new_trip()
    assert await store.create(trip, ("trip.accepted", {})) == "created"

    await store.update(
        trip.id, lambda t: states.move(t, "running"), checkpoint=("search_flights", [{"offer": 1}])
    )
    assert await store.results(trip.id) == {"search_flights": [{"offer": 1}]}

    def refuse(t: Trip) -> list[states.Event]:
        raise TransitionRefused(t.status)

    with pytest.raises(TransitionRefused):
        await store.update(trip.id, refuse, checkpoint=("choose", {"total": 1}))
    assert await store.results(trip.id) == {"search_flights": [{"offer": 1}]}
