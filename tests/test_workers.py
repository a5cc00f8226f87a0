"""Two orchestrator processes on one Redis share the queue: every trip runs once."""

from __future__ import annotations

import collections
import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support import RedisServer, ServiceProcess, orchestrator_env, read_sse

TRIPS = 40


@pytest.fixture
def two_orchestrators(
    servers: dict[str, ServiceProcess], log_dir: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two orchestrators with a queue of their own (the suite's orchestrator reads the suite's)."""
    own_redis = RedisServer.start()
    env = orchestrator_env(own_redis.url, servers, WAYPOINT_WORKERS="3")
    first = ServiceProcess.spawn("waypoint-orchestrator", env, log_dir)
    second = ServiceProcess.spawn("waypoint-orchestrator", env, log_dir)
    first.wait_ready()
    second.wait_ready()
    yield first, second
    first.stop()
    second.stop()
    own_redis.stop()


def test_two_orchestrators_split_the_work_and_run_each_trip_once(
    two_orchestrators: tuple[ServiceProcess, ServiceProcess],
) -> None:
    first, second = two_orchestrators
    cities = ["Denver", "Boston", "Chicago", "Miami", "Seattle", "Atlanta", "Dallas", "Phoenix"]

    def submit(i: int) -> str:
        target = (first, second)[i % 2]
        body = {
            "query": f"3-day trip to {cities[i % len(cities)]} from New York on September {i % 20 + 3} "
            f"for {i % 3 + 1}, budget $6000"
        }
        response = httpx2.post(f"{target.base_url}/v1/trips", json=body, timeout=30)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, range(TRIPS)))

    deadline = time.monotonic() + 240
    trips: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(trips) < TRIPS:
        for trip_id in ids:
            if trip_id not in trips:
                trip = httpx2.get(f"{first.base_url}/v1/trips/{trip_id}", timeout=10).json()
                if trip["status"] in ("planned", "partial", "over_budget", "failed", "needs_input"):
                    trips[trip_id] = trip
        time.sleep(0.5)
    assert len(trips) == TRIPS, f"{TRIPS - len(trips)} trips unfinished"
    assert {t["status"] for t in trips.values()} == {"planned"}

    # Both processes did some of the work (a trip records the process that ran it).
    processes = collections.Counter(t["worker"] for t in trips.values())
    assert len(processes) == 2, processes
    for trip_id in ids:
        events = read_sse(f"{second.base_url}/v1/trips/{trip_id}/events")
        kinds = [e.event for e in events]
        assert kinds.count("trip.settled") == 1
        assert kinds.count("router.decided") == 1
        assert kinds.count("step.finished") == len(trips[trip_id]["steps"])
