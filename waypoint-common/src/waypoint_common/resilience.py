"""Circuit breakers and retry budgets: what keeps a failing tool server from being hammered.

Both are per tool server and per process (like a client-side load balancer's view of a
backend), and both are small state machines, so they are written here rather than pulled from
a library: the maintained Python breakers are synchronous or tied to other event loops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from waypoint_common.errors import CircuitOpen

BreakerState = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `cooldown` seconds lets one probe through.

    A successful probe closes it; a failed probe opens it for another cool-down. Only failures
    that say something about the server (transient ones) should be reported: a tool's refusal
    of bad arguments is a success as far as the breaker is concerned.

    `enabled = False` (`WAYPOINT_BREAKERS_ENABLED=false`, for measuring what breakers cost only)
    lets every call through and records nothing.
    """

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._lock = threading.Lock()
        self.openings = 0
        self.enabled = True

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
                return "half_open"
            return self._state

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if state == "open":
                self.openings += 1
            if self._on_change is not None:
                self._on_change(self.name, state)

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go through now."""
        if not self.enabled:
            return
        with self._lock:
            if self._state == "closed":
                return
            waited = self._clock() - self._opened_at
            if self._state == "open" and waited >= self.cooldown:
                self._set("half_open")
            if self._state == "half_open" and not self._probing:
                self._probing = True
                return
            raise CircuitOpen(self.name, "*", max(0.0, self.cooldown - waited))

    def record_success(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._failures = 0
            self._probing = False
            self._set("closed")

    def record_failure(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._failures += 1
            if self._state == "half_open" or self._failures >= self.threshold:
                self._opened_at = self._clock()
                self._probing = False
                self._set("open")


class RetryBudget:
    """Retries as a share of traffic (Finagle's retry budget): a token bucket for retries.

    Every first attempt deposits `ratio` of a token, and `floor` tokens a second trickle in so
    that a quiet client can still retry; a retry spends one. When a server fails for everyone,
    retries stay near `ratio` of the calls instead of multiplying its load.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.5,
        floor: float = 2.0,
        capacity: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.floor = floor
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.floor)
        self._updated = now

    def deposit(self) -> None:
        """A first attempt was made."""
        with self._lock:
            self._refill()
            self._tokens = min(self.capacity, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False
