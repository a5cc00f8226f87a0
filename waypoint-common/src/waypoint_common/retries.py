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
    stop_after_attempt,
    wait_random_exponential,
)


class ToolCallError(Exception):
    """A tool call that did not produce a result."""

    transient: bool = False

    def __init__(self, server: str, tool: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{server}/{tool}: {message}")
        self.server = server
        self.tool = tool
        self.message = message
        self.retry_after = retry_after


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
    allow_retry: Callable[[], bool] | None = None,
    max_retry_after: float = 30.0,
) -> AsyncRetrying:
    """Retry transient tool failures: at most `attempts` tries, full-jitter waits up to `max_wait`.

    `allow_retry` is asked before each retry (a retry budget): when it says no, the failure is final.
    """

    def worth_retrying(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None or not is_transient(exc) or state.attempt_number >= attempts:
            return False
        # Asked last, so a token is spent only on a retry that will happen.
        return allow_retry is None or allow_retry()

    backoff = wait_random_exponential(multiplier=initial_wait, max=max_wait)

    def wait(state: RetryCallState) -> float:
        """Full-jitter backoff, but never sooner than the server's `Retry-After` (capped)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(exc, "retry_after", None) or 0.0
        return max(backoff(state), min(float(asked), max_retry_after))

    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=worth_retrying,
        before_sleep=before_sleep,
        reraise=True,
    )
