"""Suite-wide fixtures: a real redis-server and the real tool-server processes, on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support import Harness, RedisServer, ServiceProcess, orchestrator_env

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def harness(log_dir: Path) -> Iterator[Harness]:
    """Every process the suite-wide fixtures start is recorded here the moment it is spawned and
    stopped when the session ends, however it ends (a failed start, Ctrl-C, SIGTERM included)."""
    with Harness(log_dir) as started:
        yield started


@pytest.fixture(scope="session")
def redis_server(harness: Harness) -> RedisServer:
    return harness.redis()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@contextlib.contextmanager
def running(harness: Harness, *services: ServiceProcess) -> Iterator[None]:
    """Wait for each service to be ready; stop them all on the way out, whichever way that is."""
    try:
        harness.wait_ready(*services)
        yield
    finally:
        for service in services:
            service.stop()


@pytest.fixture(scope="session")
def servers(harness: Harness, redis_server: RedisServer) -> Iterator[dict[str, ServiceProcess]]:
    """One process of each tool server, sharing the test Redis."""
    started = {name: harness.spawn(name, {"REDIS_URL": redis_server.url}) for name in TOOL_SERVERS}
    with running(harness, *started.values()):
        yield started


@pytest.fixture(scope="session")
def replicas(
    harness: Harness, redis_server: RedisServer
) -> Iterator[dict[str, tuple[ServiceProcess, ServiceProcess]]]:
    """Two more processes of each writing tool server: replicas sharing the same Redis."""
    env = {"REDIS_URL": redis_server.url}
    started = {
        name: (harness.spawn(name, env), harness.spawn(name, env))
        for name in ("mcp-flights", "mcp-hotels", "mcp-restaurants")
    }
    with running(harness, *(s for pair in started.values() for s in pair)):
        yield started


@pytest.fixture
def faulty_flights(harness: Harness, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """A flights replica of its own, whose fault plan a test may change freely."""
    service = harness.spawn("mcp-flights", {"REDIS_URL": redis_server.url, "WAYPOINT_FAULT_SEED": "7"})
    with running(harness, service):
        yield service


@pytest.fixture(scope="session")
def orchestrator(
    harness: Harness, redis_server: RedisServer, servers: dict[str, ServiceProcess]
) -> Iterator[ServiceProcess]:
    """The trip API with its workers, on the suite's tool servers and Redis."""
    service = harness.spawn("waypoint-orchestrator", orchestrator_env(redis_server.url, servers))
    with running(harness, service):
        yield service
