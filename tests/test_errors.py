"""One exception hierarchy: every error a Waypoint package defines sits under `WaypointError`,
and is either transient (retrying may help) or final, so the retry policy needs no list."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from mcp.shared.exceptions import MCPError

from waypoint_common.errors import (
    CircuitOpen,
    FinalError,
    InputError,
    StateError,
    ToolCallError,
    ToolRejected,
    ToolUnavailable,
    TransientError,
    WaypointError,
)
from waypoint_common.faults import InjectedFault
from waypoint_common.resilience import CircuitBreaker
from waypoint_common.retries import is_transient
from waypoint_orchestrator.budgets import BudgetExhausted
from waypoint_orchestrator.steps import StepFailed

PACKAGES = [
    "waypoint_common",
    "waypoint_orchestrator",
    "waypoint_flights",
    "waypoint_hotels",
    "waypoint_restaurants",
    "waypoint_weather",
]
# Neither transient nor final on purpose: the roots, an HTTP answer and a control-flow signal.
UNCLASSIFIED = {"WaypointError", "ToolCallError", "Problem", "_NeedsJob"}


def defined_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [package] + [
            importlib.import_module(info.name) for info in pkgutil.walk_packages(package.__path__, f"{name}.")
        ]
        for module in modules:
            for obj in vars(module).values():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                ):
                    found.append(obj)
    return found


def test_the_walk_finds_the_exceptions_of_every_service() -> None:
    names = {cls.__name__ for cls in defined_exceptions()}
    # One from each package, so an import path change cannot make the next test vacuous.
    assert {"CircuitOpen", "BudgetExhausted", "UnknownOffer", "UnknownHotel", "UnknownRestaurant"} <= names
    assert len(names) >= 25


@pytest.mark.parametrize("cls", defined_exceptions(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_exception_is_a_waypoint_error_and_transient_or_final(cls: type[BaseException]) -> None:
    if cls is InjectedFault:
        # A fault injected into a tool server must reach the client as a JSON-RPC error, which
        # the SDK only does for its own MCPError.
        assert issubclass(cls, MCPError)
        return
    assert issubclass(cls, WaypointError)
    if cls.__name__ in UNCLASSIFIED:
        return
    assert issubclass(cls, TransientError) != issubclass(cls, FinalError)


def test_the_retry_policy_reads_the_hierarchy() -> None:
    assert is_transient(ToolUnavailable("flights", "search_flights", "timed out"))
    assert is_transient(CircuitOpen("flights", "search_flights", 3.0))
    assert not is_transient(ToolRejected("flights", "book_flight", "sold out"))
    assert not is_transient(BudgetExhausted("tool_calls", 40, 40))
    assert not is_transient(StepFailed("search_flights", "no answer"))
    assert not is_transient(ValueError("not ours"))


def test_input_errors_stay_value_errors_and_state_errors_are_final() -> None:
    assert issubclass(InputError, ValueError)  # pydantic validators turn them into field errors
    assert issubclass(StateError, FinalError)
    assert issubclass(ToolRejected, ToolCallError)
    assert issubclass(ToolUnavailable, ToolCallError)


def test_an_open_breaker_raises_the_one_circuit_open() -> None:
    breaker = CircuitBreaker("flights", failures=1, cooldown=30.0)
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert isinstance(caught.value, ToolUnavailable)
    assert 0 < caught.value.retry_in <= 30.0
    assert "circuit open" in str(caught.value)
