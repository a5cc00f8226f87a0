"""The `waypoint` command, run as a process against a running orchestrator and tool servers over
real HTTP: live progress through a dropped event stream, a POST whose answer was lost, every
exit code a script relies on, `--json`, NO_COLOR and terminals, and the first run after
`make run` (the key the fleet leaves for it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis

from tests.helpers import month_ahead
from tests.support import (
    BIN,
    ROOT,
    ApiKey,
    Harness,
    RedisServer,
    ServiceProcess,
    free_port,
    make_key,
    orchestrator_env,
    own_tool_servers,
    read_sse,
)
from tests.tcpproxy import CuttingProxy
from waypoint_common.fleet import FLEET

WAYPOINT = str(BIN / "waypoint")
# An event line of the progress log (piped output): "10:09:06  step.finished   search_flights: …".
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d  (\S+)\s", re.MULTILINE)
TRIP_LINE = re.compile(r"^trip ([0-9a-f]{32})", re.MULTILINE)
# SGR parameters that set a colour (foreground, background, bright, 256 and true colour).
COLOUR = re.compile(r"^(3[0-9]|4[0-9]|9[0-7]|10[0-7])$")


def trip_query(budget: int = 3000, days_ahead: int = 60) -> str:
    month, _ = month_ahead(days_ahead)
    return (
        f"4-day hiking trip to Patagonia from Seattle in {month} with one fancy dinner, "
        f"under ${budget} for two"
    )


@pytest.fixture(scope="module")
def cli_key(redis_server: RedisServer) -> ApiKey:
    return make_key(
        redis_server.url,
        "cli-suite",
        requests_per_minute=100_000,
        concurrent_waits=10_000,
        daily_spend_usd=10_000_000,
    )


@pytest.fixture
def proxy(orchestrator: ServiceProcess) -> Iterator[CuttingProxy]:
    front = CuttingProxy(orchestrator.port)
    yield front
    front.close()


def environment(api: str | None, key: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAYPOINT_API", "NO_COLOR", "JAEGER"))}
    env["COLUMNS"] = "200"  # wide enough that no table cell wraps a figure the tests look for
    if api is not None:
        env["WAYPOINT_API_URL"] = api
    if key is not None:
        env["WAYPOINT_API_KEY"] = key
    return {**env, **extra}


def waypoint(
    *args: str, api: str | None, key: str | None, timeout: float = 180, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the command with its output piped (no terminal), as a script would."""
    return subprocess.run(
        [WAYPOINT, *args],
        env=environment(api, key, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def event_types(output: str) -> list[str]:
    return EVENT_LINE.findall(output)


def trip_id_of(output: str) -> str:
    found = TRIP_LINE.search(output)
    assert found is not None, output
    return found.group(1)


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def day_label(day: str) -> str:
    return dt.date.fromisoformat(day).strftime("%a %d %b")


def assert_itinerary_shown(output: str, trip: dict[str, Any]) -> None:
    itinerary = trip["itinerary"]
    assert "Itinerary" in output
    for day in itinerary["days"]:
        assert day_label(day["date"]) in output
        assert day["title"] in output
    budget = itinerary["budget"]
    for line in budget["lines"]:
        assert line["item"] in output
        assert money(line["amount_usd"]) in output
    assert re.search(rf"Total\s*│\s*{re.escape(money(budget['total_usd']))}", output), output
    assert re.search(rf"Budget\s*│\s*{re.escape(money(budget['budget_usd']))}", output), output


def test_plan_follows_a_dropped_event_stream_and_shows_every_event_once(
    orchestrator: ServiceProcess, cli_key: ApiKey, proxy: CuttingProxy
) -> None:
    # The first event stream is cut in the middle of the first step.finished event: its id and
    # type have reached the client, its data has not.
    fired = proxy.cut(b"/events", b"event: step.finished")
    run = waypoint("plan", trip_query(), api=proxy.url, key=cli_key.key)

    assert run.returncode == 0, run.stdout + run.stderr
    assert fired.is_set()
    trip_id = trip_id_of(run.stdout)
    sent = read_sse(f"{orchestrator.base_url}/v1/trips/{trip_id}/events", auth=cli_key.headers)
    cut_at = next(i for i, e in enumerate(sent) if e.event == "step.finished")
    resumed_after = sent[cut_at - 1].id

    # Every event the API logged is shown once, in order, the cut one included.
    assert event_types(run.stdout) == [e.event for e in sent]
    assert event_types(run.stdout).count("step.finished") == sum(e.event == "step.finished" for e in sent)
    assert f"resuming after event {resumed_after}" in run.stdout
    # The second stream asked for what came after the last whole event.
    streams = [r for r in proxy.requests if re.match(rb"GET /v1/trips/\w+/events ", r)]
    assert len(streams) == 2, streams
    assert b"last-event-id" not in streams[0].lower()
    assert f"last-event-id: {resumed_after}\r\n".encode() in streams[1].lower()

    trip = json.loads(waypoint("show", trip_id, "--json", api=orchestrator.base_url, key=cli_key.key).stdout)
    assert trip["status"] == "planned"
    assert_itinerary_shown(run.stdout, trip)
    assert "Within budget, left" in run.stdout
    for warning in trip["warnings"]:
        assert warning in run.stdout
    assert f"Trace       http://127.0.0.1:16686/trace/{trip['trace_id']}" in run.stdout
    assert "\x1b[" not in run.stdout + run.stderr  # piped: no colour, no redraw


def test_a_lost_answer_to_the_post_is_retried_with_the_same_idempotency_key(
    orchestrator: ServiceProcess, redis_server: RedisServer, proxy: CuttingProxy
) -> None:
    key = make_key(redis_server.url, "cli-retry")
    # The orchestrator accepts the trip; its answer is cut after the status line's first bytes.
    fired = proxy.cut(b"POST /v1/trips ", b"HTTP/1.1 ")
    run = waypoint("plan", trip_query(), "--json", api=proxy.url, key=key.key)

    assert run.returncode == 0, run.stdout + run.stderr
    assert fired.is_set()
    trip = json.loads(run.stdout)  # --json: the trip document, nothing else
    assert trip["status"] == "planned"
    assert trip["tenant"] == "cli-retry"
    assert "POST /v1/trips: no answer" in run.stderr
    posts = [r for r in proxy.requests if r.startswith(b"POST /v1/trips ")]
    assert len(posts) == 2
    keys = {re.findall(rb"idempotency-key: (\S+)\r\n", p.lower())[0] for p in posts}
    assert len(keys) == 1
    # One trip for that tenant: the retry got the first one.
    redis = SyncRedis.from_url(redis_server.url, decode_responses=True)
    try:
        tenants = [
            json.loads(str(redis.get(k)))["tenant"] for k in redis.scan_iter(match="{trip:*}", count=1000)
        ]
    finally:
        redis.close()
    assert tenants.count("cli-retry") == 1


def test_needs_input_exits_3_with_each_problem_on_its_field(
    orchestrator: ServiceProcess, cli_key: ApiKey
) -> None:
    run = waypoint("plan", "a trip somewhere nice", api=orchestrator.base_url, key=cli_key.key)
    assert run.returncode == 3, run.stdout + run.stderr
    trip = json.loads(
        waypoint("show", trip_id_of(run.stdout), "--json", api=orchestrator.base_url, key=cli_key.key).stdout
    )
    assert trip["status"] == "needs_input"
    assert {p["field"] for p in trip["problems"]} >= {"origin", "start_date", "budget"}
    assert "The request needs more input" in run.stdout
    for problem in trip["problems"]:
        assert f"  {problem['field']}: {problem['reason']}" in run.stdout
    assert "gate.failed" in event_types(run.stdout)

    as_json = waypoint("plan", "a trip somewhere nice", "--json", api=orchestrator.base_url, key=cli_key.key)
    assert as_json.returncode == 3
    document = json.loads(as_json.stdout)
    assert document["status"] == "needs_input"
    assert document["problems"] == trip["problems"]


def test_over_budget_exits_4_with_the_shortfall(orchestrator: ServiceProcess, cli_key: ApiKey) -> None:
    run = waypoint("plan", trip_query(budget=300), api=orchestrator.base_url, key=cli_key.key)
    assert run.returncode == 4, run.stdout + run.stderr
    trip = json.loads(
        waypoint("show", trip_id_of(run.stdout), "--json", api=orchestrator.base_url, key=cli_key.key).stdout
    )
    assert trip["status"] == "over_budget"
    shortfall = trip["itinerary"]["budget"]["shortfall_usd"]
    assert re.search(rf"Over budget by\s*│\s*{re.escape(money(shortfall))}", run.stdout), run.stdout


def test_an_unreachable_api_exits_6_and_says_how_to_retry_without_a_second_trip() -> None:
    run = waypoint("plan", trip_query(), api=f"http://127.0.0.1:{free_port()}", key="wpk_x_y")
    assert run.returncode == 6, run.stdout + run.stderr
    assert "did not answer POST /v1/trips" in run.stderr
    found = re.search(r"--idempotency-key (waypoint-cli-[0-9a-f]{32})", run.stderr)
    assert found is not None, run.stderr
    # Each try is in the progress log; no trip was ever shown.
    assert run.stdout.count("POST /v1/trips: no answer") == 3
    assert TRIP_LINE.search(run.stdout) is None


def test_no_key_is_a_usage_error_and_a_bad_key_prints_the_problem(orchestrator: ServiceProcess) -> None:
    missing = waypoint("show", "0" * 32, api=orchestrator.base_url, key=None)
    assert missing.returncode == 2
    assert "no API key" in missing.stderr
    assert "WAYPOINT_API_KEY" in missing.stderr

    bad = waypoint("show", "0" * 32, api=orchestrator.base_url, key="wpk_000000000000_nope")
    assert bad.returncode == 1
    assert "401 Unauthorized" in bad.stderr


def test_confirm_books_cancel_undoes_and_show_events_trace_read_the_trip(
    orchestrator: ServiceProcess, cli_key: ApiKey
) -> None:
    api = orchestrator.base_url
    planned = waypoint("plan", trip_query(), "--json", api=api, key=cli_key.key)
    assert planned.returncode == 0, planned.stderr
    trip = json.loads(planned.stdout)
    trip_id = trip["id"]
    assert trip["status"] == "planned"

    shown = waypoint("show", trip_id, api=api, key=cli_key.key)
    assert shown.returncode == 0
    assert f"trip {trip_id}  planned" in shown.stdout
    assert_itinerary_shown(shown.stdout, trip)

    # The raw stream, as the API sends it.
    raw = waypoint("events", trip_id, api=api, key=cli_key.key)
    assert raw.returncode == 0
    sent = read_sse(f"{api}/v1/trips/{trip_id}/events", auth=cli_key.headers)
    assert re.findall(r"^id: (\S+)$", raw.stdout, re.MULTILINE) == [e.id for e in sent]
    assert re.findall(r"^event: (\S+)$", raw.stdout, re.MULTILINE) == [e.event for e in sent]
    assert [json.loads(d) for d in re.findall(r"^data: (.*)$", raw.stdout, re.MULTILINE)] == [
        json.loads(e.data) for e in sent
    ]
    tail = waypoint("events", trip_id, "--json", "--last-event-id", sent[-3].id, api=api, key=cli_key.key)
    assert [json.loads(line)["id"] for line in tail.stdout.splitlines()] == [e.id for e in sent[-2:]]

    traced = waypoint("trace", trip_id, api=api, key=cli_key.key, JAEGER_UI_URL="http://jaeger.test:16686")
    assert traced.returncode == 0
    assert traced.stdout == f"http://jaeger.test:16686/trace/{trip['trace_id']}\n"

    confirmed = waypoint("confirm", trip_id, api=api, key=cli_key.key)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    booked = json.loads(waypoint("show", trip_id, "--json", api=api, key=cli_key.key).stdout)
    assert booked["status"] == "booked"
    assert {b["kind"] for b in booked["bookings"]} == {"flight", "hotel", "dinner"}
    # Only what the confirmation did is logged: the booking, not the planning again.
    assert event_types(confirmed.stdout)[0] == "trip.confirmed"
    assert event_types(confirmed.stdout).count("booking.made") == 3
    assert not {"router.decided", "plan.created", "itinerary.ready"} & set(event_types(confirmed.stdout))
    for booking in booked["bookings"]:
        assert booking["booking_id"] in confirmed.stdout
        assert booking["description"] in confirmed.stdout

    cancelled = waypoint("cancel", trip_id, "--json", api=api, key=cli_key.key)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    assert all(b["status"] == "cancelled" for b in json.loads(cancelled.stdout)["bookings"])
    assert waypoint("show", trip_id, api=api, key=cli_key.key).returncode == 8

    unknown = waypoint("show", "f" * 32, api=api, key=cli_key.key)
    assert unknown.returncode == 1
    assert "404 Not Found" in unknown.stderr


def test_plan_with_book_books_it(orchestrator: ServiceProcess, cli_key: ApiKey) -> None:
    run = waypoint("plan", trip_query(), "--book", api=orchestrator.base_url, key=cli_key.key)
    assert run.returncode == 0, run.stdout + run.stderr
    trip = json.loads(
        waypoint("show", trip_id_of(run.stdout), "--json", api=orchestrator.base_url, key=cli_key.key).stdout
    )
    assert trip["status"] == "booked"
    types = event_types(run.stdout)
    assert types.count("booking.made") == 3
    assert types[-1] == "trip.settled"
    assert "Bookings" in run.stdout


# -- retries and degradation ------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_fleet(harness: Harness) -> Iterator[tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey]]:
    """Tool servers of this module's own, whose faults a test sets, and an orchestrator on them."""
    with own_tool_servers(harness) as (redis, servers):
        orchestrator = harness.start("waypoint-orchestrator", orchestrator_env(redis.url, servers))
        try:
            yield orchestrator, servers, make_key(redis.url, "cli-faults")
        finally:
            orchestrator.stop()


def test_a_retried_search_and_a_degraded_forecast_are_shown_and_partial_exits_7(
    faulty_fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey],
) -> None:
    orchestrator, servers, key = faulty_fleet
    servers["mcp-weather"].admin("PUT", "/admin/faults", {"get_forecast": {"reject_rate": 1.0}})
    try:
        servers["mcp-flights"].admin("PUT", "/admin/faults", {"search_flights": {"fail_next": 1}})
        run = waypoint("plan", trip_query(days_ahead=60), api=orchestrator.base_url, key=key.key)
        assert run.returncode == 7, run.stdout + run.stderr
        trip = json.loads(
            waypoint("show", trip_id_of(run.stdout), "--json", api=orchestrator.base_url, key=key.key).stdout
        )
        assert trip["status"] == "partial"
        assert re.search(
            r"step\.retried\s+search_flights: search_flights failed \(.*injected.*\); try 2", run.stdout
        )
        assert re.search(r"step\.failed\s+get_forecast: .*injected rejection", run.stdout)
        degraded = trip["steps"][[s["id"] for s in trip["steps"]].index("get_forecast")]["degraded"]
        assert degraded
        assert "Itinerary" in run.stdout
        for warning in trip["warnings"]:
            assert warning in run.stdout

        # The live view: the retry on its step, then the degradation.
        servers["mcp-flights"].admin("PUT", "/admin/faults", {"search_flights": {"fail_next": 1}})
        env = environment(orchestrator.base_url, key.key, TERM="xterm-256color", NO_COLOR="1")
        env.pop("COLUMNS")
        code, screen = run_in_terminal(["plan", trip_query(days_ahead=95)], env)
        assert code == 7, screen
        assert "retry 1: " in screen  # the step's note while it is retried
        assert f"degraded: {degraded}" in screen
    finally:
        for server in servers.values():
            server.admin("PUT", "/admin/faults", {})


# -- on a terminal ----------------------------------------------------------------------------


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 180) -> tuple[int, str]:
    """Run the command on a pseudo-terminal (120 x 50): its exit code and all it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    proc = subprocess.Popen(
        [WAYPOINT, *args], stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def sgr_parameters(output: str) -> set[str]:
    """Every SGR (Select Graphic Rendition) parameter the output sets."""
    return {p for seq in re.findall(r"\x1b\[([0-9;]*)m", output) for p in seq.split(";") if p}


def test_a_terminal_gets_a_live_view_in_colour_unless_no_color(
    orchestrator: ServiceProcess, cli_key: ApiKey
) -> None:
    env = environment(orchestrator.base_url, cli_key.key, TERM="xterm-256color")
    env.pop("COLUMNS")
    code, screen = run_in_terminal(["plan", trip_query()], env)
    assert code == 0, screen
    assert "\x1b[2K" in screen or "\x1b[1A" in screen  # redrawn in place
    assert any(COLOUR.match(p) for p in sgr_parameters(screen)), repr(screen[:500])
    assert "budget use" in screen
    assert "search_flights" in screen
    assert "✓ succeeded" in screen
    assert "Itinerary" in screen

    code, plain = run_in_terminal(["plan", trip_query()], {**env, "NO_COLOR": "1"})
    assert code == 0, plain
    assert "\x1b[2K" in plain or "\x1b[1A" in plain  # still live
    assert not any(COLOUR.match(p) for p in sgr_parameters(plain)), sorted(sgr_parameters(plain))
    assert "Itinerary" in plain


# -- the first run after `make run` ----------------------------------------------------------


def test_after_the_fleet_starts_the_printed_command_plans_a_trip_with_the_saved_key(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    ports = {spec.port_variable: str(free_port()) for spec in FLEET}
    env = {
        **environment(None, None),
        **ports,
        "REDIS_PORT": str(free_port()),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    for name in ("REDIS_URL", "WAYPOINT_SERVICE_TOKEN", "WAYPOINT_SERVICE_TOKEN_FILE"):
        env.pop(name, None)
    fleet = subprocess.Popen(
        [str(BIN / "waypoint-fleet"), "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    port = int(ports["WAYPOINT_PORT"])
    saved = runtime / "waypoint" / f"api-key-{port}"
    try:
        assert fleet.stdout is not None
        lines: list[str] = []
        for line in fleet.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        text = "".join(lines)
        printed = re.search(r"^\s+(\S*waypoint plan .*)$", text, re.MULTILINE)
        assert printed is not None, text
        key = re.search(r"api key\s+(wpk_\S+)", text)
        assert key is not None
        assert saved.read_text() == key.group(1)
        assert saved.stat().st_mode & 0o077 == 0
        assert saved.parent.stat().st_mode & 0o077 == 0

        # The command as printed (run from the repository, like `make run`), with no key given;
        # only the query is today's, so that its month is never in the past.
        argv = shlex.split(printed.group(1))
        assert argv[:2] == [".venv/bin/waypoint", "plan"]
        assert argv[3:] == [
            "--api",
            f"http://127.0.0.1:{port}",
        ]
        run = subprocess.run(
            [argv[0], "plan", trip_query(), *argv[3:]],
            cwd=ROOT,
            env={**environment(None, None), "XDG_RUNTIME_DIR": str(runtime)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "trip.settled" in event_types(run.stdout)
        assert "Itinerary" in run.stdout
        assert "Within budget, left" in run.stdout

        # A key file that others could read is not used: no key, a usage error.
        saved.parent.chmod(0o755)
        try:
            exposed = subprocess.run(
                [argv[0], "show", trip_id_of(run.stdout), *argv[3:]],
                cwd=ROOT,
                env={**environment(None, None), "XDG_RUNTIME_DIR": str(runtime)},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            saved.parent.chmod(0o700)
        assert exposed.returncode == 2, exposed.stdout + exposed.stderr
        assert "no API key" in exposed.stderr
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGINT)
            try:
                fleet.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(fleet.pid, signal.SIGKILL)
                fleet.wait()
    assert not saved.exists()
