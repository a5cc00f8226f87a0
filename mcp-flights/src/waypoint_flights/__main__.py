"""`mcp-flights`: serve the flight tools over MCP Streamable HTTP."""

from __future__ import annotations

import sys

from waypoint_common.toolserver import run_tool_server
from waypoint_flights.server import SERVICE, create_server


def main() -> int:
    return run_tool_server(SERVICE, create_server)


if __name__ == "__main__":
    sys.exit(main())
