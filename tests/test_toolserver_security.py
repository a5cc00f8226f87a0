"""The tool servers' edge: the service token, Host/Origin on /admin, booking owners, random
booking ids, no held streams and a request-body limit, against real processes over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from tests.otlp import OtlpReceiver
from tests.support import (
    SERVICE_TOKEN,
    Harness,
    RedisServer,
    ServiceProcess,
    error_text,
    mcp_client,
    structured,
    wait_until,
)
from waypoint_common import keys
from waypoint_common.bookings import OWNER_META_KEY
from waypoint_common.retries import ToolRejected, ToolUnavailable
from waypoint_common.settings import ServiceSettings
from waypoint_orchestrator.toolclient import ToolClient

OWNER_A = "tenant-a"
OWNER_B = "tenant-b"
MIB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def refusal(result: Any, tool: str) -> str:
    """A tool error's message, without the SDK's "Error executing tool <tool>: " in front."""
    return error_text(result).removeprefix(f"Error executing tool {tool}: ")


def rss(service: ServiceProcess) -> int:
    return int(psutil.Process(service.proc.pid).memory_info().rss)


@pytest.fixture(scope="module")
def flights(redis_server: RedisServer, harness: Harness) -> Iterator[ServiceProcess]:
    """A flights server of its own, so memory figures are this module's alone."""
    service = harness.start("mcp-flights", {"REDIS_URL": redis_server.url})
    yield service
    service.stop()


async def offer_on(
    url: str, origin: str, destination: str, offset: int, passengers: int = 1
) -> dict[str, Any]:
    async with mcp_client(url) as client:
        found = structured(
            await client.call_tool(
                "search_flights",
                {
                    "origin": origin,
                    "destination": destination,
                    "depart_date": day(offset),
                    "passengers": passengers,
                },
            )
        )
    offer: dict[str, Any] = found["offers"][0]
    return offer


async def book_flight(url: str, owner: str | None, offer_id: str, request_id: str) -> Any:
    async with mcp_client(url, owner=owner) as client:
        return await client.call_tool(
            "book_flight", {"offer_id": offer_id, "passengers": 1, "request_id": request_id}
        )


async def written_keys(redis: Redis) -> set[str]:
    found: set[str] = set()
    patterns = (keys.booking("*", "*"), keys.capacity("*", "*"), keys.write_record("*", "*"))
    for pattern in (*patterns, keys.write_claim("*", "*")):
        found |= {k async for k in redis.scan_iter(match=pattern, count=1000)}
    return found


# --- The service token -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/mcp", LIST_TOOLS), ("GET", "/admin/faults", None), ("PUT", "/admin/faults", {})],
)
def test_mcp_and_admin_need_the_service_token(
    servers: dict[str, ServiceProcess], method: str, path: str, body: Any
) -> None:
    url = f"{servers['mcp-hotels'].base_url}{path}"
    missing = httpx2.request(method, url, json=body, headers=MCP_HEADERS, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in (
        f"Bearer {SERVICE_TOKEN}x",
        f"Bearer {SERVICE_TOKEN[:-1]}",
        f"Basic {SERVICE_TOKEN}",
        "Bearer",
    ):
        refused = httpx2.request(
            method, url, json=body, headers={**MCP_HEADERS, "Authorization": wrong}, timeout=5
        )
        assert refused.status_code == 401, wrong
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert SERVICE_TOKEN not in refused.text
    right = httpx2.request(method, url, json=body, headers={**MCP_HEADERS, **AUTH}, timeout=5)
    assert right.status_code == 200, right.text


def test_probes_stay_open(servers: dict[str, ServiceProcess]) -> None:
    for service in servers.values():
        assert httpx2.get(f"{service.base_url}/healthz", timeout=5).status_code == 200
        assert httpx2.get(f"{service.base_url}/readyz", timeout=5).status_code == 200


async def test_an_mcp_client_without_the_token_gets_nothing(servers: dict[str, ServiceProcess]) -> None:
    weather = servers["mcp-weather"]
    args = {"location": "FTE", "start_date": day(3), "end_date": day(4)}
    calls = weather.admin("GET", "/admin/stats")["calls"].get("get_forecast", 0)
    with pytest.raises(Exception):  # noqa: B017, PT011 - how the SDK reports a 401 is its own business
        async with mcp_client(weather.mcp_url, token="not-the-token-at-all-1234") as client:
            await client.call_tool("get_forecast", args)
    assert weather.admin("GET", "/admin/stats")["calls"].get("get_forecast", 0) == calls
    async with mcp_client(weather.mcp_url) as client:
        structured(await client.call_tool("get_forecast", args))
    assert weather.admin("GET", "/admin/stats")["calls"]["get_forecast"] == calls + 1


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "WAYPOINT_SERVICE_TOKEN"),
        ("changeme", "WAYPOINT_SERVICE_TOKEN"),
        ("short-token", "WAYPOINT_SERVICE_TOKEN"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "WAYPOINT_SERVICE_TOKEN"),
    ],
    ids=["missing", "placeholder", "short", "one-letter"],
)
def test_a_tool_server_in_production_refuses_to_start_without_a_real_token(
    redis_server: RedisServer, harness: Harness, token: str | None, message: str
) -> None:
    service = harness.spawn(
        "mcp-flights",
        {
            "REDIS_URL": redis_server.url,
            "WAYPOINT_ENVIRONMENT": "production",
            "WAYPOINT_SERVICE_TOKEN": token or "",
        },
    )
    try:
        code = service.proc.wait(timeout=30)
    finally:
        service.stop()
    assert code != 0
    assert message in service.log_path.read_text()


def test_a_tool_server_in_production_starts_with_a_token_file(
    redis_server: RedisServer, harness: Harness, tmp_path: Path
) -> None:
    secret = tmp_path / "service-token"
    secret.write_text(f"{SERVICE_TOKEN}\n")
    service = harness.start(
        "mcp-weather",
        {
            "REDIS_URL": redis_server.url,
            "WAYPOINT_ENVIRONMENT": "production",
            "WAYPOINT_SERVICE_TOKEN": "",
            "WAYPOINT_SERVICE_TOKEN_FILE": str(secret),
        },
    )
    try:
        assert httpx2.get(f"{service.base_url}/admin/faults", timeout=5).status_code == 401
        assert httpx2.get(f"{service.base_url}/admin/faults", headers=AUTH, timeout=5).status_code == 200
    finally:
        service.stop()
    assert SERVICE_TOKEN not in service.log_path.read_text()


# --- Host and Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Host": "evil.example:80"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://evil.example:8101"}, 403),
    ],
)
def test_admin_refuses_dns_rebinding_headers(
    faulty_flights: ServiceProcess, headers: dict[str, str], status: int
) -> None:
    """A page in a browser that rebinds its name to 127.0.0.1 sends its own Host and Origin."""
    base = faulty_flights.base_url
    plan = {"*": {"error_rate": 1.0}}
    read = httpx2.get(f"{base}/admin/faults", headers={**AUTH, **headers}, timeout=5)
    assert read.status_code == status
    write = httpx2.put(f"{base}/admin/faults", json=plan, headers={**AUTH, **headers}, timeout=5)
    assert write.status_code == status
    assert faulty_flights.admin("GET", "/admin/faults") == {}
    # /mcp answers the same (the SDK's own check, with the same hosts and statuses).
    mcp = httpx2.post(f"{base}/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, **AUTH, **headers}, timeout=5)
    assert mcp.status_code == status
    local = httpx2.get(
        f"{base}/admin/faults",
        headers={
            **AUTH,
            "Host": f"localhost:{faulty_flights.port}",
            "Origin": f"http://127.0.0.1:{faulty_flights.port}",
        },
        timeout=5,
    )
    assert local.status_code == 200


# --- Owners --------------------------------------------------------------------------------------


async def test_another_owner_cannot_get_or_cancel_a_booking(
    servers: dict[str, ServiceProcess], redis: Redis
) -> None:
    url = servers["mcp-flights"].mcp_url
    offer = await offer_on(url, "ORD", "MIA", 70)
    booking = structured(await book_flight(url, OWNER_A, offer["offer_id"], rid()))
    booking_id = booking["booking_id"]
    seats_key = keys.capacity(f"flight:{offer['offer_id']}", "seats")
    seats = await redis.get(seats_key)
    forged = re.sub(r"-[0-9a-f]{32}-", f"-{'0' * 32}-", booking_id)
    async with mcp_client(url, owner=OWNER_B) as b, mcp_client(url, owner=None) as nobody:
        never_issued = refusal(
            await b.call_tool("get_flight_booking", {"booking_id": forged}), "get_flight_booking"
        )
        answers = [
            await b.call_tool("get_flight_booking", {"booking_id": booking_id}),
            await b.call_tool("cancel_flight_booking", {"booking_id": booking_id, "request_id": rid()}),
            await nobody.call_tool("get_flight_booking", {"booking_id": booking_id}),
            await nobody.call_tool("cancel_flight_booking", {"booking_id": booking_id, "request_id": rid()}),
        ]
    # Exactly what an id that was never issued gets: nothing tells B the booking exists.
    assert never_issued == f"booking_id: unknown booking {forged!r}"
    for answer, tool in zip(answers, ["get_flight_booking", "cancel_flight_booking"] * 2, strict=True):
        assert refusal(answer, tool) == never_issued.replace(forged, booking_id)
    async with mcp_client(url, owner=OWNER_A) as a:
        mine = structured(await a.call_tool("get_flight_booking", {"booking_id": booking_id}))
    assert mine["status"] == "confirmed"
    assert await redis.get(seats_key) == seats


async def test_another_owner_reusing_a_request_id_never_gets_that_booking(
    servers: dict[str, ServiceProcess], redis: Redis
) -> None:
    url = servers["mcp-flights"].mcp_url
    offer = await offer_on(url, "ORD", "MIA", 71)
    request_id = rid()
    first = structured(await book_flight(url, OWNER_A, offer["offer_id"], request_id))
    before = await written_keys(redis)
    stolen = await book_flight(url, OWNER_B, offer["offer_id"], request_id)
    text = refusal(stolen, "book_flight")
    assert text.startswith("request_id: already used")
    assert first["booking_id"] not in text
    assert stolen.structured_content is None
    assert await written_keys(redis) == before
    replay = structured(await book_flight(url, OWNER_A, offer["offer_id"], request_id))
    assert replay == first


async def test_booking_ids_are_random_and_replays_keep_theirs(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-flights"].mcp_url
    offer = await offer_on(url, "ORD", "MIA", 72)
    request_id = rid()
    first = structured(await book_flight(url, OWNER_A, offer["offer_id"], request_id))
    other = structured(await book_flight(url, OWNER_A, offer["offer_id"], rid()))
    replays = await asyncio.gather(
        *(book_flight(url, OWNER_A, offer["offer_id"], request_id) for _ in range(5))
    )
    assert first["booking_id"] != other["booking_id"]
    assert {structured(r)["booking_id"] for r in replays} == {first["booking_id"]}
    for booking in (first, other):
        match = re.fullmatch(r"FB-([0-9a-f]{32})-(.+)", booking["booking_id"])
        assert match is not None, booking["booking_id"]
        assert match.group(2) == offer["offer_id"]
    # The old scheme derived the id from the request id; nothing of it is left.
    derived = hashlib.sha256(request_id.encode()).hexdigest()[:10]
    assert derived not in first["booking_id"]


async def test_names_are_shown_only_to_the_owner(servers: dict[str, ServiceProcess]) -> None:
    guest = "Hedy Kiesler Markey"
    hotels_url = servers["mcp-hotels"].mcp_url
    tables_url = servers["mcp-restaurants"].mcp_url
    async with mcp_client(hotels_url, owner=OWNER_A) as a:
        hotel = structured(
            await a.call_tool(
                "search_hotels",
                {"location": "Vienna", "check_in": day(80), "check_out": day(82), "guests": 1},
            )
        )["hotels"][0]
        stay = structured(
            await a.call_tool(
                "book_hotel",
                {
                    "hotel_id": hotel["hotel_id"],
                    "check_in": day(80),
                    "check_out": day(82),
                    "guests": 1,
                    "guest_name": guest,
                    "request_id": rid(),
                },
            )
        )
        assert (
            structured(await a.call_tool("get_hotel_booking", {"booking_id": stay["booking_id"]}))[
                "guest_name"
            ]
            == guest
        )
    async with mcp_client(tables_url, owner=OWNER_A) as a:
        place = structured(
            await a.call_tool("search_restaurants", {"location": "Vienna", "date": day(81), "party_size": 2})
        )["restaurants"][0]
        table = structured(
            await a.call_tool(
                "reserve_table",
                {
                    "restaurant_id": place["restaurant_id"],
                    "date": day(81),
                    "time": place["free_slots"][0],
                    "party_size": 2,
                    "name": guest,
                    "request_id": rid(),
                },
            )
        )
        assert (
            structured(await a.call_tool("get_reservation", {"reservation_id": table["reservation_id"]}))[
                "name"
            ]
            == guest
        )
    async with (
        mcp_client(hotels_url, owner=OWNER_B) as b_hotels,
        mcp_client(tables_url, owner=OWNER_B) as b_tables,
    ):
        seen = [
            await b_hotels.call_tool("get_hotel_booking", {"booking_id": stay["booking_id"]}),
            await b_hotels.call_tool(
                "cancel_hotel_booking", {"booking_id": stay["booking_id"], "request_id": rid()}
            ),
            await b_tables.call_tool("get_reservation", {"reservation_id": table["reservation_id"]}),
            await b_tables.call_tool(
                "cancel_reservation", {"reservation_id": table["reservation_id"], "request_id": rid()}
            ),
        ]
    for answer in seen:
        assert "unknown booking" in error_text(answer)
        assert answer.structured_content is None
        assert "Kiesler" not in repr(answer)


@pytest.mark.parametrize(
    ("server", "tool"),
    [("mcp-flights", "book_flight"), ("mcp-hotels", "book_hotel"), ("mcp-restaurants", "reserve_table")],
)
async def test_a_write_without_an_owner_is_refused_naming_the_field(
    servers: dict[str, ServiceProcess], redis: Redis, server: str, tool: str
) -> None:
    url = servers[server].mcp_url
    async with mcp_client(url) as client:
        if tool == "book_flight":
            offer = (await offer_on(url, "ORD", "MIA", 73))["offer_id"]
            args: dict[str, Any] = {"offer_id": offer, "passengers": 1}
        elif tool == "book_hotel":
            found = structured(
                await client.call_tool(
                    "search_hotels",
                    {"location": "Vienna", "check_in": day(83), "check_out": day(84), "guests": 1},
                )
            )
            args = {
                "hotel_id": found["hotels"][0]["hotel_id"],
                "check_in": day(83),
                "check_out": day(84),
                "guests": 1,
                "guest_name": "Ada",
            }
        else:
            found = structured(
                await client.call_tool(
                    "search_restaurants", {"location": "Vienna", "date": day(84), "party_size": 2}
                )
            )
            place = found["restaurants"][0]
            args = {
                "restaurant_id": place["restaurant_id"],
                "date": day(84),
                "time": place["free_slots"][0],
                "party_size": 2,
                "name": "Ada",
            }
    before = await written_keys(redis)
    async with mcp_client(url, owner=None) as nobody, mcp_client(url, owner="   ") as blank:
        refused = await nobody.call_tool(tool, {**args, "request_id": rid()})
        malformed = await blank.call_tool(tool, {**args, "request_id": rid()})
    assert refusal(refused, tool).startswith("owner: ")
    assert "_meta" in refusal(refused, tool)
    assert "waypoint/owner" in refusal(refused, tool)
    assert refusal(malformed, tool).startswith("owner: ")
    assert await written_keys(redis) == before


async def test_the_owner_and_the_trace_context_both_reach_the_server(
    redis_server: RedisServer, harness: Harness
) -> None:
    """The SDK injects `traceparent` into the same `_meta` the owner travels in; both must arrive."""
    with OtlpReceiver() as receiver:
        service = harness.start(
            "mcp-flights",
            {"REDIS_URL": redis_server.url, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
        )
        try:
            tracer = TracerProvider().get_tracer("test")
            offer = await offer_on(service.mcp_url, "ORD", "MIA", 74)
            with tracer.start_as_current_span("caller") as caller:
                trace_id = format(caller.get_span_context().trace_id, "032x")
                booked = structured(await book_flight(service.mcp_url, OWNER_A, offer["offer_id"], rid()))
            assert booked["status"] == "confirmed"  # so the owner arrived: a write needs one

            def joined() -> bool:
                return any(
                    s.trace_id == trace_id and s.name == "tools/call book_flight" for s in receiver.spans()
                )

            wait_until(joined, 20, "the server's tools/call span in the caller's trace")
            exported = [*receiver.spans(), *receiver.logs()]
            assert all(SERVICE_TOKEN not in repr(item) for item in exported)
        finally:
            service.stop()


# --- Streams -------------------------------------------------------------------------------------


def test_get_and_delete_on_mcp_are_405(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-restaurants"].mcp_url
    for method in ("GET", "DELETE"):
        response = httpx2.request(method, url, headers={"Accept": "text/event-stream", **AUTH}, timeout=5)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"


async def test_a_thousand_get_streams_hold_nothing(flights: ServiceProcess) -> None:
    before = rss(flights)
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=0)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.get(flights.mcp_url, headers={"Accept": "text/event-stream", **AUTH}) for _ in range(1000))
        )
    # Every answer is a refusal (a held stream would be a 200 that never ends).
    assert {a.status_code for a in answers} == {405}
    # Nothing is held: the process is where it was, give or take allocator noise.
    assert rss(flights) - before < 25 * MIB, (before, rss(flights))
    async with mcp_client(flights.mcp_url) as client:
        assert (await client.list_tools()).tools


async def test_a_session_based_client_still_works(servers: dict[str, ServiceProcess]) -> None:
    """An initialize-handshake client (the older protocol) is served, with GET refused."""
    async with mcp_client(servers["mcp-flights"].mcp_url, mode="legacy") as client:
        found = structured(
            await client.call_tool(
                "search_flights",
                {"origin": "BOS", "destination": "DEN", "depart_date": day(41), "passengers": 1},
            )
        )
    assert found["offers"]


# --- Body size ------------------------------------------------------------------------------------


async def _stream_body(
    port: int, method: str, path: str, total: int, chunk: int = 64 * 1024
) -> tuple[str, int]:
    """POST `total` bytes in chunked encoding, lazily, until the server answers; (status line, bytes sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        f"Authorization: Bearer {SERVICE_TOKEN}\r\n\r\n"
    )
    writer.write(head.encode())
    frame = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
    answer = asyncio.ensure_future(reader.readline())
    sent = 0
    try:
        while sent < total and not answer.done():
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), timeout=5)
            sent += chunk
            # Let the reader take in an answer before writing more: data written after the
            # server's answer and close makes its kernel reset the connection, and a reset can
            # discard the answer before it is read.
            await asyncio.sleep(0)
    except (ConnectionError, TimeoutError):
        pass  # the server stopped reading: the answer is what matters
    try:
        status = (await asyncio.wait_for(answer, timeout=10)).decode().strip()
    finally:
        writer.close()
    return status, sent


@pytest.mark.parametrize(("method", "path"), [("POST", "/mcp"), ("PUT", "/admin/faults")])
async def test_a_streamed_100_mb_body_is_refused_early(
    flights: ServiceProcess, method: str, path: str
) -> None:
    before = rss(flights)
    status, sent = await _stream_body(flights.port, method, path, 100 * 1000 * 1000)
    assert status.startswith("HTTP/1.1 413"), status
    # Refused after about 1 MiB; what the kernel's socket buffers took in is all that left the client.
    assert sent < 20 * MIB, sent
    assert rss(flights) - before < 25 * MIB, (before, rss(flights))
    async with mcp_client(flights.mcp_url) as client:
        assert (await client.list_tools()).tools


def test_a_declared_oversized_body_is_refused(flights: ServiceProcess) -> None:
    response = httpx2.post(
        flights.mcp_url,
        content=b" " * (MIB + 1),
        headers={**MCP_HEADERS, **AUTH},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"
    small = httpx2.post(flights.mcp_url, json=LIST_TOOLS, headers={**MCP_HEADERS, **AUTH}, timeout=10)
    assert small.status_code == 200


# --- The orchestrator's client ----------------------------------------------------------------


async def test_the_orchestrators_client_sends_the_token_and_the_owner(
    servers: dict[str, ServiceProcess],
) -> None:
    """`ToolClient` (what the agents call through) against a real server that answers GET with 405."""
    url = servers["mcp-flights"].mcp_url
    offer = await offer_on(url, "ORD", "MIA", 75)
    client = ToolClient("mcp-flights", url, token=SecretStr(SERVICE_TOKEN))
    try:
        args = {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
        booked = await client.call("book_flight", args, meta={OWNER_META_KEY: OWNER_A})
        again = await client.call("book_flight", args, meta={OWNER_META_KEY: OWNER_A})
        with pytest.raises(ToolRejected, match="owner"):
            await client.call("book_flight", {**args, "request_id": rid()})
    finally:
        await client.aclose()
    assert again == booked
    async with mcp_client(url, owner=OWNER_A) as a:
        assert structured(await a.call_tool("get_flight_booking", {"booking_id": booked["booking_id"]}))


async def test_the_orchestrators_client_says_when_its_token_is_refused(
    servers: dict[str, ServiceProcess], caplog: pytest.LogCaptureFixture
) -> None:
    client = ToolClient("mcp-weather", servers["mcp-weather"].mcp_url, token=SecretStr("x" + SERVICE_TOKEN))
    try:
        with pytest.raises(ToolUnavailable):
            await client.call("get_forecast", {"location": "FTE", "start_date": day(3), "end_date": day(4)})
    finally:
        await client.aclose()
    assert any("refused the service token" in r.getMessage() for r in caplog.records)
    assert all(SERVICE_TOKEN not in r.getMessage() for r in caplog.records)


# --- The setting ----------------------------------------------------------------------------------


def test_the_service_token_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYPOINT_SERVICE_TOKEN", raising=False)
    monkeypatch.delenv("WAYPOINT_SERVICE_TOKEN_FILE", raising=False)
    assert ServiceSettings().service_token is None
    assert ServiceSettings(service_token="").service_token is None
    assert "WAYPOINT_SERVICE_TOKEN" in (ServiceSettings(environment="production").startup_problem() or "")

    settings = ServiceSettings(service_token=SERVICE_TOKEN, environment="production")
    assert settings.startup_problem() is None
    assert SERVICE_TOKEN not in repr(settings)
    assert SERVICE_TOKEN not in settings.model_dump_json()

    for weak in ("changeme", "secret", "0123456789abcde", "xxxxxxxxxxxxxxxxxxxxxxxx", f" {SERVICE_TOKEN}"):
        with pytest.raises(ValidationError, match="WAYPOINT_SERVICE_TOKEN"):
            ServiceSettings(service_token=weak)

    secret = tmp_path / "token"
    secret.write_text(f"{SERVICE_TOKEN}\n")
    from_file = ServiceSettings(service_token_file=str(secret))
    assert from_file.service_token is not None
    assert from_file.service_token.get_secret_value() == SERVICE_TOKEN
    with pytest.raises(ValidationError, match="not both"):
        ServiceSettings(service_token=SERVICE_TOKEN, service_token_file=str(secret))
    with pytest.raises(ValidationError, match="WAYPOINT_SERVICE_TOKEN_FILE"):
        ServiceSettings(service_token_file=str(tmp_path / "missing"))
