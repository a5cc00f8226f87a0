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

from waypoint_common.errors import ToolCallError, ToolRejected, ToolUnavailable, TransientError

__all__ = ["ToolCallError", "ToolRejected", "ToolUnavailable", "is_transient", "retrying"]


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


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
