"""The mcp-weather tool."""

from __future__ import annotations

import datetime as dt

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from waypoint_common.results.weather import Forecast
from waypoint_common.toolargs import LocationText, check_date_range, check_place
from waypoint_common.toolserver import ToolContext
from waypoint_weather.provider import SimulatedWeather, WeatherProvider

SERVICE = "mcp-weather"
MAX_FORECAST_DAYS = 30


def create_server(context: ToolContext, provider: WeatherProvider | None = None) -> MCPServer:
    """Build the weather MCP server (it keeps no state; Redis is only checked for readiness)."""
    weather = provider or SimulatedWeather()
    mcp = MCPServer(SERVICE, instructions="Daily weather forecasts with an outdoor-activity score.")

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def get_forecast(location: LocationText, start_date: dt.date, end_date: dt.date) -> Forecast:
        """Daily forecast from start_date to end_date inclusive (at most 30 days).

        Each day has a condition, high and low in °C, precipitation probability and mm, wind in
        km/h and an outdoor-activity suitability score from 0 to 1.
        """
        place = check_place("location", location)
        check_date_range(
            "start_date",
            start_date,
            "end_date",
            end_date,
            max_days=MAX_FORECAST_DAYS - 1,
            allow_same_day=True,
        )
        days = [
            weather.daily(place, start_date + dt.timedelta(days=i))
            for i in range((end_date - start_date).days + 1)
        ]
        return Forecast(
            location=place.city,
            country=place.country,
            airport=place.code,
            lat=place.lat,
            lon=place.lon,
            tz=place.tz,
            days=days,
        )

    return mcp
