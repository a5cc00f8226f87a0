"""Chaos: 200 booked trips against a fleet injecting faults, with an orchestrator killed midway.

Afterwards every trip has settled with a recorded reason, and the audit finds the tool servers'
Redis exactly as the trips report it. The audit itself is shown to see each kind of damage
(a double commit, a capacity counter off by one, an orphan, a missing booking, a booking
reported twice or with another status) on a small run's real bookings, and the harness is
shown to stop every process it started when a service fails to start and when it is told to
stop (SIGTERM, SIGINT) while starting or running.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from bench.chaos import Chaos, run_chaos
from bench.harness import HARNESS_VARIABLE, Harness
from waypoint_common.idempotency import IdempotentWriteStore

ROOT = Path(__file__).resolve().parent.parent
# Set in the environment of a `python -m bench.chaos` started here: every process it starts
# inherits it, so one it leaves behind is found even after it has gone.
MARKER = "WAYPOINT_CHAOS_TEST_MARKER"
SERVICES = ("redis-server", "mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")


def test_two_hundred_trips_under_faults_and_a_killed_orchestrator(tmp_path: Path) -> None:
    report = run_chaos(200, error_rate=0.2, seed=11, log_dir=tmp_path, settle_timeout=600)
    print(report.table())
    assert report.trips == 200
    assert report.unsettled == []
    assert report.without_reason == []
    assert report.audit.problems() == []
    assert report.audit.bookings_in_redis == report.audit.bookings_reported > 0
    assert report.audit.counters_checked > 0
    assert report.consistent
    # The faults really happened, and most trips got booked through them.
    assert report.injected["error"] > 100
    assert report.injected["lose_response"] > 10
    assert report.injected["hang"] > 5
    assert report.retries > 100
    assert report.states["booked"] >= 150
    # The orchestrator that was killed left jobs behind that the others finished: its log shows
    # a start, a kill (no shutdown line), and a second start on the same port.
    logs = sorted(tmp_path.glob("waypoint-orchestrator-*.log"))
    restarted = [p for p in logs if p.read_text().count("Application startup complete") == 2]
    assert len(restarted) == 1


def test_trips_with_a_misbehaving_model_in_the_loop_stay_consistent(tmp_path: Path) -> None:
    """The model path on: a scripted model reads the queries, picks the dining searches and
    writes the narratives, while 10% of its answers are malformed and 5% too slow. Whatever it
    does, nothing is booked twice, lost or left unreported, and every trip settles."""
    report = run_chaos(40, error_rate=0.1, seed=5, log_dir=tmp_path, settle_timeout=600, model=True)
    print(report.table())
    assert report.trips == 40
    assert report.unsettled == []
    assert report.without_reason == []
    assert report.audit.problems() == []
    assert report.audit.bookings_in_redis == report.audit.bookings_reported > 0
    assert report.consistent
    assert report.read_by["model"] >= 30
    assert report.model_requests > 2 * report.trips  # reading, dining turns and narratives
    assert report.states["booked"] >= 30


# -- the audit sees every kind of damage ------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """A small chaos run without faults, its fleet kept up for the audit tests to damage."""
    with Harness(tmp_path_factory.mktemp("chaos-small")) as harness:
        chaos = Chaos(harness, faults="", seed=3)
        chaos.start()
        report = chaos.run(12, settle_timeout=300)
        assert report.consistent, report.table()
        assert report.states["booked"] >= 8, report.table()
        yield chaos


@pytest.fixture
def store(small_run: Chaos) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(small_run.redis_url, decode_responses=True)
    assert small_run.audit().problems() == []
    yield client
    client.close()


def _confirmed(chaos: Chaos, kind: str) -> dict[str, Any]:
    """A confirmed booking of `kind` that a booked trip reports."""
    for trip in chaos.settled.values():
        for booking in trip["bookings"]:
            if booking["kind"] == kind and booking["status"] == "confirmed":
                return dict(booking)
    raise AssertionError(f"the small run booked no {kind}")


def _flight(client: redis.Redis, booking_id: str) -> tuple[str, str, dict[str, str]]:
    """A flight booking's hash tag, its key and its fields as stored."""
    offer = booking_id.split("-", 2)[2]
    tag = f"flight:{offer}"
    key = IdempotentWriteStore.booking_key(tag, booking_id)
    fields = {str(k): str(v) for k, v in client.hgetall(key).items()}
    assert fields, key
    return tag, key, fields


def _copy_flight(
    client: redis.Redis, booking_id: str, request_id: str | None = None
) -> tuple[str, str, str, int]:
    """Store a second flight booking like `booking_id`'s (another random id, the same request id
    unless one is given) and take its seats, as a second commit would; returns the new id, its
    key, the seat counter's key and the seats taken."""
    tag, _, fields = _flight(client, booking_id)
    offer = tag.split(":", 1)[1]
    twin = f"FB-{secrets.token_hex(16)}-{offer}"
    data = json.loads(fields["data"])
    data["booking_id"] = twin
    key = IdempotentWriteStore.booking_key(tag, twin)
    stored = {**fields, "data": json.dumps(data), "request_id": request_id or fields["request_id"]}
    client.hset(key, items=[x for pair in stored.items() for x in pair])
    seats = IdempotentWriteStore.capacity_key(tag, "seats")
    client.decrby(seats, int(data["passengers"]))
    return twin, key, seats, int(data["passengers"])


def test_the_audit_reports_a_double_commit(small_run: Chaos, store: redis.Redis) -> None:
    booking = _confirmed(small_run, "flight")
    twin, key, seats, taken = _copy_flight(store, booking["booking_id"])
    try:
        audit = small_run.audit()
        assert audit.duplicates == {booking["request_id"]: sorted([booking["booking_id"], twin])}
        assert audit.orphans == [twin]  # the second one is reported by no trip
        assert audit.capacity == []  # it took its seats, as a real second commit would
        assert audit.missing == audit.mismatched == audit.misattributed == audit.reported_twice == []
        assert not audit.clean
    finally:
        store.delete(key)
        store.incrby(seats, taken)
    assert small_run.audit().clean


def test_the_audit_reports_a_booking_no_trip_reports(small_run: Chaos, store: redis.Redis) -> None:
    booking = _confirmed(small_run, "flight")
    trip_id = booking["request_id"].split(":", 1)[0]
    orphan, key, seats, taken = _copy_flight(store, booking["booking_id"], f"{trip_id}:book_flight_again")
    try:
        audit = small_run.audit()
        assert audit.orphans == [orphan]
        assert audit.duplicates == {}
        assert audit.capacity == []
        assert not audit.clean
    finally:
        store.delete(key)
        store.incrby(seats, taken)
    assert small_run.audit().clean


def test_the_audit_reports_a_reported_booking_missing_from_redis(
    small_run: Chaos, store: redis.Redis
) -> None:
    booking = _confirmed(small_run, "flight")
    tag, key, fields = _flight(store, booking["booking_id"])
    seats = IdempotentWriteStore.capacity_key(tag, "seats")
    passengers = int(json.loads(fields["data"])["passengers"])
    # Gone with its seats given back: only the booking itself is missing.
    store.delete(key)
    store.incrby(seats, passengers)
    try:
        audit = small_run.audit()
        assert audit.missing == [booking["booking_id"]]
        assert audit.orphans == audit.capacity == []
        assert not audit.clean
    finally:
        store.hset(key, items=[x for pair in fields.items() for x in pair])
        store.decrby(seats, passengers)
    assert small_run.audit().clean


@pytest.mark.parametrize("off_by", [1, -1])
def test_the_audit_reports_a_capacity_counter_off_by_one(
    small_run: Chaos, store: redis.Redis, off_by: int
) -> None:
    booking = _confirmed(small_run, "hotel")
    hotel = booking["booking_id"].split("-", 2)[2]
    nights = sorted(store.scan_iter(match=IdempotentWriteStore.capacity_key(f"hotel:{hotel}", "night:*")))
    assert nights
    counter = str(nights[len(nights) // 2])
    store.incrby(counter, off_by)  # a room given back (or taken) that no booking accounts for
    try:
        audit = small_run.audit()
        assert len(audit.capacity) == 1
        assert audit.capacity[0].startswith(f"{counter}: ")
        assert audit.orphans == audit.missing == []
        assert audit.duplicates == {}
        assert not audit.clean
    finally:
        store.incrby(counter, -off_by)
    assert small_run.audit().clean


def test_the_audit_checks_what_the_trips_report(small_run: Chaos, store: redis.Redis) -> None:
    trips = list(small_run.settled.values())
    booking = _confirmed(small_run, "flight")
    owner = next(t for t in trips if any(b["booking_id"] == booking["booking_id"] for b in t["bookings"]))
    other = next(t for t in trips if t["id"] != owner["id"])
    saved = small_run.settled
    try:
        # Another trip reports it too.
        claimed = copy.deepcopy(other)
        claimed["bookings"].append(booking)
        small_run.settled = {**saved, other["id"]: claimed}
        audit = small_run.audit()
        assert audit.reported_twice == [booking["booking_id"]]
        assert len(audit.misattributed) == 1
        assert audit.misattributed[0].startswith(booking["booking_id"])
        assert audit.orphans == audit.missing == audit.mismatched == []

        # Its trip reports it cancelled, and as a hotel.
        changed = copy.deepcopy(owner)
        for b in changed["bookings"]:
            if b["booking_id"] == booking["booking_id"]:
                b["status"], b["kind"] = "cancelled", "hotel"
        small_run.settled = {**saved, owner["id"]: changed}
        audit = small_run.audit()
        assert [m.split(" ")[0] for m in audit.mismatched] == [booking["booking_id"]]
        assert [m.split(" ")[0] for m in audit.misattributed] == [booking["booking_id"]]
        assert audit.reported_twice == audit.orphans == audit.missing == []
    finally:
        small_run.settled = saved
    assert small_run.audit().clean


# -- the harness leaves nothing running -------------------------------------------------------


def _marked(marker: str) -> list[psutil.Process]:
    """Every live process with `MARKER=<marker>` (or the harness's variable) in its environment.

    (redis-server rewrites its process title over its environment: it is found as a descendant.)
    """
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if marker in (env.get(MARKER), env.get(HARNESS_VARIABLE)):
            found.append(process)
    return found


class Descendants:
    """Every process a `python -m bench.chaos` started: its descendants as seen while it runs,
    and whatever has its marker in its environment."""

    def __init__(self, root: subprocess.Popen[bytes], marker: str) -> None:
        self.root = root
        self.marker = marker
        self.seen: dict[int, psutil.Process] = {}
        self.commands: dict[int, str] = {}  # as first seen

    def look(self) -> list[str]:
        """The command lines of those alive now."""
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.NoSuchProcess):
            found += psutil.Process(self.root.pid).children(recursive=True)
        found += [p for p in _marked(self.marker) if p.pid != self.root.pid]
        for process in found:
            if process.pid not in self.seen:
                self.seen[process.pid] = process
                with contextlib.suppress(psutil.Error):
                    self.commands[process.pid] = " ".join(process.cmdline())
        commands = []
        for process in self.alive():
            with contextlib.suppress(psutil.Error):
                commands.append(" ".join(process.cmdline()))
        return commands

    def alive(self) -> list[psutil.Process]:
        alive = []
        for process in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        return alive

    def wait_for_exit(self, timeout: float) -> None:
        """Until the chaos process exits, looking at its descendants meanwhile."""
        deadline = time.monotonic() + timeout
        while self.root.poll() is None and time.monotonic() < deadline:
            self.look()
            time.sleep(0.1)
        self.root.wait(timeout=max(0.1, deadline - time.monotonic()))

    def left_behind(self, within: float) -> list[str]:
        """What still runs `within` seconds after the chaos process ended (then killed)."""
        deadline = time.monotonic() + within
        while (left := self.look()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for process in self.alive():
            with contextlib.suppress(psutil.Error):
                process.kill()
        return left


def _chaos_process(
    tmp_path: Path, marker: str, *args: str, **env: str
) -> tuple[subprocess.Popen[bytes], Path]:
    stderr = tmp_path / "chaos.stderr"
    with stderr.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.chaos", *args],
            cwd=ROOT,
            env={**os.environ, MARKER: marker, **env},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return proc, stderr


def test_a_service_that_does_not_start_leaves_nothing_running(tmp_path: Path) -> None:
    # Both orchestrators refuse their settings and exit, after Redis and the tool servers are up.
    marker = uuid.uuid4().hex
    proc, stderr = _chaos_process(tmp_path, marker, "--trips", "5", WAYPOINT_MAX_WAIT_SECONDS="0")
    started = Descendants(proc, marker)
    try:
        started.wait_for_exit(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        left = started.left_behind(within=5)
    assert left == [], left
    assert any("redis-server" in c for c in started.commands.values()), started.commands
    assert proc.returncode == 1
    assert "waypoint-orchestrator exited" in stderr.read_text()


def _start_three(harness: Harness) -> None:
    with harness:
        redis_server = harness.redis()
        harness.spawn("mcp-flights", {"REDIS_URL": redis_server.url})
        harness.start("mcp-weather", {"REDIS_URL": redis_server.url})


def test_a_service_not_ready_in_time_is_stopped_with_the_rest(tmp_path: Path) -> None:
    harness = Harness(tmp_path, ready_timeout=0)
    children_before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(TimeoutError, match="mcp-weather not ready"):
        _start_three(harness)
    assert len(harness.processes()) == 3
    started = {p.pid for p in harness.processes()}
    assert started.isdisjoint(children_before)
    assert started.isdisjoint(p.pid for p in psutil.Process().children())
    assert all(p.poll() is not None for p in harness.processes())
    assert _marked(harness.run_id) == []


def _wait_started(started: Descendants, stderr: Path, running: bool) -> None:
    """Until the chaos process has every service up (and, if `running`, is submitting trips)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert started.root.poll() is None, stderr.read_text()
        commands = started.look()
        up = all(any(s in c for c in commands) for s in SERVICES)
        orchestrators = sum("waypoint-orchestrator" in c for c in commands)
        if up and orchestrators == 2 and (not running or "submitting" in stderr.read_text()):
            return
        time.sleep(0.1)
    raise AssertionError(f"chaos did not start its services: {stderr.read_text()[-2000:]}")


@pytest.mark.parametrize(
    ("signum", "running"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGTERM-starting", "SIGTERM-running", "SIGINT-starting"],
)
def test_a_stopped_chaos_run_stops_every_process_it_started(
    tmp_path: Path, signum: signal.Signals, running: bool
) -> None:
    marker = uuid.uuid4().hex
    proc, stderr = _chaos_process(tmp_path, marker, "--trips", "20")
    started = Descendants(proc, marker)
    try:
        _wait_started(started, stderr, running)
        proc.send_signal(signum)
        started.wait_for_exit(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        left = started.left_behind(within=5)
    assert left == [], left
    assert proc.returncode == 128 + signum, stderr.read_text()[-2000:]
    assert f"stopped by {signum.name}" in stderr.read_text()
