"""What every specialist shares: calling a tool with the retry policy, traced and measured.

Each attempt is an `execute_tool <tool>` span (OpenTelemetry GenAI conventions) whose child is
the MCP SDK's client span, and counts in the per-tool metrics: calls, errors and retries by
tool, server and outcome, and the `mcp.client.operation.duration` histogram.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState

from waypoint_common.bookings import OWNER_META_KEY
from waypoint_common.cache import ResultCache
from waypoint_common.errors import MalformedResult, ToolCallError, ToolRejected, ToolUnavailable
from waypoint_common.retries import retrying
from waypoint_orchestrator.toolclient import ToolClient

log = logging.getLogger(__name__)
tracer = trace.get_tracer("waypoint.orchestrator")
meter = metrics.get_meter("waypoint.orchestrator")

TOOL_CALLS = meter.create_counter("waypoint.tool.calls", unit="{call}", description="Tool call attempts")
TOOL_ERRORS = meter.create_counter(
    "waypoint.tool.errors", unit="{call}", description="Failed tool call attempts"
)
TOOL_RETRIES = meter.create_counter("waypoint.tool.retries", unit="{call}", description="Tool calls retried")
TOOL_DURATION = meter.create_histogram(
    "mcp.client.operation.duration",
    unit="s",
    description="Duration of an MCP tools/call attempt, as the client sees it",
    explicit_bucket_boundaries_advisory=[0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
)

M = TypeVar("M", bound=BaseModel)
B = TypeVar("B", bound=BaseModel)
RetryReporter = Callable[[str, int, str], Awaitable[None]]
Charger = Callable[[str], Awaitable[None]]


@dataclass
class CallContext:
    """The step a tool call belongs to; counts its attempts and reports its retries."""

    trip_id: str
    step_id: str
    on_retry: RetryReporter | None = None
    charge_call: Charger | None = None
    attempts: int = 0
    stale: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings for the trip (not degradations)
    deadline: float | None = None  # epoch seconds: no attempt may wait past the trip's deadline
    # The tenant the trip belongs to: tool servers store it with each booking, and show or
    # cancel a booking only for it. It travels in the MCP request's `_meta`, never as a tool
    # argument, so whoever chooses arguments cannot name another owner.
    owner: str | None = None


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 4
    initial_wait: float = 0.1
    max_wait: float = 2.0
    timeout: float = 10.0


def error_type(exc: BaseException) -> str:
    return "tool_error" if isinstance(exc, ToolRejected) else type(exc).__name__


class Specialist:
    """Base of the flights, hotels, weather and dining agents.

    Every answer is validated into the tool's published result model (`waypoint_common.results`,
    the same model the server declares as its output schema); an answer the model refuses is a
    `MalformedResult`, never a dictionary passed on in hope.
    """

    name = "specialist"
    # The tool that answers this specialist's search step.
    search_tool = ""

    def __init__(self, client: ToolClient, retry: RetrySettings, cache: ResultCache | None = None) -> None:
        self.client = client
        self.retry = retry
        self.cache = cache

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        ctx: CallContext,
        into: type[M],
        *,
        attempts: int | None = None,
    ) -> M:
        """Call a tool (transient failures retried with backoff and full jitter) and validate its answer."""
        return self.parse(tool, await self.call_raw(tool, arguments, ctx, attempts=attempts), into)

    async def cached_call(self, tool: str, arguments: dict[str, Any], ctx: CallContext, into: type[M]) -> M:
        """A read-only call; its last good answer stands in (marked stale) while the server is down."""
        try:
            raw = await self.call_raw(tool, arguments, ctx)
        except ToolUnavailable:
            cached = await self.cache.get(tool, arguments) if self.cache is not None else None
            if cached is None:
                raise
            value, age = cached
            result = self.parse(tool, value, into)
            ctx.stale.append(f"{tool}: {self.client.server} unavailable, used a cached answer {age:.0f}s old")
            trace.get_current_span().add_event("stale_answer", {"gen_ai.tool.name": tool, "age_s": age})
            return result
        result = self.parse(tool, raw, into)
        if self.cache is not None:
            await self.cache.put(tool, arguments, raw)
        return result

    def parse(self, tool: str, raw: object, into: type[M]) -> M:
        """`raw` validated into `into`, or `MalformedResult` naming the fields that do not fit."""
        try:
            return into.model_validate(raw)
        except ValidationError as exc:
            # Field locations only: the values may be personal data.
            where = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()[:3])
            raise MalformedResult(
                self.client.server, tool, f"answer is not a valid {into.__name__} ({where})"
            ) from None

    async def call_raw(
        self, tool: str, arguments: dict[str, Any], ctx: CallContext, *, attempts: int | None = None
    ) -> dict[str, Any]:
        """Call a tool with the retry policy; its structured answer as it came (not validated)."""
        pending: list[str] = []
        self.client.retry_budget.deposit()

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            pending.append(str(exc))

        async for attempt in retrying(
            attempts=attempts or self.retry.attempts,
            initial_wait=self.retry.initial_wait,
            max_wait=self.retry.max_wait,
            before_sleep=before_sleep,
            allow_retry=self.client.retry_budget.try_spend,
        ):
            with attempt:
                if pending:
                    TOOL_RETRIES.add(1, {"gen_ai.tool.name": tool, "server.name": self.client.server})
                    reason = pending.pop()
                    trace.get_current_span().add_event(
                        "retry", {"gen_ai.tool.name": tool, "attempt": ctx.attempts + 1}
                    )
                    if ctx.on_retry is not None:
                        await ctx.on_retry(tool, ctx.attempts + 1, reason)
                if ctx.charge_call is not None:
                    # Charged before the call, once per attempt id: raises when the budget is spent.
                    await ctx.charge_call(f"{ctx.step_id}:{tool}:{ctx.attempts + 1}")
                ctx.attempts += 1
                return await self._attempt(tool, arguments, ctx)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _attempt(self, tool: str, arguments: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """One try, as one `execute_tool` span."""
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.agent.name": self.name,
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.id": f"{ctx.trip_id}:{ctx.step_id}:{ctx.attempts}",
            "server.name": self.client.server,
            "waypoint.step.id": ctx.step_id,
            "waypoint.attempt": ctx.attempts,
        }
        metric_attributes = {"gen_ai.tool.name": tool, "server.name": self.client.server}
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"execute_tool {tool}", kind=SpanKind.INTERNAL, attributes=attributes, record_exception=False
        ) as span:
            try:
                timeout = self.retry.timeout
                if ctx.deadline is not None:
                    timeout = max(0.05, min(timeout, ctx.deadline - time.time()))
                meta = {OWNER_META_KEY: ctx.owner} if ctx.owner is not None else None
                result = await self.client.call(tool, arguments, read_timeout=timeout, meta=meta)
            except ToolCallError as exc:
                kind = error_type(exc)
                # The message may echo arguments (names); the span gets the kind of failure only.
                span.set_attribute("error.type", kind)
                span.set_status(
                    StatusCode.ERROR,
                    "tool refused the call" if isinstance(exc, ToolRejected) else "transient failure",
                )
                outcome = {**metric_attributes, "error.type": kind, "outcome": "error"}
                TOOL_CALLS.add(1, outcome)
                TOOL_ERRORS.add(1, outcome)
                TOOL_DURATION.record(
                    time.perf_counter() - started,
                    {**metric_attributes, "mcp.method.name": "tools/call", "error.type": kind},
                )
                log.info("tool call failed", extra={"tool": tool, "step": ctx.step_id, "error_type": kind})
                raise
            TOOL_CALLS.add(1, {**metric_attributes, "outcome": "ok"})
            TOOL_DURATION.record(
                time.perf_counter() - started, {**metric_attributes, "mcp.method.name": "tools/call"}
            )
            return result


class BookingAgent(Specialist, Generic[B]):
    """A specialist whose server also writes: it books, cancels, and finds a booking by the
    request id of the write that made it (read only)."""

    booking_model: type[B]
    lookup_tool = ""
    cancel_tool = ""
    id_argument = "booking_id"  # how the cancel tool names the booking

    async def find(self, request_id: str, ctx: CallContext) -> B | None:
        """The booking the write with `request_id` made, as it stands now; None when that write
        booked nothing. Reads only: learning a write's outcome never writes again."""
        try:
            return await self.call(self.lookup_tool, {"request_id": request_id}, ctx, self.booking_model)
        except ToolRejected as exc:
            if "request_id: no booking" in str(exc):
                return None
            raise

    async def cancel(self, booking_id: str, request_id: str, ctx: CallContext, attempts: int) -> B:
        return await self.call(
            self.cancel_tool,
            {self.id_argument: booking_id, "request_id": request_id},
            ctx,
            self.booking_model,
            attempts=attempts,
        )
