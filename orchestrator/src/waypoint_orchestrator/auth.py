"""Who is calling: `Authorization: Bearer <API key>` on every trip route, checked against Redis.

The dependency `caller_with(scope)` authenticates the key, checks its scope and charges the
key's request rate; a route declares what it needs as `Annotated[Caller, Depends(...)]`. The
rate-limit headers are put on every answer, refusals included, by `RateLimitHeaders`.
Failures are problem documents: 401 (no key, or one that is unknown or revoked) with
`WWW-Authenticate`, 403 (the key lacks the scope), 429 (too many requests) with `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waypoint_orchestrator.apikeys import ApiKey
from waypoint_orchestrator.apikeys import Scope as KeyScope
from waypoint_orchestrator.asgi import with_headers
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.quotas import RateDecision

REALM = "waypoint"
_STATE_HEADERS = "waypoint.ratelimit"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `waypoint-admin keys create`: `Authorization: Bearer wpk_…`.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated key, with its limits resolved against the server's defaults."""

    key: ApiKey
    requests_per_minute: int
    concurrent_waits: int
    daily_spend_usd: float

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def key_id(self) -> str:
        return self.key.id

    def allows(self, scope: KeyScope) -> bool:
        return self.key.allows(scope)

    def require(self, scope: KeyScope) -> None:
        """403 unless the key has `scope`."""
        if not self.allows(scope):
            raise Problem(
                403,
                "insufficient-scope",
                f"this API key lacks the scope {scope!r}",
                headers={
                    "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'
                },
                scope=scope,
            )


def unauthorized(detail: str, *, invalid: bool) -> Problem:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


Authenticator = Callable[[str], Awaitable[ApiKey | None]]
RateCharger = Callable[[Caller], Awaitable[RateDecision]]


@dataclass(frozen=True)
class Gatekeeper:
    """What the auth dependency needs: how to look a key up, its default limits, the rate charge."""

    authenticate: Authenticator
    charge_rate: RateCharger
    default_requests_per_minute: int
    default_concurrent_waits: int
    default_daily_spend_usd: float

    def caller(self, key: ApiKey) -> Caller:
        limits = key.limits
        return Caller(
            key=key,
            requests_per_minute=limits.requests_per_minute or self.default_requests_per_minute,
            concurrent_waits=(
                limits.concurrent_waits
                if limits.concurrent_waits is not None
                else self.default_concurrent_waits
            ),
            daily_spend_usd=(
                limits.daily_spend_usd if limits.daily_spend_usd is not None else self.default_daily_spend_usd
            ),
        )


def caller_with(scope: KeyScope) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the authenticated caller, who must hold `scope`, within its request rate."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        gatekeeper: Gatekeeper = request.app.state.gatekeeper
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("an API key is required: Authorization: Bearer <key>", invalid=False)
        # Its Redis calls are not spans of their own: they come before the trip is known, and
        # every span of a trip's trace carries the trip id. The outcome goes on the request's span.
        with suppress_instrumentation():
            key = await gatekeeper.authenticate(credentials.credentials)
        if key is None:
            raise unauthorized("the API key is not valid (unknown, revoked or malformed)", invalid=True)
        caller = gatekeeper.caller(key)
        span = trace.get_current_span()
        span.set_attribute("waypoint.tenant", caller.tenant)
        span.set_attribute("waypoint.api_key.id", caller.key_id)
        with suppress_instrumentation():
            decision = await gatekeeper.charge_rate(caller)
        span.set_attribute("waypoint.ratelimit.remaining", decision.remaining)
        request.scope.setdefault("state", {})[_STATE_HEADERS] = decision.headers()
        if not decision.allowed:
            raise Problem(
                429,
                "rate-limited",
                f"this API key may make {decision.limit} requests a minute; try again in "
                f"{max(1, decision.reset_seconds)} s",
                headers={"Retry-After": str(max(1, decision.reset_seconds)), **decision.headers()},
            )
        caller.require(scope)
        return caller

    return dependency


class RateLimitHeaders:
    """Pure ASGI: adds the request's `RateLimit`/`RateLimit-Policy` headers to its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra: dict[str, str] = scope.get("state", {}).get(_STATE_HEADERS) or {}
            await send(with_headers(message, extra))

        await self.app(scope, receive, send_with_headers)
