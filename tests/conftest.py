"""Suite-wide fixtures: a real redis-server and the real tool-server processes, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support import RedisServer, ServiceProcess, orchestrator_env

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def _spawn(command: str, redis_server: RedisServer, log_dir: Path, **env: str) -> ServiceProcess:
    return ServiceProcess.spawn(command, {"REDIS_URL": redis_server.url, **env}, log_dir)


def _ready(*services: ServiceProcess) -> None:
    for service in services:
        service.wait_ready()


@pytest.fixture(scope="session")
def servers(redis_server: RedisServer, log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    """One process of each tool server, sharing the test Redis."""
    started = {name: _spawn(name, redis_server, log_dir) for name in TOOL_SERVERS}
    _ready(*started.values())
    yield started
    for service in started.values():
        service.stop()


@pytest.fixture(scope="session")
def replicas(
    redis_server: RedisServer, log_dir: Path
) -> Iterator[dict[str, tuple[ServiceProcess, ServiceProcess]]]:
    """Two more processes of each writing tool server: replicas sharing the same Redis."""
    started = {
        name: (_spawn(name, redis_server, log_dir), _spawn(name, redis_server, log_dir))
        for name in ("mcp-flights", "mcp-hotels", "mcp-restaurants")
    }
    _ready(*(s for pair in started.values() for s in pair))
    yield started
    for pair in started.values():
        for service in pair:
            service.stop()


@pytest.fixture
def faulty_flights(redis_server: RedisServer, log_dir: Path) -> Iterator[ServiceProcess]:
    """A flights replica of its own, whose fault plan a test may change freely."""
    service = _spawn("mcp-flights", redis_server, log_dir, WAYPOINT_FAULT_SEED="7")
    _ready(service)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def orchestrator(
    redis_server: RedisServer, servers: dict[str, ServiceProcess], log_dir: Path
) -> Iterator[ServiceProcess]:
    """The trip API with its workers, on the suite's tool servers and Redis."""
    service = ServiceProcess.start(
        "waypoint-orchestrator", orchestrator_env(redis_server.url, servers), log_dir
    )
    yield service
    service.stop()
