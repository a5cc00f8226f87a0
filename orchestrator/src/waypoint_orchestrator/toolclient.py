"""One client per tool server, spreading calls over its replicas, shared by every agent and worker.

A tool server's name (`mcp-flights` in compose, a headless Service in Kubernetes) stands for
every replica's address: `ToolClient` resolves it (`replicas.Resolver`), keeps one MCP
connection per address, and sends each call to the replica with the fewest calls in flight
(ties to the one with the fewest calls so far: round robin when all are idle). It resolves the
name again every few seconds, so a new replica gets calls within seconds and a removed one is
dropped; a replica that cannot be reached is ejected for a cool-down, so the caller's retry
goes to another one (request ids make a retried write safe). Calls per replica are a metric.

An `mcp.Client` must be entered and left in one task, and a broken connection kills it; so each
connection lives in a task of its own and a new one starts after a failure. Failures come out
as `ToolRejected` (the tool said no: final) or `ToolUnavailable` (worth retrying); this class
never retries by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx2
from jsonschema.exceptions import ValidationError as JsonSchemaValidationError
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import Tool
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic import SecretStr

from waypoint_common.errors import CircuitOpen, MalformedResult
from waypoint_common.resilience import STATE_VALUES, BreakerState, CircuitBreaker, RetryBudget
from waypoint_common.retries import ToolRejected, ToolUnavailable
from waypoint_common.serviceauth import bearer_header
from waypoint_common.telemetry import propagate_mcp_context
from waypoint_orchestrator.mcpclient import CompiledValidationClient
from waypoint_orchestrator.replicas import Resolver

log = logging.getLogger(__name__)
R = TypeVar("R")
meter = metrics.get_meter("waypoint.orchestrator")
BREAKER_OPENINGS = meter.create_counter(
    "waypoint.breaker.openings", unit="{opening}", description="Circuit breaker openings by tool server"
)
REPLICA_CALLS = meter.create_counter(
    "waypoint.tool.replica_calls", unit="{call}", description="Tool calls by tool server replica"
)
REPLICA_EJECTIONS = meter.create_counter(
    "waypoint.tool.replica_ejections",
    unit="{ejection}",
    description="Replicas ejected after a failure to connect",
)
_BREAKERS: list[CircuitBreaker] = []


def _observe_breakers(_: CallbackOptions) -> list[Observation]:
    return [Observation(STATE_VALUES[b.state], {"server.name": b.name}) for b in _BREAKERS]


meter.create_observable_gauge(
    "waypoint.breaker.state",
    callbacks=[_observe_breakers],
    description="Circuit breaker state by tool server: 0 closed, 1 half-open, 2 open",
)


def _breaker_changed(server: str, state: BreakerState) -> None:
    log.warning("circuit breaker %s", state, extra={"server": server, "breaker_state": state})
    if state == "open":
        BREAKER_OPENINGS.add(1, {"server.name": server})


def _kind(exc: BaseException) -> str:
    """The failure's type, looking inside exception groups (anyio raises them) for the cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


class _Connection:
    """One MCP connection to one replica's address, owned by a task of its own."""

    def __init__(self, client: ToolClient, address: str) -> None:
        self.owner_client = client
        self.address = address
        self.url = client.url_for(address)
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        async with self._lock:
            if self._client is not None and self._owner is not None and not self._owner.done():
                return self._client
            await self._close_owner()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._owner = asyncio.create_task(
                self._own(ready), name=f"mcp-connection-{self.owner_client.server}-{self.address}"
            )
            try:
                self._client = await ready
            except Exception as exc:
                # The message reaches the trip's warnings (clients): no internal address or repr.
                log.warning("cannot connect to %s at %s: %r", self.owner_client.server, self.address, exc)
                raise _Unreachable(
                    self.owner_client.server, "connect", f"cannot connect ({_kind(exc)})"
                ) from exc
            return self._client

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        """Holds the connection open until told to stop or until it breaks."""
        client = self.owner_client
        try:
            async with (
                httpx2.AsyncClient(
                    headers={**bearer_header(client.token), "Host": client.authority},
                    timeout=httpx2.Timeout(client.timeout + 5),
                    event_hooks={"request": [propagate_mcp_context], "response": [client.note_response]},
                ) as http,
                CompiledValidationClient(
                    streamable_http_client(self.url, http_client=http), read_timeout_seconds=client.timeout
                ) as c,
            ):
                ready.set_result(c)
                await self._stop.wait()
        except BaseException as exc:  # the owner task reports and ends; callers reconnect
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            else:
                log.warning("connection to %s at %s closed: %r", client.server, self.address, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def reset(self) -> None:
        async with self._lock:
            await self._close_owner()

    async def _close_owner(self) -> None:
        if self._owner is None:
            return
        self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._owner, timeout=5)
        self._owner = None
        self._client = None


class _Unreachable(ToolUnavailable):
    """The replica could not be connected to (it is ejected for a while)."""


@dataclass
class _Replica:
    address: str
    connection: _Connection
    in_flight: int = 0
    calls: int = 0
    ejected_until: float = 0.0


class ToolClient:
    """Calls the tools of one MCP server, over all its replicas."""

    def __init__(
        self,
        server: str,
        url: str,
        *,
        timeout: float = 10.0,
        breaker_failures: int = 5,
        breaker_cooldown: float = 10.0,
        retry_ratio: float = 0.5,
        retry_floor: float = 2.0,
        token: SecretStr | None = None,
        resolver: Resolver | None = None,
        resolve_every: float = 5.0,
        eject_for: float = 10.0,
    ) -> None:
        self.server = server
        self.url = url
        parts = urlsplit(url)
        self._scheme, self._host, self._path = parts.scheme, parts.hostname or "", parts.path
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.authority = parts.netloc.rsplit("@", 1)[-1]  # the Host header every replica is sent
        self.timeout = timeout
        self.token = token  # the service credential, sent as a header on every MCP request
        self.breaker = CircuitBreaker(
            server, failures=breaker_failures, cooldown=breaker_cooldown, on_change=_breaker_changed
        )
        self.retry_budget = RetryBudget(ratio=retry_ratio, floor=retry_floor)
        self._retry_after: tuple[float, float] | None = None  # (when seen, seconds asked)
        _BREAKERS.append(self.breaker)
        self._resolver = resolver or Resolver()
        self._resolve_every = resolve_every
        self._eject_for = eject_for
        self._replicas: dict[str, _Replica] = {}
        self._resolved_at = -float("inf")
        self._resolving = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()  # connections of dropped replicas, closing

    def url_for(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{self._scheme}://{host}:{self._port}{self._path}"

    def replica_calls(self) -> dict[str, int]:
        """Calls sent to each replica's address so far (the replicas resolved now)."""
        return {address: r.calls for address, r in self._replicas.items()}

    async def _refresh(self) -> None:
        """Resolve the server's name again when the last answer is old: new addresses become
        replicas, vanished ones are dropped (their connections closed)."""
        if time.monotonic() - self._resolved_at < self._resolve_every and self._replicas:
            return
        async with self._resolving:
            if time.monotonic() - self._resolved_at < self._resolve_every and self._replicas:
                return
            try:
                addresses = await self._resolver.resolve(self._host, self._port)
            except OSError as exc:
                if self._replicas:  # keep the last known replicas while the resolver is down
                    log.warning(
                        "cannot resolve %s, keeping %d replica(s): %r", self._host, len(self._replicas), exc
                    )
                    self._resolved_at = time.monotonic()
                    return
                raise _Unreachable(self.server, "resolve", "cannot resolve the server's name") from exc
            self._resolved_at = time.monotonic()
            for address in addresses:
                if address not in self._replicas:
                    self._replicas[address] = _Replica(address, _Connection(self, address))
            for address in [a for a in self._replicas if a not in addresses]:
                gone = self._replicas.pop(address)
                closing = asyncio.create_task(gone.connection.reset(), name=f"close-{self.server}-{address}")
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    def _pick(self) -> _Replica:
        """The replica with the fewest calls in flight (then the fewest calls): ejected ones only
        when every replica is ejected."""
        now = time.monotonic()
        replicas = list(self._replicas.values())
        live = [r for r in replicas if r.ejected_until <= now] or replicas
        return min(live, key=lambda r: (r.in_flight, r.calls))

    async def note_response(self, response: Any) -> None:
        """httpx2 response hook: remember a 429/503's `Retry-After` (seconds) for the failing call;
        say plainly when the server refuses our service token (the MCP client reports only
        "Server returned an error response")."""
        if response.status_code == 401:
            log.error(
                "%s refused the service token (401): the orchestrator and the tool servers must share "
                "WAYPOINT_SERVICE_TOKEN",
                self.server,
                extra={"server": self.server},
            )
        if response.status_code in (429, 503):
            value = response.headers.get("retry-after", "")
            try:
                self._retry_after = (time.monotonic(), max(0.0, float(value)))
            except ValueError:
                self._retry_after = None

    def _asked_to_wait(self) -> float | None:
        seen = self._retry_after
        if seen is None or time.monotonic() - seen[0] > 5:
            return None
        self._retry_after = None
        return seen[1]

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        read_timeout: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call a tool on one replica and return its structured result (or fail fast while the
        breaker is open)."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise CircuitOpen(self.server, tool, exc.retry_in) from exc
        try:
            result = await self._on_a_replica(
                tool,
                lambda c: c.call_tool(
                    tool,
                    arguments,
                    read_timeout_seconds=read_timeout or self.timeout,
                    meta=meta,  # type: ignore[arg-type]
                ),
            )
        except ToolUnavailable:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content).strip()
            raise ToolRejected(self.server, tool, text.removeprefix(f"Error executing tool {tool}: "))
        if result.structured_content is None:
            raise ToolRejected(self.server, tool, "no structured result")
        return dict(result.structured_content)

    async def list_tools(self) -> list[Tool]:
        """The server's tools (`tools/list`), with their input schemas and annotations."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise CircuitOpen(self.server, "tools/list", exc.retry_in) from exc
        try:
            listed = await self._on_a_replica("tools/list", lambda c: c.list_tools())
        except ToolUnavailable:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return list(listed.tools)

    async def _on_a_replica(self, what: str, request: Callable[[Client], Awaitable[R]]) -> R:
        await self._refresh()
        replica = self._pick()
        replica.in_flight += 1
        replica.calls += 1
        REPLICA_CALLS.add(1, {"server.name": self.server, "server.address": replica.address})
        try:
            client = await replica.connection.get()
            return await request(client)
        except _Unreachable:
            self._eject(replica)
            raise
        except MCPError as exc:
            # JSON-RPC errors are the server's or the transport's trouble (internal error,
            # timeout, connection closed), not a verdict on the arguments: worth retrying.
            raise ToolUnavailable(
                self.server,
                what,
                f"{exc.error.message} (code {exc.error.code})",
                retry_after=self._asked_to_wait(),
            ) from exc
        except RuntimeError as exc:
            if isinstance(exc.__cause__, JsonSchemaValidationError):
                # The SDK's output-schema check refused the answer: the replica answered, just not
                # in its published contract. Final (retrying elsewhere asks the same code), and no
                # reason to eject the replica or reset the connection.
                raise MalformedResult(self.server, what, str(exc)) from exc
            await self._transport_failure(replica, what, exc)
        except Exception as exc:
            await self._transport_failure(replica, what, exc)
        finally:
            replica.in_flight -= 1

    async def _transport_failure(self, replica: _Replica, what: str, exc: Exception) -> NoReturn:
        """The connection is gone (refused, reset, read timeout): reconnect on the next call,
        and send the next calls elsewhere for a while (an outlier)."""
        self._eject(replica)
        await replica.connection.reset()
        log.warning("transport failure calling %s on %s: %r", what, self.server, exc)
        raise ToolUnavailable(self.server, what, f"transport failure ({_kind(exc)})") from exc

    def _eject(self, replica: _Replica) -> None:
        """No calls to this replica for a while (unless every replica is ejected)."""
        replica.ejected_until = time.monotonic() + self._eject_for
        REPLICA_EJECTIONS.add(1, {"server.name": self.server})

    async def aclose(self) -> None:
        for replica in list(self._replicas.values()):
            await replica.connection.reset()
        self._replicas.clear()
        if self.breaker in _BREAKERS:
            _BREAKERS.remove(self.breaker)
