"""Running a service process: logging, telemetry and the HTTP server, the same way for all five."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from waypoint_common.logs import setup_logging
from waypoint_common.settings import ServiceSettings
from waypoint_common.telemetry import setup_telemetry


def run_service(service: str, settings: ServiceSettings, build: Callable[[], ASGIApp]) -> int:
    """Set up JSON logs and OpenTelemetry, build the app (after both, so it is instrumented), serve it."""
    setup_logging(service, settings.log_level)
    setup_telemetry(service, settings)
    uvicorn.run(
        build(),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0
