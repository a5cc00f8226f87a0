"""Client-side balancing: one tool server name, several replicas, every one of them used.

Three real flights servers listen on the same port of three loopback addresses (127.0.0.2-4),
all answering to the name `mcp-flights`. The name resolves through a hosts file the test edits
(`WAYPOINT_TOOL_HOSTS_FILE`), as DNS would change when replicas come and go."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support import SERVICE_TOKEN, Harness, RedisServer, ServiceProcess, free_port
from waypoint_orchestrator.agents import FlightsAgent
from waypoint_orchestrator.agents.base import CallContext, RetrySettings
from waypoint_orchestrator.models import PlaceRef, ResolvedTrip
from waypoint_orchestrator.replicas import Resolver
from waypoint_orchestrator.toolclient import ToolClient

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
DEAD = "127.0.0.5"
ORD = PlaceRef(code="ORD", city="Chicago", country="US", lat=41.98, lon=-87.9, tz="America/Chicago")
MIA = PlaceRef(code="MIA", city="Miami", country="US", lat=25.79, lon=-80.29, tz="America/New_York")


@pytest.fixture(scope="module")
def replicas(harness: Harness, redis_server: RedisServer) -> Iterator[dict[str, ServiceProcess]]:
    port = free_port()
    # The name the orchestrator sends (`Host: mcp-flights:<port>`), and each address for /admin.
    allowed = ",".join([f"mcp-flights:{port}", *(f"{a}:{port}" for a in ADDRESSES)])
    env = {"REDIS_URL": redis_server.url, "WAYPOINT_ALLOWED_HOSTS": allowed}
    started = {
        address: harness.spawn("mcp-flights", {**env, "WAYPOINT_HOST": address}, port=port)
        for address in ADDRESSES
    }
    harness.wait_ready(*started.values())
    yield started
    for service in started.values():
        service.stop()


def hosts(path: Path, *addresses: str) -> None:
    path.write_text("".join(f"{a} mcp-flights\n" for a in addresses))


def trip(offset: int) -> ResolvedTrip:
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)
    return ResolvedTrip(
        kind="flights_only", origin=ORD, destination=MIA, start_date=start, end_date=start, travelers=1
    )


def served(replicas: dict[str, ServiceProcess]) -> dict[str, int]:
    return {
        address: int(service.admin("GET", "/admin/stats")["calls"].get("search_flights", 0))
        for address, service in replicas.items()
        if service.proc.poll() is None
    }


async def searches(agent: FlightsAgent, n: int, concurrency: int = 8) -> list[BaseException | None]:
    """`n` searches (different days, so no cache answers), `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> BaseException | None:
        async with gate:
            try:
                await agent.search(trip(20 + i % 200), CallContext(trip_id=f"t{i}", step_id="search_flights"))
            except Exception as exc:
                return exc
            return None

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def client(port: int, hosts_file: Path) -> ToolClient:
    return ToolClient(
        "mcp-flights",
        f"http://mcp-flights:{port}/mcp",
        token=SecretStr(SERVICE_TOKEN),
        resolver=Resolver(hosts_file),
        resolve_every=0.5,
        eject_for=30,
    )


async def test_calls_spread_over_every_replica_and_follow_the_name(
    replicas: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    port = next(iter(replicas.values())).port
    hosts_file = tmp_path / "hosts"
    hosts(hosts_file, *ADDRESSES[:2])
    tool = client(port, hosts_file)
    agent = FlightsAgent(tool, RetrySettings(attempts=3, initial_wait=0.05, max_wait=0.2))
    try:
        before = served(replicas)
        assert await searches(agent, 60) == [None] * 60
        first = {a: n - before[a] for a, n in served(replicas).items()}
        # Two replicas named: each served at least 20% of the 60; the third got nothing.
        assert first[ADDRESSES[0]] >= 12, first
        assert first[ADDRESSES[1]] >= 12, first
        assert first[ADDRESSES[2]] == 0, first

        # A third replica appears under the name: it gets calls within a resolution period...
        hosts(hosts_file, *ADDRESSES)
        await asyncio.sleep(0.6)  # one resolution period (resolve_every=0.5)
        before = served(replicas)
        assert await searches(agent, 30) == [None] * 30
        assert served(replicas)[ADDRESSES[2]] > before[ADDRESSES[2]]
        # ...and, warmed up, its share of the steady calls.
        before = served(replicas)
        assert await searches(agent, 60) == [None] * 60
        second = {a: n - before[a] for a, n in served(replicas).items()}
        assert all(n >= 12 for n in second.values()), second

        # One is removed from the name: it gets no more calls.
        hosts(hosts_file, *ADDRESSES[1:])
        await asyncio.sleep(0.6)  # one resolution period (resolve_every=0.5)
        before = served(replicas)
        assert await searches(agent, 30) == [None] * 30
        third = {a: n - before[a] for a, n in served(replicas).items()}
        assert third[ADDRESSES[0]] == 0, third
        assert set(tool.replica_calls()) == set(ADDRESSES[1:])
    finally:
        await tool.aclose()


async def test_a_dead_replica_is_ejected_and_its_calls_retried_on_another(
    replicas: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    port = next(iter(replicas.values())).port
    hosts_file = tmp_path / "hosts"
    # A third address is named, but nothing listens there (a replica that died).
    hosts(hosts_file, ADDRESSES[0], ADDRESSES[1], DEAD)
    tool = client(port, hosts_file)
    agent = FlightsAgent(tool, RetrySettings(attempts=3, initial_wait=0.05, max_wait=0.2))
    try:
        before = served(replicas)
        outcomes = await searches(agent, 60)
        after = served(replicas)
        tried = tool.replica_calls()
    finally:
        await tool.aclose()
    assert outcomes == [None] * 60  # every search succeeded: a failed try went to another replica
    live = {a: after[a] - before[a] for a in ADDRESSES[:2]}
    assert sum(live.values()) == 60
    assert all(n >= 12 for n in live.values()), live
    # Ejected after its first failures: the dead one was tried only a few times in all.
    assert 1 <= tried[DEAD] <= 8
    kinds = collections.Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"NoneType": 60}
