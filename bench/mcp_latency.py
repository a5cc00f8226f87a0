"""`make bench`: MCP tool-call latency and throughput against a bare FastAPI floor.

Everything runs on 127.0.0.1 and stops by itself: a redis-server and one mcp-flights process of
our own, one pooled MCP client (and one httpx2 client for the floor), calls at concurrency 1
and 32. The client runs on uvloop, as the orchestrator's tool clients do (uvicorn's loop).
Prints p50/p99 latency, calls per second and the CPU each call took in the client and in the
server process, then each target with its figure and MET or MISSED; writes the same as JSON
(`--json`, default `.run/bench/mcp_latency.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import httpx2
import uvloop
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
RESULTS = Path(".run/bench")
# Issue 13's targets for the MCP hop (milliseconds over the floor's p50 at c=1; calls/s at c=32).
SEARCH_OVER_FLOOR_MS = 1.5
BOOKING_OVER_FLOOR_MS = 2.5
SEARCHES_PER_SECOND = 500


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
    client_cpu_ms: float  # CPU of this (client) process per call
    server_cpu_ms: float | None  # CPU of the server process per call (None off Linux)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    name: str, call: Call, concurrency: int, total: int, server_pid: int, warmup: int = 30
) -> Figures:
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    tickets = itertools.count()

    async def worker() -> None:
        while next(tickets) < total:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    server_before, client_before = process_cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    client_cpu, server_after = time.process_time() - client_before, process_cpu_seconds(server_pid)
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    n = len(ordered)
    return Figures(
        name,
        concurrency,
        statistics.median(ordered),
        p99,
        n / elapsed,
        client_cpu * 1000 / n,
        None if server_cpu is None else server_cpu * 1000 / n,
    )


async def run(calls: int, mcp_url: str, floor_url: str, mcp_pid: int, floor_pid: int) -> list[Figures]:
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
            results.append(await measure("FastAPI floor", floor_call, concurrency, calls, floor_pid))
            results.append(await measure("search_flights", search, concurrency, calls, mcp_pid))
            results.append(await measure("book_flight", book, concurrency, calls, mcp_pid))
    return results


@dataclass
class Check:
    target: str
    figure: float
    limit: float
    unit: str
    met: bool


def checks(results: list[Figures]) -> list[Check]:
    by = {(f.name, f.concurrency): f for f in results}
    floor = by[("FastAPI floor", 1)].p50_ms
    search, book = by[("search_flights", 1)].p50_ms - floor, by[("book_flight", 1)].p50_ms - floor
    rate = by[("search_flights", 32)].per_second
    return [
        Check(
            "search p50 - floor p50 (c=1)", search, SEARCH_OVER_FLOOR_MS, "ms", search <= SEARCH_OVER_FLOOR_MS
        ),
        Check(
            "booking p50 - floor p50 (c=1)", book, BOOKING_OVER_FLOOR_MS, "ms", book <= BOOKING_OVER_FLOOR_MS
        ),
        Check("searches/s (c=32, one process)", rate, SEARCHES_PER_SECOND, "/s", rate >= SEARCHES_PER_SECOND),
    ]


def report(results: list[Figures]) -> list[Check]:
    print(
        f"\n{'call':<16}{'concurrency':>12}{'p50 ms':>10}{'p99 ms':>10}{'calls/s':>10}"
        f"{'client CPU ms':>15}{'server CPU ms':>15}"
    )
    for f in results:
        server = "-" if f.server_cpu_ms is None else f"{f.server_cpu_ms:.2f}"
        print(
            f"{f.name:<16}{f.concurrency:>12}{f.p50_ms:>10.2f}{f.p99_ms:>10.2f}{f.per_second:>10.0f}"
            f"{f.client_cpu_ms:>15.2f}{server:>15}"
        )
    found = checks(results)
    print()
    for c in found:
        bound = "<=" if c.unit == "ms" else ">="
        value = f"{c.figure:+.2f} ms" if c.unit == "ms" else f"{c.figure:.0f}/s"
        limit = f"{c.limit:g} ms" if c.unit == "ms" else f"{c.limit:g}/s"
        print(f"{'MET   ' if c.met else 'MISSED'} {c.target}: {value} (target {bound} {limit})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per row (default 2000)")
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "mcp_latency.json", help="where to write the figures"
    )
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="waypoint-bench-"))
    try:
        with Harness(log_dir) as harness:
            redis = harness.redis()
            flights = harness.start("mcp-flights", {"REDIS_URL": redis.url, "WAYPOINT_LOG_LEVEL": "WARNING"})
            floor_port = free_port()
            floor = harness.popen([str(BIN / "python"), "-m", "bench.floor", "--port", str(floor_port)])
            floor_url = f"http://127.0.0.1:{floor_port}"
            wait_until(lambda: httpx2.get(f"{floor_url}/readyz").status_code == 200, 20, "floor")
            results = uvloop.run(run(args.calls, flights.mcp_url, floor_url, flights.proc.pid, floor.pid))
    except Interrupted as stopped:
        print(f"\n{stopped}", file=sys.stderr)
        return 128 + stopped.signum
    found = report(results)
    write_json(args.json, args.calls, results, found)
    # The figures are the product; missing a target is reported above, not an error.
    print("\nall targets met" if all(c.met for c in found) else "\nsome targets missed (see above)")
    print(f"figures written to {args.json}")
    return 0


def write_json(path: Path, calls: int, results: list[Figures], found: list[Check]) -> None:
    figures = {
        "benchmark": "mcp_latency",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "calls_per_row": calls,
        "rows": [asdict(f) for f in results],
        "targets": [asdict(c) for c in found],
        "all_met": all(c.met for c in found),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
