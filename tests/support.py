"""Helpers for the suite: real processes on free loopback ports, and an MCP client per call site."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp_types import CallToolResult, InputResponses, RequestParamsMeta
from redis.asyncio import Redis

# The process harness lives in bench/ (the benchmarks and the chaos run use it too; bench never
# imports tests); its names are re-exported here for the suite.
from bench.harness import SERVICE_TOKEN as SERVICE_TOKEN
from bench.harness import Harness as Harness
from bench.harness import RedisClusterServers as RedisClusterServers
from bench.harness import RedisServer as RedisServer
from bench.harness import ServiceProcess as ServiceProcess
from bench.harness import free_port as free_port
from bench.harness import wait_until as wait_until
from waypoint_common import keys
from waypoint_common.connections import RedisClient, cluster_url, connect_redis
from waypoint_common.fleet import TOOL_SERVERS, create_api_key

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# The `_meta` key a tool server reads the booking owner (the orchestrator's tenant) from.
OWNER_META_KEY = "waypoint/owner"
TEST_OWNER = "tenant-suite"


@dataclass
class OwnerClient(Client):
    """An MCP `Client` that names a booking owner in every `tools/call`'s `_meta`, as the
    orchestrator does with the trip's tenant."""

    owner: str | None = None

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        read_timeout_seconds: float | None = None,
        progress_callback: ProgressFnT | None = None,
        *,
        input_responses: InputResponses | None = None,
        request_state: str | None = None,
        meta: RequestParamsMeta | None = None,
    ) -> CallToolResult:
        if self.owner is not None:
            meta = cast(RequestParamsMeta, {OWNER_META_KEY: self.owner, **(meta or {})})
        return await super().call_tool(
            name,
            arguments,
            read_timeout_seconds,
            progress_callback,
            input_responses=input_responses,
            request_state=request_state,
            meta=meta,
        )


@contextlib.asynccontextmanager
async def mcp_client(
    url: str,
    *,
    read_timeout: float = 10.0,
    owner: str | None = TEST_OWNER,
    token: str | None = SERVICE_TOKEN,
    mode: Literal["auto", "legacy"] = "auto",
) -> AsyncIterator[OwnerClient]:
    """A pooled MCP client over Streamable HTTP, holding the service token and naming `owner`."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(read_timeout + 5)) as http:
        client = OwnerClient(
            streamable_http_client(url, http_client=http),
            read_timeout_seconds=read_timeout,
            mode=mode,
            owner=owner,
        )
        async with client:
            yield client


def redis_client(url: str) -> RedisClient:
    """A test's own client of the Redis at `url`: a plain one for a single Redis, the services'
    cluster client (`connect_redis`) for a `redis+cluster://` URL."""
    if cluster_url(url) is not None:
        return connect_redis(url)
    return Redis.from_url(url, decode_responses=True)


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call; fails the test with the error text otherwise."""
    if result.is_error:
        texts = [getattr(c, "text", "") for c in result.content]
        raise AssertionError(f"tool error: {' '.join(texts)}")
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return " ".join(getattr(c, "text", "") for c in result.content)


@contextlib.contextmanager
def own_tool_servers(harness: Harness, **env: str) -> Iterator[tuple[RedisServer, dict[str, ServiceProcess]]]:
    """A Redis and the four tool servers of a module's own (the calls they count are that
    module's only), ready; stopped on the way out."""
    redis = harness.redis()
    started = {
        spec.name: harness.spawn(spec.command, {"REDIS_URL": redis.url, **env}) for spec in TOOL_SERVERS
    }
    try:
        harness.wait_ready(*started.values())
        yield redis, started
    finally:
        for service in started.values():
            service.stop()
        redis.stop()


def orchestrator_env(
    redis_url: str, tool_servers: Mapping[str, ServiceProcess], **extra: str
) -> dict[str, str]:
    """Environment for an orchestrator process wired to the given tool servers."""
    return {
        "REDIS_URL": redis_url,
        "MCP_FLIGHTS_URL": tool_servers["mcp-flights"].mcp_url,
        "MCP_HOTELS_URL": tool_servers["mcp-hotels"].mcp_url,
        "MCP_WEATHER_URL": tool_servers["mcp-weather"].mcp_url,
        "MCP_RESTAURANTS_URL": tool_servers["mcp-restaurants"].mcp_url,
        "WAYPOINT_WORKERS": "4",
        "WAYPOINT_TOOL_TIMEOUT_SECONDS": "5",
        "WAYPOINT_RETRY_MAX_WAIT_SECONDS": "0.2",
        # Tests inject permanent failures one after another; breakers have a test of their own.
        "WAYPOINT_BREAKER_FAILURES": "1000",
        **extra,
    }


@dataclass
class SseEvent:
    id: str
    event: str
    data: str


def read_sse(
    url: str,
    *,
    auth: Mapping[str, str],
    last_event_id: str | None = None,
    limit: int | None = None,
    timeout: float = 60,
) -> list[SseEvent]:
    """Read a server-sent event stream until it ends (or `limit` events), ignoring comments."""
    headers = {**auth, "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[SseEvent] = []
    fields: dict[str, str] = {}
    with httpx2.stream("GET", url, headers=headers, timeout=timeout) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append(
                        SseEvent(fields.get("id", ""), fields.get("event", "message"), fields["data"])
                    )
                    if limit is not None and len(events) >= limit:
                        return events
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


@dataclass(frozen=True)
class ApiKey:
    """An API key made for a test with the real `waypoint-admin` command."""

    tenant: str
    key: str
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def revoke(self, redis_url: str) -> None:
        subprocess.run(
            [str(BIN / "waypoint-admin"), "keys", "revoke", self.id],
            env={**os.environ, "REDIS_URL": redis_url},
            capture_output=True,
            timeout=60,
            check=True,
        )


def make_key(
    redis_url: str,
    tenant: str,
    *scopes: str,
    requests_per_minute: int | None = None,
    concurrent_waits: int | None = None,
    daily_spend_usd: float | None = None,
) -> ApiKey:
    """A key for `tenant` (every scope unless some are named), through `waypoint-admin keys create`."""
    options = ["--name", "test"]
    for scope in scopes:
        options += ["--scope", scope]
    for option, value in (
        ("--requests-per-minute", requests_per_minute),
        ("--concurrent-waits", concurrent_waits),
        ("--daily-spend-usd", daily_spend_usd),
    ):
        if value is not None:
            options += [option, str(value)]
    key, stored = create_api_key(BIN, redis_url, tenant, *options)
    return ApiKey(tenant=tenant, key=key, id=str(stored["id"]))


SUITE_TENANT = "suite"
_SUITE_KEYS: dict[str, ApiKey] = {}


def suite_key(redis_url: str) -> ApiKey:
    """The suite's own API key on this Redis: every scope, limits out of the way of other tests.

    Made once per Redis with `waypoint-admin`; tests of the limits themselves make keys of their own.
    """
    if redis_url not in _SUITE_KEYS:
        _SUITE_KEYS[redis_url] = make_key(
            redis_url,
            SUITE_TENANT,
            requests_per_minute=100_000,
            concurrent_waits=10_000,
            daily_spend_usd=10_000_000,
        )
    return _SUITE_KEYS[redis_url]


def api_headers(service: ServiceProcess, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers for a call to an orchestrator's API: the suite's key on that orchestrator's Redis."""
    return {**suite_key(service.env["REDIS_URL"]).headers, **(extra or {})}


BOOKING_KINDS = {"flight": "flight", "hotel": "hotel", "dinner": "restaurant"}


async def bookings_of(redis: RedisClient, trip_id: str) -> dict[str, list[str]]:
    """Booking statuses in the tool servers' Redis that this trip's requests made, by kind (on a
    cluster, the SCAN visits every node)."""
    found: dict[str, list[str]] = {}
    for kind, tag in BOOKING_KINDS.items():
        async for key in redis.scan_iter(match=keys.booking(f"{tag}:*", "*"), count=1000):
            request_id = await redis.hget(key, "request_id")
            if request_id and str(request_id).startswith(f"{trip_id}:"):
                found.setdefault(kind, []).append(str(await redis.hget(key, "status")))
    return found
