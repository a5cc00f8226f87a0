"""`waypoint-orchestrator`: serve the trip API."""

from __future__ import annotations

import sys

import uvicorn

from waypoint_common.logs import setup_logging
from waypoint_common.telemetry import setup_telemetry
from waypoint_orchestrator.main import SERVICE, create_app
from waypoint_orchestrator.settings import OrchestratorSettings


def main() -> int:
    settings = OrchestratorSettings()
    setup_logging(SERVICE, settings.log_level)
    setup_telemetry(SERVICE, settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
