"""The weather specialist: a daily forecast for the whole trip."""

from __future__ import annotations

from typing import Any

from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import ResolvedTrip


class WeatherAgent(Specialist):
    name = "weather"

    async def forecast(self, trip: ResolvedTrip, ctx: CallContext) -> list[dict[str, Any]]:
        found = await self.cached_call(
            "get_forecast",
            {
                "location": trip.destination.code,
                "start_date": trip.start_date.isoformat(),
                "end_date": trip.end_date.isoformat(),
            },
            ctx,
        )
        days: list[dict[str, Any]] = found["days"]
        return days
