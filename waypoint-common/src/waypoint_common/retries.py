"""The retry policy for tool calls: which failures are worth another try, and how to wait.

Retries happen at one layer only: the caller of a tool (the orchestrator's agents) wraps each
call in `retrying(...)`; the MCP client and the HTTP client below it do not retry. Waits are
capped exponential backoff with full jitter (tenacity's `wait_random_exponential`).
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)


class ToolCallError(Exception):
    """A tool call that did not produce a result."""

    transient: bool = False

    def __init__(self, server: str, tool: str, message: str) -> None:
        super().__init__(f"{server}/{tool}: {message}")
        self.server = server
        self.tool = tool
        self.message = message


class ToolRejected(ToolCallError):
    """The tool answered with an error about the call itself (bad argument, sold out): final."""


class ToolUnavailable(ToolCallError):
    """The call failed on the way or on the server (timeout, connection, 5xx-like error): transient."""

    transient = True


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ToolCallError) and exc.transient


def retrying(
    *,
    attempts: int = 4,
    initial_wait: float = 0.1,
    max_wait: float = 2.0,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """Retry transient tool failures: at most `attempts` tries, full-jitter waits up to `max_wait`."""
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=initial_wait, max=max_wait),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
