"""`waypoint-orchestrator`: serve the trip API."""

from __future__ import annotations

import sys

from waypoint_common.service import run_service
from waypoint_orchestrator.main import SERVICE, create_app
from waypoint_orchestrator.settings import OrchestratorSettings


def main() -> int:
    settings = OrchestratorSettings()
    return run_service(SERVICE, settings, lambda: create_app(settings))


if __name__ == "__main__":
    sys.exit(main())
