"""The weather specialist: a daily forecast for the whole trip."""

from __future__ import annotations

from typing import Any

from waypoint_common.results.weather import DailyForecast, Forecast
from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import ResolvedTrip


class WeatherAgent(Specialist):
    name = "weather"

    search_tool = "get_forecast"

    def arguments(self, trip: ResolvedTrip) -> dict[str, Any]:
        """The forecast a trip asks for: every day of it."""
        return {
            "location": trip.destination.code,
            "start_date": trip.start_date.isoformat(),
            "end_date": trip.end_date.isoformat(),
        }

    async def forecast(self, trip: ResolvedTrip, ctx: CallContext) -> list[DailyForecast]:
        return (await self.cached_call(self.search_tool, self.arguments(trip), ctx, Forecast)).days

    def from_answers(self, answers: list[dict[str, Any]]) -> list[DailyForecast]:
        """The forecast in the first answer (validated)."""
        return self.parse(self.search_tool, answers[0], Forecast).days if answers else []
