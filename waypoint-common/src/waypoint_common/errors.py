"""One exception hierarchy for the whole fleet, with one name per concept.

    WaypointError
    ├── TransientError        retrying may help (a timeout, a server that is down)
    │   └── ToolUnavailable   (also a ToolCallError)
    │       └── CircuitOpen   the breaker refused the call: it was not made
    └── FinalError            retrying cannot help
        ├── ToolRejected      the tool said no (bad argument, sold out) (also a ToolCallError)
        ├── MalformedResult   the tool answered, but not in its published result model
        │                     (also a ToolCallError)
        ├── BudgetExhausted   a trip's budget is spent (orchestrator.budgets)
        ├── StateError        a trip or booking is not in a state for this (not found, a move
        │                     the state table refuses, a refused write)
        └── InputError        bad input, naming the field at fault (also a ValueError)

`ToolCallError` is the base of every failed tool call, transient or final. Each service defines
its own exceptions under these bases, so `except TransientError` is always "try again" and
`except FinalError` always "stop", wherever they come from.
"""

from __future__ import annotations


class WaypointError(Exception):
    """The root of every error Waypoint raises on purpose."""


class TransientError(WaypointError):
    """Retrying may help: the failure came from the way or the moment, not from the request."""


class FinalError(WaypointError):
    """Retrying cannot help: the same request would fail the same way."""


class StateError(FinalError):
    """A trip or a booking is not in a state that allows this."""


class InputError(FinalError, ValueError):
    """Bad input; the message starts with the field at fault."""


class ToolCallError(WaypointError):
    """A tool call that did not produce a result."""

    def __init__(self, server: str, tool: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{server}/{tool}: {message}")
        self.server = server
        self.tool = tool
        self.message = message
        self.retry_after = retry_after


class ToolRejected(ToolCallError, FinalError):
    """The tool answered with an error about the call itself (bad argument, sold out): final."""


class MalformedResult(ToolCallError, FinalError):
    """The tool answered something its result model refuses: a broken contract, not a refusal.

    Not a `ToolRejected`: for a write, the call may well have taken effect.
    """


class ToolUnavailable(ToolCallError, TransientError):
    """The call failed on the way or on the server (timeout, connection, 5xx-like error): transient."""


class CircuitOpen(ToolUnavailable):
    """The server's circuit breaker is open: the call was not made (fails fast)."""

    def __init__(self, server: str, tool: str, retry_in: float) -> None:
        super().__init__(server, tool, f"circuit open; next probe in {retry_in:.1f}s")
        self.retry_in = retry_in
