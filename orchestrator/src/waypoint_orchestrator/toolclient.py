"""One pooled MCP client per tool server, shared by every agent and worker in the process.

An `mcp.Client` must be entered and left in one task, and a broken connection kills it; so each
`ToolClient` keeps its connection in a task of its own and starts a new one after a failure.
Calls from any task go through the shared client. Failures come out as `ToolRejected` (the tool
said no: final) or `ToolUnavailable` (worth retrying); this class never retries by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import Tool
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic import SecretStr

from waypoint_common.errors import CircuitOpen
from waypoint_common.resilience import STATE_VALUES, BreakerState, CircuitBreaker, RetryBudget
from waypoint_common.retries import ToolRejected, ToolUnavailable
from waypoint_common.serviceauth import bearer_header
from waypoint_common.telemetry import propagate_mcp_context

log = logging.getLogger(__name__)
meter = metrics.get_meter("waypoint.orchestrator")
BREAKER_OPENINGS = meter.create_counter(
    "waypoint.breaker.openings", unit="{opening}", description="Circuit breaker openings by tool server"
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


class ToolClient:
    """Calls the tools of one MCP server."""

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
    ) -> None:
        self.server = server
        self.url = url
        self.timeout = timeout
        self._token = token  # the service credential, sent as a header on every MCP request
        self.breaker = CircuitBreaker(
            server, failures=breaker_failures, cooldown=breaker_cooldown, on_change=_breaker_changed
        )
        self.retry_budget = RetryBudget(ratio=retry_ratio, floor=retry_floor)
        self._retry_after: tuple[float, float] | None = None  # (when seen, seconds asked)
        _BREAKERS.append(self.breaker)
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def _connection(self) -> Client:
        async with self._lock:
            if self._client is not None and self._owner is not None and not self._owner.done():
                return self._client
            await self._close_owner()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._owner = asyncio.create_task(self._own(ready), name=f"mcp-connection-{self.server}")
            try:
                self._client = await ready
            except Exception as exc:
                # The message reaches the trip's warnings (clients): no internal address or repr.
                log.warning("cannot connect to %s: %r", self.url, exc)
                raise ToolUnavailable(self.server, "connect", f"cannot connect ({_kind(exc)})") from exc
            return self._client

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        """Holds the connection open until told to stop or until it breaks."""
        try:
            async with (
                httpx2.AsyncClient(
                    headers=bearer_header(self._token),
                    timeout=httpx2.Timeout(self.timeout + 5),
                    event_hooks={"request": [propagate_mcp_context], "response": [self._note_retry_after]},
                ) as http,
                Client(
                    streamable_http_client(self.url, http_client=http), read_timeout_seconds=self.timeout
                ) as c,
            ):
                ready.set_result(c)
                await self._stop.wait()
        except BaseException as exc:  # the owner task reports and ends; callers reconnect
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            else:
                log.warning("connection to %s closed: %r", self.server, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def _note_retry_after(self, response: Any) -> None:
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

    async def _close_owner(self) -> None:
        if self._owner is None:
            return
        self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._owner, timeout=5)
        self._owner = None
        self._client = None

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        read_timeout: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call a tool and return its structured result (or fail fast while the breaker is open)."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise CircuitOpen(self.server, tool, exc.retry_in) from exc
        try:
            result = await self._call(tool, arguments, read_timeout, meta)
        except ToolUnavailable:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return result

    async def _call(
        self, tool: str, arguments: dict[str, Any], read_timeout: float | None, meta: dict[str, Any] | None
    ) -> dict[str, Any]:
        client = await self._connection()
        try:
            result = await client.call_tool(
                tool,
                arguments,
                read_timeout_seconds=read_timeout or self.timeout,
                meta=meta,  # type: ignore[arg-type]
            )
        except MCPError as exc:
            # JSON-RPC errors are the server's or the transport's trouble (internal error,
            # timeout, connection closed), not a verdict on the arguments: worth retrying.
            raise ToolUnavailable(
                self.server,
                tool,
                f"{exc.error.message} (code {exc.error.code})",
                retry_after=self._asked_to_wait(),
            ) from exc
        except Exception as exc:
            # The connection is gone (refused, reset, read timeout): reconnect on the next call.
            async with self._lock:
                await self._close_owner()
            log.warning("transport failure calling %s on %s: %r", tool, self.server, exc)
            raise ToolUnavailable(self.server, tool, f"transport failure ({_kind(exc)})") from exc
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content).strip()
            # The server answered: as far as the breaker is concerned, that is a success.
            self.breaker.record_success()
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
        client = await self._connection()
        try:
            listed = await client.list_tools()
        except Exception as exc:
            async with self._lock:
                await self._close_owner()
            self.breaker.record_failure()
            raise ToolUnavailable(self.server, "tools/list", f"transport failure ({_kind(exc)})") from exc
        self.breaker.record_success()
        return list(listed.tools)

    async def aclose(self) -> None:
        async with self._lock:
            await self._close_owner()
        if self.breaker in _BREAKERS:
            _BREAKERS.remove(self.breaker)
