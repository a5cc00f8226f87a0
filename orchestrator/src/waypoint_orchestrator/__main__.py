"""`waypoint-orchestrator`: serve the trip API."""

from __future__ import annotations

import sys

from waypoint_common.service import run_service
from waypoint_orchestrator.main import SERVICE, create_app
from waypoint_orchestrator.settings import OrchestratorSettings

# The router reads free text in threads (off the event loop); a thread holding the GIL keeps the
# loop waiting up to the switch interval (5 ms by default) each time. A shorter one hands the GIL
# back to the loop sooner: /healthz p99 under a flood of adversarial queries stays within 2x of
# idle (bench/edge_flood.py) where it was 2.2x with the default.
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


def main() -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    settings = OrchestratorSettings()
    return run_service(SERVICE, settings, lambda: create_app(settings))


if __name__ == "__main__":
    sys.exit(main())
