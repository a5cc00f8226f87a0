"""`make chaos`: many booked trips against a faulty fleet, an orchestrator killed midway, then an audit.

Everything runs on 127.0.0.1 and stops by itself: a redis-server, the four tool servers with
injected faults (errors, hangs past the callers' timeout, responses lost after the write),
and two orchestrator processes sharing the queue. Halfway through, one orchestrator is killed
with SIGKILL and started again. When every trip has settled, the bookings in the tool servers'
Redis are compared with the bookings the trips report: no duplicate, no orphan, none missing.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import redis

from tests.support import RedisServer, ServiceProcess, api_headers, free_port, orchestrator_env

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")
SETTLED = {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}
CITIES = (
    "Denver",
    "Boston",
    "Chicago",
    "Miami",
    "Seattle",
    "Atlanta",
    "Austin",
    "Portland",
    "Phoenix",
    "Dallas",
    "Lisbon",
    "Madrid",
    "Rome",
    "Vienna",
    "Prague",
    "Oslo",
    "Dublin",
    "Paris",
)
MONTHS = ("May", "June", "July", "August", "September")
KIND_TAGS = {"flight": "flight", "hotel": "hotel", "dinner": "restaurant"}


def default_faults(error_rate: float) -> str:
    return json.dumps(
        {"*": {"error_rate": error_rate, "hang_rate": 0.02, "hang_seconds": 2.5, "lose_response_rate": 0.1}}
    )


@dataclass
class Report:
    trips: int
    states: collections.Counter[str]
    reasons: collections.Counter[str]
    tool_calls: int
    injected: collections.Counter[str]
    retries: int
    breaker_openings: int
    bookings_in_redis: int
    bookings_reported: int
    duplicates: int
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    without_reason: list[str] = field(default_factory=list)
    manual: int = 0
    seconds: float = 0.0

    @property
    def consistent(self) -> bool:
        return not (
            self.orphans
            or self.missing
            or self.mismatched
            or self.unsettled
            or self.without_reason
            or self.duplicates
        )

    def table(self) -> str:
        rows = [("trips", self.trips), ("seconds", f"{self.seconds:.0f}")]
        rows += [(f"  {state}", n) for state, n in sorted(self.states.items())]
        rows += [(f"  reason {reason}", n) for reason, n in sorted(self.reasons.items())]
        rows += [
            ("tool calls reaching the servers", self.tool_calls),
            *((f"  injected {k}", v) for k, v in sorted(self.injected.items())),
            ("retries", self.retries),
            ("breaker openings", self.breaker_openings),
            ("bookings made (in Redis)", self.bookings_in_redis),
            ("bookings reported by trips", self.bookings_reported),
            ("duplicates", self.duplicates),
            ("orphans (in Redis, not reported)", len(self.orphans)),
            ("missing (reported, not in Redis)", len(self.missing)),
            ("status mismatches", len(self.mismatched)),
            ("trips flagged for manual intervention", self.manual),
            ("trips not settled", len(self.unsettled)),
        ]
        width = max(len(str(k)) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _query(rng: random.Random) -> dict[str, Any]:
    origin, destination = rng.sample(CITIES, 2)
    dinner = " with a fancy dinner" if rng.random() < 0.6 else ""
    return {
        "query": f"{rng.randint(2, 5)}-day trip to {destination} from {origin} on {rng.choice(MONTHS)} "
        f"{rng.randint(1, 28)} for {rng.randint(1, 3)}{dinner}, budget ${rng.randint(2500, 9000)}",
        "book": True,
        "traveler_name": "Chaos Tester",
    }


class Chaos:
    def __init__(self, trips: int, error_rate: float, seed: int, log_dir: Path) -> None:
        self.trips = trips
        self.rng = random.Random(seed)
        self.log_dir = log_dir
        self.redis = RedisServer.start()
        faults = default_faults(error_rate)
        self.tools = {
            name: ServiceProcess.spawn(
                name,
                {
                    "REDIS_URL": self.redis.url,
                    "WAYPOINT_FAULTS": faults,
                    "WAYPOINT_FAULT_SEED": str(seed),
                    "WAYPOINT_LOG_LEVEL": "WARNING",
                },
                log_dir,
            )
            for name in TOOL_SERVERS
        }
        for service in self.tools.values():
            service.wait_ready()
        self.env = orchestrator_env(
            self.redis.url,
            self.tools,
            WAYPOINT_WORKERS="4",
            WAYPOINT_TOOL_TIMEOUT_SECONDS="1",
            WAYPOINT_RETRY_MAX_WAIT_SECONDS="0.3",
            WAYPOINT_JOB_LEASE_SECONDS="3",
            WAYPOINT_BREAKER_FAILURES="8",
            WAYPOINT_BREAKER_COOLDOWN_SECONDS="1",
        )
        ports = [free_port(), free_port()]
        self.orchestrators = [
            ServiceProcess.spawn("waypoint-orchestrator", self.env, log_dir, port=port) for port in ports
        ]
        for service in self.orchestrators:
            service.wait_ready()

    def stop(self) -> None:
        for service in (*self.orchestrators, *self.tools.values()):
            service.stop()
        self.redis.stop()

    def _submit(self, body: dict[str, Any]) -> str:
        """POST with an Idempotency-Key, retrying on another orchestrator while one is down."""
        key = f"chaos-{uuid.uuid4()}"
        deadline = time.monotonic() + 60
        attempt = 0
        while True:
            target = self.orchestrators[attempt % len(self.orchestrators)]
            attempt += 1
            try:
                response = httpx2.post(
                    f"{target.base_url}/v1/trips",
                    json=body,
                    headers=api_headers(target, {"Idempotency-Key": key}),
                    timeout=10,
                )
                if response.status_code == 202:
                    return str(response.json()["id"])
                if response.status_code not in (409, 503):
                    raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("could not submit a trip for a minute")
            time.sleep(0.2)

    def _kill_and_restart(self) -> None:
        victim = self.orchestrators[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        time.sleep(1.0)
        self.orchestrators[0] = ServiceProcess.start(
            "waypoint-orchestrator", self.env, self.log_dir, port=victim.port
        )

    def run(self, settle_timeout: float) -> Report:
        started = time.monotonic()
        bodies = [_query(self.rng) for _ in range(self.trips)]
        ids: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            first = list(pool.map(self._submit, bodies[: self.trips // 2]))
            self._kill_and_restart()
            second = list(pool.map(self._submit, bodies[self.trips // 2 :]))
        ids = first + second
        trips = self._wait(ids, settle_timeout)
        report = self._audit(trips)
        report.seconds = time.monotonic() - started
        return report

    def _get(self, trip_id: str) -> dict[str, Any] | None:
        for service in self.orchestrators:
            try:
                response = httpx2.get(
                    f"{service.base_url}/v1/trips/{trip_id}", headers=api_headers(service), timeout=10
                )
                if response.status_code == 200:
                    trip: dict[str, Any] = response.json()
                    return trip
            except httpx2.TransportError:
                continue
        return None

    def _wait(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        trips: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for trip_id in ids:
                if trip_id in trips and trips[trip_id]["status"] in SETTLED:
                    continue
                trip = self._get(trip_id)
                if trip is not None:
                    trips[trip_id] = trip
            if all(trips.get(i, {}).get("status") in SETTLED for i in ids):
                break
            time.sleep(1.0)
        return trips

    def _audit(self, trips: dict[str, dict[str, Any]]) -> Report:
        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        in_redis: dict[str, tuple[str, str, str]] = {}  # booking id -> (trip id, step, status)
        per_step: collections.Counter[tuple[str, str]] = collections.Counter()
        for tag in KIND_TAGS.values():
            for key in client.scan_iter(match=f"{{{tag}:*}}:booking:*", count=1000):
                request_id = str(client.hget(key, "request_id") or "")
                status = str(client.hget(key, "status") or "")
                booking_id = key.rsplit(":booking:", 1)[1]
                trip_id, _, step = request_id.partition(":")
                in_redis[booking_id] = (trip_id, step, status)
                per_step[(trip_id, step)] += 1
        client.close()
        reported: dict[str, tuple[str, str]] = {}
        for trip in trips.values():
            for booking in trip["bookings"]:
                reported[booking["booking_id"]] = (trip["id"], booking["status"])
        orphans = [
            b for b, (trip_id, _, status) in in_redis.items() if status == "confirmed" and b not in reported
        ]
        missing = [b for b in reported if b not in in_redis]
        mismatched = [b for b, (_, status) in reported.items() if b in in_redis and in_redis[b][2] != status]
        calls: collections.Counter[str] = collections.Counter()
        injected: collections.Counter[str] = collections.Counter()
        for service in self.tools.values():
            stats = service.admin("GET", "/admin/stats")
            calls.update(stats["calls"])
            for key, n in stats["injected"].items():
                injected[key.split(":")[1]] += n
        retries = sum(max(0, s["attempts"] - 1) for t in trips.values() for s in t["steps"])
        openings = sum(
            path.read_text().count('"breaker_state": "open"')
            for path in self.log_dir.glob("waypoint-orchestrator-*.log")
        )
        return Report(
            trips=len(trips),
            states=collections.Counter(t["status"] for t in trips.values()),
            reasons=collections.Counter(
                (t["termination"] or {}).get("reason", "none") for t in trips.values()
            ),
            tool_calls=sum(calls.values()),
            injected=injected,
            retries=retries,
            breaker_openings=openings,
            bookings_in_redis=len(in_redis),
            bookings_reported=len(reported),
            duplicates=sum(n - 1 for n in per_step.values() if n > 1),
            orphans=orphans,
            missing=missing,
            mismatched=mismatched,
            unsettled=[t["id"] for t in trips.values() if t["status"] not in SETTLED],
            without_reason=[t["id"] for t in trips.values() if not t["termination"]],
            manual=sum(1 for t in trips.values() if t["manual_intervention_required"]),
        )


def run_chaos(
    trips: int,
    *,
    error_rate: float = 0.2,
    seed: int = 7,
    log_dir: Path | None = None,
    settle_timeout: float = 900,
) -> Report:
    chaos = Chaos(trips, error_rate, seed, log_dir or Path(tempfile.mkdtemp(prefix="waypoint-chaos-")))
    try:
        return chaos.run(settle_timeout)
    finally:
        chaos.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trips", type=int, default=1000, help="booked trips to run (default 1000)")
    parser.add_argument("--error-rate", type=float, default=0.2, help="injected error rate per tool call")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = run_chaos(args.trips, error_rate=args.error_rate, seed=args.seed, settle_timeout=3600)
    print(report.table())
    for label, items in (
        ("orphans", report.orphans),
        ("missing", report.missing),
        ("mismatched", report.mismatched),
        ("unsettled", report.unsettled),
    ):
        if items:
            print(f"{label}: {', '.join(items[:20])}")
    print("\nconsistent: every booking accounted for" if report.consistent else "\nINCONSISTENT")
    return 0 if report.consistent else 1


if __name__ == "__main__":
    sys.exit(main())
