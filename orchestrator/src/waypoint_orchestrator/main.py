"""Builds the orchestrator's FastAPI app: the trip API, health, and the workers that run trips."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from waypoint_common.bodylimit import BodyLimitMiddleware
from waypoint_common.cache import ResultCache
from waypoint_common.connections import connect_redis, redis_ready
from waypoint_orchestrator import problems, web
from waypoint_orchestrator.agents import Agents
from waypoint_orchestrator.agents.base import RetrySettings
from waypoint_orchestrator.agents.dining import DiningAgent
from waypoint_orchestrator.agents.flights import FlightsAgent
from waypoint_orchestrator.agents.hotels import HotelsAgent
from waypoint_orchestrator.agents.weather import WeatherAgent
from waypoint_orchestrator.api.deps import Services
from waypoint_orchestrator.api.routes import trips
from waypoint_orchestrator.apikeys import ApiKeyStore
from waypoint_orchestrator.auth import Gatekeeper, RateLimitHeaders
from waypoint_orchestrator.budgets import BudgetLedger, UncountedLedger
from waypoint_orchestrator.events import EventHub
from waypoint_orchestrator.idempotency_keys import IdempotencyKeys
from waypoint_orchestrator.jobs import JobQueue
from waypoint_orchestrator.llm.client import ModelClient
from waypoint_orchestrator.llm.narrative import Narrator
from waypoint_orchestrator.llm.reading import ModelReader
from waypoint_orchestrator.llm.tools import ModelTools
from waypoint_orchestrator.pipeline import TripRunner
from waypoint_orchestrator.quotas import RequestRate, SpendLedger, WaitSlots
from waypoint_orchestrator.replicas import Resolver
from waypoint_orchestrator.settings import OrchestratorSettings
from waypoint_orchestrator.store import TripStore
from waypoint_orchestrator.toolclient import ToolClient
from waypoint_orchestrator.web import SecurityHeaders
from waypoint_orchestrator.worker import WorkerPool, worker_name

SERVICE = "orchestrator"


def create_app(settings: OrchestratorSettings) -> FastAPI:
    redis = connect_redis(str(settings.redis_url))
    store = TripStore(redis, model_in_use=settings.llm_base_url is not None)
    queue = JobQueue(redis, lease_ms=int(settings.job_lease_seconds * 1000))
    # Budgets off (`WAYPOINT_BUDGETS_ENABLED=false`) is for measuring what they cost only.
    ledger = BudgetLedger(redis) if settings.budgets_enabled else UncountedLedger(redis)
    keys = ApiKeyStore(redis)
    # One subscriber per process wakes every request waiting for a trip's events.
    hub = EventHub(str(settings.redis_url))
    services = Services(
        settings,
        store,
        queue,
        IdempotencyKeys(redis),
        ledger,
        keys,
        WaitSlots(redis),
        SpendLedger(redis),
        hub,
    )
    rate = RequestRate(redis)
    gatekeeper = Gatekeeper(
        authenticate=keys.authenticate,
        charge_rate=lambda caller: rate.hit(caller.key_id, caller.requests_per_minute),
        default_requests_per_minute=settings.key_requests_per_minute,
        default_concurrent_waits=settings.key_concurrent_waits,
        default_daily_spend_usd=settings.key_daily_spend_usd,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = settings.tool_timeout_seconds

        resolver = Resolver(settings.tool_hosts_file)

        def tool_client(server: str, url: object) -> ToolClient:
            client = ToolClient(
                server,
                str(url),
                timeout=timeout,
                breaker_failures=settings.breaker_failures,
                breaker_cooldown=settings.breaker_cooldown_seconds,
                retry_ratio=settings.retry_budget_ratio,
                retry_floor=settings.retry_budget_per_second,
                token=settings.service_token,
                resolver=resolver,
                resolve_every=settings.tool_resolve_seconds,
                eject_for=settings.tool_eject_seconds,
            )
            client.breaker.enabled = settings.breakers_enabled  # off: for measuring only
            return client

        clients = {
            "flights": tool_client("mcp-flights", settings.mcp_flights_url),
            "hotels": tool_client("mcp-hotels", settings.mcp_hotels_url),
            "weather": tool_client("mcp-weather", settings.mcp_weather_url),
            "restaurants": tool_client("mcp-restaurants", settings.mcp_restaurants_url),
        }
        retry = RetrySettings(
            attempts=settings.tool_attempts, max_wait=settings.retry_max_wait_seconds, timeout=timeout
        )
        cache = ResultCache(redis, "search-cache", ttl=settings.search_cache_seconds)
        agents = Agents(
            flights=FlightsAgent(clients["flights"], retry, cache),
            hotels=HotelsAgent(clients["hotels"], retry, cache),
            weather=WeatherAgent(clients["weather"], retry, cache),
            dining=DiningAgent(clients["restaurants"], retry, cache),
        )
        model = ModelClient(settings, ledger) if settings.llm_base_url is not None else None
        runner = TripRunner(
            store,
            agents,
            worker_name(),
            ledger,
            settings.limits_for,
            services.spend,
            reader=ModelReader(model) if model is not None else None,
            model_tools=ModelTools(model) if model is not None else None,
            model_agents=frozenset(settings.llm_specialists),
            narrator=Narrator(model) if model is not None and settings.llm_narrative else None,
        )
        pool = WorkerPool(queue, runner, settings.workers)
        app.state.services = services
        await hub.start()
        await pool.start()
        try:
            yield
        finally:
            await pool.stop()
            await hub.stop()
            for client in clients.values():
                await client.aclose()
            if model is not None:
                await model.aclose()
            await redis.aclose()

    app = FastAPI(
        title="Waypoint",
        version="0.1.0",
        description="Plans and books trips with specialist agents over MCP tool servers.",
        lifespan=lifespan,
    )
    app.state.gatekeeper = gatekeeper
    problems.install(app)
    app.include_router(trips.router)
    web.install(app)
    app.add_middleware(RateLimitHeaders)
    # Outside all but the headers: an oversized body is refused while it streams in, before anything
    # parses it.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        too_large=lambda scope: problems.problem_response(
            413,
            "body-too-large",
            "Content Too Large",
            f"the request body is larger than {settings.max_body_bytes} bytes",
            str(scope.get("path", "")),
        ),
    )
    # Around everything (it only adds headers): nosniff on every answer, the page's policy on the page.
    app.add_middleware(SecurityHeaders)

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, with this server's budget caps as the limits' maxima."""
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            _document_caps(document, settings)
            _headers_are_never_null(document)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok", "service": SERVICE}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready: Redis answers."""
        if await redis_ready(redis):
            return JSONResponse({"status": "ready", "service": SERVICE})
        return JSONResponse({"status": "unavailable", "reason": "redis unreachable"}, status_code=503)

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,/static/", exclude_spans=["receive", "send"]
    )
    return app


def _document_caps(schema: dict[str, Any], settings: OrchestratorSettings) -> None:
    """`limits.*` above a cap is refused (422): say so in the schema, so a valid request is valid."""
    limits = schema.get("components", {}).get("schemas", {}).get("TripLimits", {}).get("properties", {})
    caps = {
        "max_steps": settings.budget_steps_cap,
        "max_tool_calls": settings.budget_tool_calls_cap,
        "max_tokens": settings.budget_tokens_cap,
        "max_wall_seconds": settings.budget_wall_seconds_cap,
    }
    for name, cap in caps.items():
        for variant in limits.get(name, {}).get("anyOf", []):
            if variant.get("type") in ("integer", "number"):
                variant["maximum"] = cap


def _headers_are_never_null(schema: dict[str, Any]) -> None:
    """An optional header is absent or a string, never JSON null: drop the `null` branch FastAPI
    writes for `str | None` (a client generating from the schema would send the text "null")."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "header":
                    continue
                spec = parameter.get("schema", {})
                branches = [b for b in spec.get("anyOf", []) if b.get("type") != "null"]
                if len(branches) == 1 and len(spec.get("anyOf", [])) == 2:
                    del spec["anyOf"]
                    spec.update(branches[0])
