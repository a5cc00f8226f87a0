"""The specialist agents: one per tool server, each calling its tools through a pooled MCP client."""

from __future__ import annotations

from dataclasses import dataclass

from waypoint_orchestrator.agents.dining import DiningAgent
from waypoint_orchestrator.agents.flights import FlightsAgent
from waypoint_orchestrator.agents.hotels import HotelsAgent
from waypoint_orchestrator.agents.weather import WeatherAgent


@dataclass(frozen=True)
class Agents:
    """The four specialists a trip's steps run through."""

    flights: FlightsAgent
    hotels: HotelsAgent
    weather: WeatherAgent
    dining: DiningAgent


__all__ = ["Agents", "DiningAgent", "FlightsAgent", "HotelsAgent", "WeatherAgent"]
