"""`make bench`: MCP tool-call latency and throughput against a bare FastAPI floor.

Everything runs on 127.0.0.1 and stops by itself: a redis-server and one mcp-flights process of
our own, one pooled MCP client (and one httpx2 client for the floor), calls at concurrency 1
and 32. Prints p50/p99 latency and calls per second, and whether the targets were met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, RequestParamsMeta

from bench.harness import BIN, SERVICE_TOKEN, Harness, Interrupted, free_port, wait_until
from waypoint_common.bookings import OWNER_META_KEY
from waypoint_orchestrator.mcpclient import CompiledValidationClient

Call = Callable[[], Awaitable[Any]]
SEATS_PER_OFFER = 9  # economy
# Bookings name their owner (the tenant) in `_meta`, as the orchestrator does.
OWNER: RequestParamsMeta = cast(RequestParamsMeta, {OWNER_META_KEY: "bench"})


@contextlib.asynccontextmanager
async def mcp_client(url: str) -> AsyncIterator[Client]:
    """One pooled MCP client over Streamable HTTP, holding the service token, validating results
    as the orchestrator's tool clients do (`CompiledValidationClient`)."""
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(15)) as http,
        CompiledValidationClient(
            streamable_http_client(url, http_client=http), read_timeout_seconds=10
        ) as client,
    ):
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    if result.is_error:
        raise RuntimeError(" ".join(getattr(c, "text", "") for c in result.content))
    assert result.structured_content is not None
    return dict(result.structured_content)


@dataclass
class Figures:
    name: str
    concurrency: int
    p50_ms: float
    p99_ms: float
    per_second: float


async def measure(name: str, call: Call, concurrency: int, total: int, warmup: int = 30) -> Figures:
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    tickets = itertools.count()

    async def worker() -> None:
        while next(tickets) < total:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(name, concurrency, statistics.median(ordered), p99, len(ordered) / elapsed)


async def run(calls: int, mcp_url: str, floor_url: str) -> list[Figures]:
    today = dt.datetime.now(dt.UTC).date()
    search_args = {
        "origin": "SEA",
        "destination": "SFO",
        "depart_date": str(today + dt.timedelta(days=30)),
        "passengers": 1,
    }
    results: list[Figures] = []
    async with httpx2.AsyncClient(base_url=floor_url) as http, mcp_client(mcp_url) as client:
        # Enough distinct offers that the bookings never sell out.
        offers: list[str] = []
        day = 20
        while len(offers) * SEATS_PER_OFFER < 2 * (calls + 60):
            found = structured(
                await client.call_tool(
                    "search_flights", {**search_args, "depart_date": str(today + dt.timedelta(days=day))}
                )
            )
            offers += [o["offer_id"] for o in found["offers"]]
            day += 1
        seats = itertools.cycle(offers)

        async def floor_call() -> None:
            response = await http.post("/echo", json={"origin": "SEA", "destination": "SFO", "passengers": 1})
            response.raise_for_status()

        async def search() -> None:
            structured(await client.call_tool("search_flights", search_args))

        async def book() -> None:
            structured(
                await client.call_tool(
                    "book_flight",
                    {"offer_id": next(seats), "passengers": 1, "request_id": uuid.uuid4().hex},
                    meta=OWNER,
                )
            )

        for concurrency in (1, 32):
            results.append(await measure("FastAPI floor", floor_call, concurrency, calls))
            results.append(await measure("search_flights", search, concurrency, calls))
            results.append(await measure("book_flight", book, concurrency, calls))
    return results


def report(results: list[Figures]) -> bool:
    print(f"\n{'call':<16}{'concurrency':>12}{'p50 ms':>10}{'p99 ms':>10}{'calls/s':>10}")
    for f in results:
        print(f"{f.name:<16}{f.concurrency:>12}{f.p50_ms:>10.2f}{f.p99_ms:>10.2f}{f.per_second:>10.0f}")
    by = {(f.name, f.concurrency): f for f in results}
    floor = by[("FastAPI floor", 1)].p50_ms
    search, book = by[("search_flights", 1)].p50_ms - floor, by[("book_flight", 1)].p50_ms - floor
    rate = by[("search_flights", 32)].per_second
    checks = [
        ("search p50 within 1.5 ms of the floor (c=1)", search <= 1.5, f"+{search:.2f} ms"),
        ("booking p50 within 2.5 ms of the floor (c=1)", book <= 2.5, f"+{book:.2f} ms"),
        ("at least 500 searches/s (c=32)", rate >= 500, f"{rate:.0f}/s"),
    ]
    print()
    for label, ok, value in checks:
        print(f"{'met   ' if ok else 'MISSED'} {label}: {value}")
    return all(ok for _, ok, _ in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per row (default 2000)")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="waypoint-bench-"))
    try:
        with Harness(log_dir) as harness:
            redis = harness.redis()
            flights = harness.start("mcp-flights", {"REDIS_URL": redis.url, "WAYPOINT_LOG_LEVEL": "WARNING"})
            floor_port = free_port()
            harness.popen([str(BIN / "python"), "-m", "bench.floor", "--port", str(floor_port)])
            floor_url = f"http://127.0.0.1:{floor_port}"
            wait_until(lambda: httpx2.get(f"{floor_url}/readyz").status_code == 200, 20, "floor")
            met = report(asyncio.run(run(args.calls, flights.mcp_url, floor_url)))
    except Interrupted as stopped:
        print(f"\n{stopped}", file=sys.stderr)
        return 128 + stopped.signum
    # The figures are the product; missing a target is reported above, not an error.
    print("\nall targets met" if met else "\nsome targets missed (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
