"""Suite-wide fixtures: a real redis-server and the real tool-server processes, on free ports.

A test can also run on a real three-master Redis Cluster: parametrize `backend` indirectly,
`@pytest.mark.parametrize("backend", BACKENDS, indirect=True)`, and take `redis`, `redis_url`,
`tool_servers`, `tool_replicas` or `trip_api`: each is the single-node one or the cluster one,
whichever the parameter names (the cluster and its processes start once, when first asked for).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import (
    Harness,
    RedisClusterServers,
    RedisServer,
    ServiceProcess,
    orchestrator_env,
    redis_client,
)
from waypoint_common.connections import RedisClient

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")
BACKENDS = ("single", "cluster")


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


@pytest.fixture(scope="session")
def redis_cluster(harness: Harness) -> RedisClusterServers:
    """A Redis Cluster of three masters (no replicas), every slot covered."""
    return harness.redis_cluster()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The Redis a test runs on: `single` (the suite's redis-server) unless the test is
    parametrized with `cluster` (`redis_cluster`)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The services' `REDIS_URL` for the test's backend."""
    if backend == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = redis_client(redis_url)
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


# -- the same on the Redis Cluster, and the fixtures that pick by `backend` --------------------


@pytest.fixture(scope="session")
def cluster_servers(
    harness: Harness, redis_cluster: RedisClusterServers
) -> Iterator[dict[str, ServiceProcess]]:
    """One process of each tool server, on the Redis Cluster."""
    started = {name: harness.spawn(name, {"REDIS_URL": redis_cluster.url}) for name in TOOL_SERVERS}
    with running(harness, *started.values()):
        yield started


@pytest.fixture(scope="session")
def cluster_replicas(
    harness: Harness, redis_cluster: RedisClusterServers
) -> Iterator[dict[str, tuple[ServiceProcess, ServiceProcess]]]:
    """Two more processes of each writing tool server, on the Redis Cluster."""
    env = {"REDIS_URL": redis_cluster.url}
    started = {
        name: (harness.spawn(name, env), harness.spawn(name, env))
        for name in ("mcp-flights", "mcp-hotels", "mcp-restaurants")
    }
    with running(harness, *(s for pair in started.values() for s in pair)):
        yield started


@pytest.fixture(scope="session")
def cluster_orchestrator(
    harness: Harness, redis_cluster: RedisClusterServers, cluster_servers: dict[str, ServiceProcess]
) -> Iterator[ServiceProcess]:
    """The trip API with its workers, on the Redis Cluster and its tool servers."""
    service = harness.spawn("waypoint-orchestrator", orchestrator_env(redis_cluster.url, cluster_servers))
    with running(harness, service):
        yield service


@pytest.fixture
def tool_servers(backend: str, request: pytest.FixtureRequest) -> dict[str, ServiceProcess]:
    """`servers` or `cluster_servers`, by the test's backend."""
    chosen: dict[str, ServiceProcess] = request.getfixturevalue(
        "cluster_servers" if backend == "cluster" else "servers"
    )
    return chosen


@pytest.fixture
def tool_replicas(
    backend: str, request: pytest.FixtureRequest
) -> dict[str, tuple[ServiceProcess, ServiceProcess]]:
    """`replicas` or `cluster_replicas`, by the test's backend."""
    chosen: dict[str, tuple[ServiceProcess, ServiceProcess]] = request.getfixturevalue(
        "cluster_replicas" if backend == "cluster" else "replicas"
    )
    return chosen


@pytest.fixture
def trip_api(backend: str, request: pytest.FixtureRequest) -> ServiceProcess:
    """`orchestrator` or `cluster_orchestrator`, by the test's backend."""
    chosen: ServiceProcess = request.getfixturevalue(
        "cluster_orchestrator" if backend == "cluster" else "orchestrator"
    )
    return chosen
