"""What every specialist shares: calling a tool with the retry policy, and reporting each try."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState

from waypoint_common.retries import ToolCallError, retrying
from waypoint_orchestrator.toolclient import ToolClient

log = logging.getLogger(__name__)

RetryReporter = Callable[[str, int, str], Awaitable[None]]


@dataclass
class CallContext:
    """The step a tool call belongs to; counts its attempts and reports its retries."""

    trip_id: str
    step_id: str
    on_retry: RetryReporter | None = None
    attempts: int = 0
    tool_calls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 4
    initial_wait: float = 0.1
    max_wait: float = 2.0
    timeout: float = 10.0


class Specialist:
    """Base of the flights, hotels, weather and dining agents."""

    name = "specialist"

    def __init__(self, client: ToolClient, retry: RetrySettings) -> None:
        self.client = client
        self.retry = retry

    async def call(
        self, tool: str, arguments: dict[str, Any], ctx: CallContext, *, attempts: int | None = None
    ) -> dict[str, Any]:
        """Call a tool; transient failures are retried with backoff and full jitter, others raised."""
        pending: list[str] = []

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            pending.append(str(exc))

        async for attempt in retrying(
            attempts=attempts or self.retry.attempts,
            initial_wait=self.retry.initial_wait,
            max_wait=self.retry.max_wait,
            before_sleep=before_sleep,
        ):
            with attempt:
                if pending and ctx.on_retry is not None:
                    await ctx.on_retry(tool, ctx.attempts + 1, pending.pop())
                ctx.attempts += 1
                ctx.tool_calls.append(tool)
                try:
                    return await self.client.call(tool, arguments, read_timeout=self.retry.timeout)
                except ToolCallError as exc:
                    log.info("tool call failed", extra={"tool": tool, "step": ctx.step_id, "error": str(exc)})
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last failure")
