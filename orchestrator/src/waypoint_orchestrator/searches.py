"""The plan's searches: each specialist's step, searched by the specialist itself or, for the
specialists named in `WAYPOINT_LLM_SPECIALISTS`, with the language model choosing the calls
(`llm/tools.py`). Either way the answer comes back typed, and is the step's checkpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import TypeAdapter

from waypoint_common.results.flights import FlightOffer
from waypoint_common.results.hotels import HotelOffer
from waypoint_common.results.restaurants import RestaurantOffer
from waypoint_common.results.weather import DailyForecast
from waypoint_orchestrator.agents import Agents
from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.llm.tools import ModelTools
from waypoint_orchestrator.models import DiningWish, ResolvedTrip, StepRecord, Trip
from waypoint_orchestrator.planner import TripShape
from waypoint_orchestrator.steps import StepRunner

T = TypeVar("T")
# How each search step's answer is read back from its checkpoint and written to it.
FLIGHTS = TypeAdapter(list[FlightOffer])
HOTELS = TypeAdapter(list[HotelOffer])
FORECAST = TypeAdapter(list[DailyForecast])
RESTAURANTS = TypeAdapter(list[RestaurantOffer])


class Searches:
    def __init__(
        self,
        agents: Agents,
        steps: StepRunner,
        tools: ModelTools | None = None,
        model_agents: frozenset[str] = frozenset(),
    ) -> None:
        self.agents = agents
        self.steps = steps
        self.tools = tools
        self.model_agents = model_agents if tools is not None else frozenset()

    async def run(
        self,
        trip_id: str,
        step: StepRecord,
        results: dict[str, Any],
        trip: ResolvedTrip,
        trip_shape: TripShape,
        started: Trip | None = None,
    ) -> object:
        """Run one of the plan's searches (or reuse its checkpoint); `started`: as `StepRunner.run`."""
        agents = self.agents
        if step.action == "search_flights":
            flights = agents.flights
            action = self._action(
                trip_id,
                flights,
                flights.arguments(trip),
                "Find flights for the trip.",
                flights.from_answers,
                lambda ctx: flights.search(trip, ctx),
            )
            return await self.steps.run(trip_id, step, results, action, FLIGHTS, started=started)
        if step.action == "search_hotels":
            hotels, check_in, check_out = agents.hotels, trip_shape.check_in, trip_shape.check_out
            action_h = self._action(
                trip_id,
                hotels,
                hotels.arguments(trip, check_in, check_out),
                "Find hotels with rooms for every night of the stay.",
                hotels.from_answers,
                lambda ctx: hotels.search(trip, check_in, check_out, ctx),
            )
            return await self.steps.run(trip_id, step, results, action_h, HOTELS, started=started)
        if step.action == "get_forecast":
            weather = agents.weather
            action_w = self._action(
                trip_id,
                weather,
                weather.arguments(trip),
                "Get the daily forecast for every day of the trip.",
                weather.from_answers,
                lambda ctx: weather.forecast(trip, ctx),
            )
            return await self.steps.run(trip_id, step, results, action_w, FORECAST, started=started)
        if step.action == "search_restaurants":
            dining = agents.dining
            date = trip_shape.dinner_dates[int(step.id.rsplit("_", 1)[1]) - 1]
            assert trip.dining is not None or trip.kind == "dining_only"
            wish = trip.dining or DiningWish()
            action_d = self._action(
                trip_id,
                dining,
                dining.arguments(trip, date),
                f"Find restaurants with a free table for the party that evening ({wish.style} dinner"
                + (f", {wish.cuisine} cuisine" if wish.cuisine else "")
                + ").",
                lambda answers: dining.from_answers(answers, wish),
                lambda ctx: dining.search(trip, date, wish, ctx),
            )
            return await self.steps.run(trip_id, step, results, action_d, RESTAURANTS, started=started)
        raise ValueError(f"no action for step {step.id}")

    def _action(
        self,
        trip_id: str,
        agent: Specialist,
        arguments: dict[str, Any],
        task: str,
        build: Callable[[list[dict[str, Any]]], T],
        search: Callable[[CallContext], Awaitable[T]],
    ) -> Callable[[CallContext], Awaitable[T]]:
        """The step's action: the model choosing the calls when this specialist is given one."""
        tools = self.tools
        if tools is None or agent.name not in self.model_agents:
            return search
        return lambda ctx: tools.search(trip_id, agent, arguments, task, build, search, ctx)
