"""`make chaos`: many booked trips against a faulty fleet, an orchestrator killed midway, then an audit.

Everything runs on 127.0.0.1 and stops by itself: a redis-server, the four tool servers with
injected faults (errors, hangs past the callers' timeout, responses lost after the write),
and two orchestrator processes sharing the queue. Halfway through, one orchestrator is killed
with SIGKILL and started again. When every trip has settled, the bookings in the tool servers'
Redis are audited against the bookings the trips report (`bench.booking_audit`): no request id
with two bookings, none unreported, none missing, each reported once by the trip that made it
with its status, and every item's capacity taken equal to what its confirmed bookings hold.

Every process it starts is stopped when it ends, however it ends: a service that exits or is
not ready in time, an error, Ctrl-C, SIGTERM or SIGHUP (the exit status is then 128 + the
signal's number).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime as dt
import json
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import redis

from bench import chaos_model
from bench.booking_audit import BookingAudit, audit_bookings
from bench.fakellm import FakeModel
from bench.harness import BIN, Harness, Interrupted, RedisServer, ServiceProcess, free_port
from waypoint_common.fleet import TOOL_SERVERS, create_api_key, url_variable

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
TENANT = "chaos"
MODEL_TIMEOUT_SECONDS = 1.0


def default_faults(error_rate: float) -> str:
    return json.dumps(
        {"*": {"error_rate": error_rate, "hang_rate": 0.02, "hang_seconds": 2.5, "lose_response_rate": 0.1}}
    )


def _progress(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


@dataclass
class Report:
    trips: int
    states: collections.Counter[str]
    reasons: collections.Counter[str]
    tool_calls: int
    injected: collections.Counter[str]
    retries: int
    breaker_openings: int
    audit: BookingAudit
    unsettled: list[str] = field(default_factory=list)
    without_reason: list[str] = field(default_factory=list)
    manual: int = 0
    seconds: float = 0.0
    read_by: collections.Counter[str] = field(default_factory=collections.Counter)
    model_requests: int = 0

    @property
    def consistent(self) -> bool:
        return self.audit.clean and not (self.unsettled or self.without_reason)

    def table(self) -> str:
        audit = self.audit
        rows = [("trips", self.trips), ("seconds", f"{self.seconds:.0f}")]
        rows += [(f"  {state}", n) for state, n in sorted(self.states.items())]
        rows += [(f"  reason {reason}", n) for reason, n in sorted(self.reasons.items())]
        if self.model_requests:
            rows += [("model requests", self.model_requests)]
            rows += [(f"  queries read by {who}", n) for who, n in sorted(self.read_by.items())]
        rows += [
            ("tool calls reaching the servers", self.tool_calls),
            *((f"  injected {k}", v) for k, v in sorted(self.injected.items())),
            ("retries", self.retries),
            ("breaker openings", self.breaker_openings),
            ("bookings made (in Redis)", audit.bookings_in_redis),
            ("bookings reported by trips", audit.bookings_reported),
            ("request ids with more than one booking", len(audit.duplicates)),
            ("orphans (in Redis, not reported)", len(audit.orphans)),
            ("missing (reported, not in Redis)", len(audit.missing)),
            ("reported more than once", len(audit.reported_twice)),
            ("reported by a trip that did not make them", len(audit.misattributed)),
            ("status mismatches", len(audit.mismatched)),
            ("capacity counters checked", audit.counters_checked),
            ("capacity counters off", len(audit.capacity)),
            ("trips flagged for manual intervention", self.manual),
            ("trips not settled", len(self.unsettled)),
            ("trips without a termination reason", len(self.without_reason)),
        ]
        width = max(len(str(k)) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _query(rng: random.Random, today: dt.date) -> dict[str, Any]:
    """A booked trip in free text, on a date 3 weeks to 10 months from today."""
    origin, destination = rng.sample(CITIES, 2)
    dinner = " with a fancy dinner" if rng.random() < 0.6 else ""
    start = today + dt.timedelta(days=rng.randint(21, 300))
    return {
        "query": f"{rng.randint(2, 5)}-day trip to {destination} from {origin} on {start:%B} {start.day} "
        f"for {rng.randint(1, 3)}{dinner}, budget ${rng.randint(2500, 9000)}",
        "book": True,
        "traveler_name": "Chaos Tester",
    }


class Chaos:
    """One chaos run's fleet, started through `harness` (which stops it), and the run itself."""

    def __init__(self, harness: Harness, *, faults: str, seed: int, model: FakeModel | None = None) -> None:
        self.harness = harness
        self.model = model
        self.faults = faults
        self.seed = seed
        self.rng = random.Random(seed)
        self.redis: RedisServer | None = None
        self.tools: dict[str, ServiceProcess] = {}
        self.orchestrators: list[ServiceProcess] = []
        self.env: dict[str, str] = {}
        self.api_key = ""
        self.settled: dict[str, dict[str, Any]] = {}
        self._stopping = threading.Event()

    @property
    def redis_url(self) -> str:
        assert self.redis is not None, "start() first"
        return self.redis.url

    def start(self) -> None:
        """Redis, the four tool servers, an API key, then two orchestrators; each ready."""
        self.redis = self.harness.redis()
        tool_env = {
            "REDIS_URL": self.redis.url,
            "WAYPOINT_FAULTS": self.faults,
            "WAYPOINT_FAULT_SEED": str(self.seed),
            "WAYPOINT_LOG_LEVEL": "WARNING",
        }
        self.tools = {spec.name: self.harness.spawn(spec.command, tool_env) for spec in TOOL_SERVERS}
        self.harness.wait_ready(*self.tools.values())
        self.api_key, _ = create_api_key(
            BIN,
            self.redis.url,
            TENANT,
            *("--name", "chaos", "--requests-per-minute", "100000"),
            *("--concurrent-waits", "10000", "--daily-spend-usd", "10000000"),
        )
        self.env = {
            "REDIS_URL": self.redis.url,
            **{url_variable(spec): self.tools[spec.name].mcp_url for spec in TOOL_SERVERS},
            "WAYPOINT_WORKERS": "4",
            "WAYPOINT_TOOL_TIMEOUT_SECONDS": "1",
            "WAYPOINT_RETRY_MAX_WAIT_SECONDS": "0.3",
            "WAYPOINT_JOB_LEASE_SECONDS": "3",
            "WAYPOINT_BREAKER_FAILURES": "8",
            "WAYPOINT_BREAKER_COOLDOWN_SECONDS": "1",
        }
        if self.model is not None:
            self.model.responder = chaos_model.responder(
                self.seed, dt.datetime.now(dt.UTC).date(), slow_seconds=MODEL_TIMEOUT_SECONDS + 0.5
            )
            self.env |= {
                "WAYPOINT_LLM_BASE_URL": self.model.base_url,
                "WAYPOINT_LLM_MODEL": self.model.model,
                "WAYPOINT_LLM_TIMEOUT_SECONDS": str(MODEL_TIMEOUT_SECONDS),
                "WAYPOINT_LLM_ATTEMPTS": "2",
                "WAYPOINT_LLM_SPECIALISTS": '["dining"]',
                "WAYPOINT_LLM_NARRATIVE": "true",
            }
        self.orchestrators = [
            self.harness.spawn("waypoint-orchestrator", self.env, port=free_port()) for _ in range(2)
        ]
        self.harness.wait_ready(*self.orchestrators)
        _progress(
            f"fleet ready: {self.redis.url}, {len(self.tools)} tool servers, "
            f"{len(self.orchestrators)} orchestrators (logs in {self.harness.log_dir})"
        )

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", **(extra or {})}

    def _submit(self, body: dict[str, Any]) -> str:
        """POST with an Idempotency-Key, retrying on another orchestrator while one is down."""
        key = f"chaos-{uuid.uuid4()}"
        deadline = time.monotonic() + 60
        attempt = 0
        while not self._stopping.is_set():
            target = self.orchestrators[attempt % len(self.orchestrators)]
            attempt += 1
            try:
                response = httpx2.post(
                    f"{target.base_url}/v1/trips",
                    json=body,
                    headers=self._headers({"Idempotency-Key": key}),
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
        raise RuntimeError("stopping")

    def _kill_and_restart(self) -> None:
        victim = self.orchestrators[0]
        _progress(f"killing the orchestrator on port {victim.port} (SIGKILL), then starting it again")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        time.sleep(1.0)  # down for a moment: its running jobs are left to the lease to recover
        self.orchestrators[0] = self.harness.start("waypoint-orchestrator", self.env, port=victim.port)

    def run(self, trips: int, settle_timeout: float) -> Report:
        started = time.monotonic()
        today = dt.datetime.now(dt.UTC).date()
        bodies = [_query(self.rng, today) for _ in range(trips)]
        _progress(f"submitting {trips} trips")
        # Not a `with` block: on an interrupt the pool must not wait for the queued submissions.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        try:
            first = list(pool.map(self._submit, bodies[: trips // 2]))
            self._kill_and_restart()
            second = list(pool.map(self._submit, bodies[trips // 2 :]))
        finally:
            self._stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
        _progress("waiting for every trip to settle")
        self.settled = self._wait(first + second, settle_timeout)
        _progress("auditing")
        report = self._report(self.settled)
        report.seconds = time.monotonic() - started
        return report

    def audit(self) -> BookingAudit:
        """The tool servers' Redis against the trips of the last run, as it stands now."""
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return audit_bookings(client, self.settled.values())
        finally:
            client.close()

    def _get(self, trip_id: str) -> dict[str, Any] | None:
        for service in self.orchestrators:
            try:
                response = httpx2.get(
                    f"{service.base_url}/v1/trips/{trip_id}", headers=self._headers(), timeout=10
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

    def _report(self, trips: dict[str, dict[str, Any]]) -> Report:
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
            for path in self.harness.log_dir.glob("waypoint-orchestrator-*.log")
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
            audit=self.audit(),
            unsettled=[t["id"] for t in trips.values() if t["status"] not in SETTLED],
            without_reason=[t["id"] for t in trips.values() if not t["termination"]],
            manual=sum(1 for t in trips.values() if t["manual_intervention_required"]),
            read_by=collections.Counter(
                (t.get("decision") or {}).get("read_by", "none") for t in trips.values()
            ),
            model_requests=len(self.model.received()) if self.model is not None else 0,
        )


def run_chaos(
    trips: int,
    *,
    error_rate: float = 0.2,
    seed: int = 7,
    log_dir: Path | None = None,
    settle_timeout: float = 900,
    ready_timeout: float = 60,
    model: bool = False,
) -> Report:
    """Start the fleet, run `trips` booked trips through it, audit, and stop every process.

    With `model`, the orchestrators use a scripted language model (`bench.chaos_model`) that
    reads the queries, picks the dining searches and writes narratives, and misbehaves on purpose.
    """
    logs = log_dir or Path(tempfile.mkdtemp(prefix="waypoint-chaos-"))
    fake = FakeModel() if model else None
    try:
        with Harness(logs, ready_timeout=ready_timeout) as harness:
            chaos = Chaos(harness, faults=default_faults(error_rate), seed=seed, model=fake)
            chaos.start()
            return chaos.run(trips, settle_timeout)
    finally:
        if fake is not None:
            fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trips", type=int, default=1000, help="booked trips to run (default 1000)")
    parser.add_argument("--error-rate", type=float, default=0.2, help="injected error rate per tool call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60,
        help="seconds each service has to become ready (default 60)",
    )
    parser.add_argument(
        "--model",
        action="store_true",
        help="run with a scripted language model (10%% malformed answers, 5%% slow ones)",
    )
    args = parser.parse_args()
    try:
        report = run_chaos(
            args.trips,
            error_rate=args.error_rate,
            seed=args.seed,
            settle_timeout=3600,
            ready_timeout=args.ready_timeout,
            model=args.model,
        )
    except Interrupted as stopped:
        _progress(f"{stopped}; every process it started is stopped")
        return 128 + stopped.signum
    except (RuntimeError, TimeoutError) as exc:
        _progress(f"failed: {exc}\nevery process it started is stopped")
        return 1
    print(report.table())
    for problem in report.audit.problems():
        print(problem)
    if report.unsettled:
        print(f"unsettled: {', '.join(report.unsettled[:20])}")
    print("\nconsistent: every booking accounted for" if report.consistent else "\nINCONSISTENT")
    return 0 if report.consistent else 1


if __name__ == "__main__":
    sys.exit(main())
