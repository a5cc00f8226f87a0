"""The weather specialist: a daily forecast for the whole trip."""

from __future__ import annotations

from waypoint_common.results.weather import DailyForecast, Forecast
from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import ResolvedTrip


class WeatherAgent(Specialist):
    name = "weather"

    async def forecast(self, trip: ResolvedTrip, ctx: CallContext) -> list[DailyForecast]:
        found = await self.cached_call(
            "get_forecast",
            {
                "location": trip.destination.code,
                "start_date": trip.start_date.isoformat(),
                "end_date": trip.end_date.isoformat(),
            },
            ctx,
            Forecast,
        )
        return found.days
