"""The real compose fleet in a real Docker engine: built, started, scaled, hurt and torn down.

`make test` runs this module as its last stage (`make compose-fleet`). It needs a Docker engine
with Compose v2 and the images `compose.yaml` names (on a machine without registry access, the
`WAYPOINT_*_IMAGE` variables point at local images; `.ci/run` gets both from the compose lab's
`engine.sh` when it is there). Without an engine the module is skipped for a developer, and under
`CI=true` a missing engine fails it: CI must not pass without having run the fleet.

The fleet runs as its own compose project on free ports, and is torn down (`down -v`) however
the module ends, an interrupt included (the harness turns SIGTERM into an exception).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support import Harness, free_port

# A first build on a fresh machine installs every image's dependencies: minutes, not seconds.
pytestmark = [pytest.mark.engine, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parent.parent
PATAGONIA = (
    "4-day hiking trip to Patagonia from Seattle in {month} with one fancy dinner, under $3000 for two"
)
# The replicas' admin endpoint, asked from inside each replica's container (no host port).
STATS_SCRIPT = (
    "import json, urllib.request\n"
    "token = open('/run/secrets/service-token').read().strip()\n"
    "request = urllib.request.Request('http://127.0.0.1:8000/admin/stats',"
    " headers={'Authorization': 'Bearer ' + token, 'Host': '127.0.0.1:8000'})\n"
    "print(json.dumps(json.load(urllib.request.urlopen(request, timeout=5))['calls']))\n"
)


def _engine_problem() -> str | None:
    """Why no engine can run the fleet here, or None when one can."""
    if shutil.which("docker") is None:
        return "no `docker` command"
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` did not answer in 30 s"
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {done.stderr.strip()[:300]}"
    return None


@dataclass
class ComposeFleet:
    """One compose project of the fleet, driven through the `docker compose` command."""

    project: str
    api_port: int
    jaeger_port: int
    env: dict[str, str]
    key: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        command = ["docker", "compose", "--project-directory", str(ROOT), "-p", self.project, *args]
        self.log.append(" ".join(args))
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def up(self, *args: str) -> None:
        """`up --wait`, asked again when a container was reported unhealthy: on a busy 2-core
        machine a first start can miss two probes in a row and recover (the probes go on)."""
        for attempt in range(3):
            try:
                self.compose("up", "--wait", "--wait-timeout", "240", "-d", *args, timeout=600)
                return
            except AssertionError as failed:
                if "unhealthy" not in str(failed) or attempt == 2:
                    raise
                print(f"compose up --wait: {str(failed).splitlines()[-1]}; asking again")

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def post_trip(self, body: dict[str, Any], *, wait: int = 90) -> httpx2.Response:
        return httpx2.post(
            f"{self.api}/v1/trips",
            json=body,
            headers=self.headers({"Prefer": f"wait={wait}", "Idempotency-Key": uuid.uuid4().hex}),
            timeout=wait + 30,
        )

    def get_trip(self, trip_id: str) -> httpx2.Response:
        return httpx2.get(f"{self.api}/v1/trips/{trip_id}", headers=self.headers(), timeout=30)

    def flight_containers(self) -> list[str]:
        return self.compose("ps", "-q", "mcp-flights").split()

    def calls(self, container: str) -> dict[str, int]:
        """Tool calls that reached one flights replica since it started."""
        done = subprocess.run(
            ["docker", "exec", container, "python", "-c", STATS_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        counts: dict[str, int] = json.loads(done.stdout)
        return counts


@pytest.fixture(scope="module")
def fleet(harness: Harness) -> Iterator[ComposeFleet]:
    problem = _engine_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, and the compose fleet cannot run: {problem}")
        pytest.skip(f"no Docker engine with Compose v2 ({problem}): the compose fleet test needs one")
    project = f"waypoint-test-{os.getpid()}"
    env = {
        **os.environ,
        "WAYPOINT_PORT": str(free_port()),
        "WAYPOINT_JAEGER_PORT": str(free_port()),
        "WAYPOINT_SERVICE_TOKEN": secrets.token_hex(32),
        "WAYPOINT_PUBLISH_ADDRESS": "127.0.0.1",
    }
    started = ComposeFleet(project, int(env["WAYPOINT_PORT"]), int(env["WAYPOINT_JAEGER_PORT"]), env)
    try:
        try:
            started.compose("build", timeout=1800)
            started.up()
            created = started.compose(
                "exec", "-T", "orchestrator", "waypoint-admin", "keys", "create", "--tenant", "compose-test",
                "--name", "compose-test", "--requests-per-minute", "100000", "--concurrent-waits", "64",
                "--daily-spend-usd", "10000000",
            )  # fmt: skip
            started.key = created.splitlines()[0].strip()
        except BaseException:
            # Why the fleet did not come up, in the test's output.
            print(started.compose("ps", "-a", check=False))
            print(started.compose("logs", "--no-color", "--tail", "60", check=False))
            raise
        yield started
    finally:
        # Every exit path: a failed build, a failed assertion, an interrupt.
        down = subprocess.run(
            ["docker", "compose", "--project-directory", str(ROOT), "-p", project, "down", "-v",
             "--rmi", "local", "--remove-orphans", "--timeout", "10"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        print(f"compose down -v: exit {down.returncode}")


def _eventually(check: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    """Ask `check` every `interval` seconds until it says yes; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)


def _month_ahead() -> str:
    return f"{dt.datetime.now(dt.UTC).date() + dt.timedelta(days=60):%B}"


def _flight_trip(i: int) -> dict[str, Any]:
    """A booked one-way flight on its own day (no cached search answers it)."""
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=20 + i % 300)
    return {
        "kind": "flights_only",
        "origin": "ORD",
        "destination": "MIA",
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
        "travelers": 1,
        "book": True,
        "traveler_name": "Compose Test",
    }


def _trips(fleet: ComposeFleet, numbers: range, *, concurrency: int = 6) -> list[dict[str, Any]]:
    """Post the trips `concurrency` at a time; every answer must be a settled trip."""

    def one(i: int) -> dict[str, Any]:
        response = fleet.post_trip(_flight_trip(i))
        assert response.status_code == 200, response.text
        trip: dict[str, Any] = response.json()
        return trip

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, numbers))


def _assert_booked_once(trips: list[dict[str, Any]]) -> None:
    for trip in trips:
        assert trip["status"] == "booked", (trip["id"], trip["status"], trip.get("termination"))
        assert [b["kind"] for b in trip["bookings"]] == ["flight"], trip["bookings"]
    references = [b["booking_id"] for trip in trips for b in trip["bookings"]]
    assert len(set(references)) == len(trips)


def test_the_patagonia_trip_is_planned_and_booked_through_the_published_api(fleet: ComposeFleet) -> None:
    planned = fleet.post_trip({"query": PATAGONIA.format(month=_month_ahead())})
    assert planned.status_code == 200, planned.text
    trip = planned.json()
    assert trip["status"] == "planned", trip
    assert trip["trace_url"] == f"http://localhost:16686/trace/{trip['trace_id']}"

    confirmed = httpx2.post(
        f"{fleet.api}/v1/trips/{trip['id']}/confirm",
        headers=fleet.headers({"Prefer": "wait=90"}),
        timeout=120,
    )
    assert confirmed.status_code == 200, confirmed.text
    booked = confirmed.json()
    assert booked["status"] == "booked", booked
    assert sorted(b["kind"] for b in booked["bookings"]) == ["dinner", "flight", "hotel"]
    # Published on loopback only: the API's port is bound to 127.0.0.1, nothing else.
    published = fleet.compose("port", "orchestrator", "8000").split()
    assert published == [f"127.0.0.1:{fleet.api_port}"]


def test_three_flight_replicas_share_the_calls_and_trips_survive_one_killed(fleet: ComposeFleet) -> None:
    fleet.up("--scale", "mcp-flights=3", "--no-recreate")
    replicas = fleet.flight_containers()
    assert len(replicas) == 3
    # New replicas reach the orchestrator's balancer when it next resolves the name (~5 s).
    before = {c: sum(fleet.calls(c).values()) for c in replicas}
    warmed = 0
    while not all(sum(fleet.calls(c).values()) > before[c] for c in replicas):
        _trips(fleet, range(1000 + warmed, 1000 + warmed + 6))
        warmed += 6
        assert warmed <= 60, "a new replica got no call within 60 trips"

    before = {c: sum(fleet.calls(c).values()) for c in replicas}
    steady = _trips(fleet, range(40))
    _assert_booked_once(steady)
    served = {c: sum(fleet.calls(c).values()) - before[c] for c in replicas}
    total = sum(served.values())
    print(f"flight calls per replica, 40 trips: {sorted(served.values())}")
    assert total >= 60, served  # a search and a booking per trip
    for container, count in served.items():
        assert count >= 0.2 * total, f"replica {container[:12]} served {count} of {total}: {served}"

    # One replica killed while trips are arriving: every trip still books, once.
    victim = replicas[0]
    with concurrent.futures.ThreadPoolExecutor(1) as background:
        running = background.submit(_trips, fleet, range(2000, 2040))
        _eventually(
            lambda: sum(fleet.calls(victim).values()) > before[victim] + served[victim] + 2,
            timeout=120,
            what="the replica to be killed serves the running trips",
        )
        subprocess.run(["docker", "kill", victim], capture_output=True, timeout=60, check=True)
        survived = running.result(timeout=900)
    _assert_booked_once(survived)
    after_kill = _trips(fleet, range(3000, 3012))
    _assert_booked_once(after_kill)
    assert len({b["booking_id"] for t in steady + survived + after_kill for b in t["bookings"]}) == 92


def test_redis_stopped_gives_503_and_started_again_loses_nothing(fleet: ComposeFleet) -> None:
    accepted = _trips(fleet, range(4000, 4004))
    _assert_booked_once(accepted)
    fleet.compose("stop", "redis", timeout=120)
    try:
        refused = fleet.post_trip(_flight_trip(4100), wait=5)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["status"] == 503
        assert "Retry-After" in refused.headers
    finally:
        fleet.compose("start", "redis", timeout=120)

    def accepted_again() -> bool:
        try:
            return fleet.post_trip(_flight_trip(4200), wait=60).status_code == 200
        except httpx2.HTTPError:
            return False

    _eventually(accepted_again, timeout=120, what="trips accepted after Redis started", interval=2)
    for trip in accepted:
        stored = fleet.get_trip(trip["id"])
        assert stored.status_code == 200, stored.text
        assert stored.json()["status"] == "booked"
        assert stored.json()["bookings"] == trip["bookings"]


def test_every_service_sends_its_spans_to_the_collector(fleet: ComposeFleet) -> None:
    """The collector and Jaeger here may be the lab's stand-ins (they count spans): the check is
    that spans of every service arrive, not what a real Jaeger shows."""
    wanted = {"orchestrator", "mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants"}

    def services() -> set[str]:
        jaeger = f"http://127.0.0.1:{fleet.jaeger_port}"
        stats = httpx2.get(f"{jaeger}/stats", timeout=10)
        if stats.status_code == 200:  # the stand-in: span counts per service
            return {s for s, n in stats.json().get("spans_by_service", {}).items() if n > 0}
        # The real Jaeger: the services it holds traces of.
        return set(httpx2.get(f"{jaeger}/api/services", timeout=10).json().get("data") or [])

    _eventually(lambda: wanted <= services(), timeout=90, what="spans of every service in Jaeger", interval=2)
