"""Builds the orchestrator's FastAPI app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from waypoint_common.connections import connect_redis, redis_ready
from waypoint_orchestrator.settings import OrchestratorSettings

SERVICE = "orchestrator"


def create_app(settings: OrchestratorSettings) -> FastAPI:
    redis = connect_redis(str(settings.redis_url))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    app = FastAPI(title="Waypoint", version="0.1.0", lifespan=lifespan)

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

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz", exclude_spans=["receive", "send"])
    return app
