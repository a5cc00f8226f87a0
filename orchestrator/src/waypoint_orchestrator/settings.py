"""Orchestrator settings, from the environment."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from waypoint_common.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    """The orchestrator's settings: the shared ones plus where the tool servers are."""

    mcp_flights_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8101/mcp"), validation_alias="MCP_FLIGHTS_URL"
    )
    mcp_hotels_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8102/mcp"), validation_alias="MCP_HOTELS_URL"
    )
    mcp_weather_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8103/mcp"), validation_alias="MCP_WEATHER_URL"
    )
    mcp_restaurants_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8104/mcp"), validation_alias="MCP_RESTAURANTS_URL"
    )
    jaeger_ui_url: AnyHttpUrl | None = Field(None, validation_alias="JAEGER_UI_URL")
