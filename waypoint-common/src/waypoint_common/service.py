"""Running a service process: logging, telemetry and the HTTP server, the same way for all five."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from waypoint_common.logs import setup_logging
from waypoint_common.settings import ServiceSettings
from waypoint_common.telemetry import setup_telemetry


def run_service(service: str, settings: ServiceSettings, build: Callable[[], ASGIApp]) -> int:
    """Set up JSON logs and OpenTelemetry, build the app (after both, so it is instrumented), serve it.

    Returns 2 without serving when the settings are unfit to start with (`startup_problem`).
    """
    setup_logging(service, settings.log_level)
    problem = settings.startup_problem()
    if problem is not None:
        logging.getLogger(__name__).error("refusing to start: %s", problem)
        print(f"{service}: refusing to start: {problem}", file=sys.stderr, flush=True)
        return 2
    setup_telemetry(service, settings)
    app = build()
    # What start-up made lives as long as the process: out of the collector's way (CPython's
    # `gc.freeze`), so that collections walk only what requests make.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0
