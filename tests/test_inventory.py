"""The simulated providers behave like the world: distance, season, class and scarcity matter,
and every replica gives the same answer."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from typing import Any

from tests.support import ServiceProcess, mcp_client, structured

TODAY = dt.datetime.now(dt.UTC).date()


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


def next_date(month: int, dom: int = 10) -> dt.date:
    """The next `month`/`dom` at least a week ahead (always within a year)."""
    for year in (TODAY.year, TODAY.year + 1):
        candidate = dt.date(year, month, dom)
        if candidate >= TODAY + dt.timedelta(days=7):
            return candidate
    raise AssertionError("unreachable")


async def call(url: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    async with mcp_client(url) as client:
        return structured(await client.call_tool(tool, args))


async def test_replicas_answer_the_same(replicas: dict[str, tuple[ServiceProcess, ServiceProcess]]) -> None:
    for name, tool, args in [
        (
            "mcp-flights",
            "search_flights",
            {
                "origin": "LAX",
                "destination": "SYD",
                "depart_date": day(45),
                "return_date": day(55),
                "passengers": 2,
            },
        ),
        (
            "mcp-hotels",
            "search_hotels",
            {"location": "Sydney", "check_in": day(46), "check_out": day(50), "guests": 2},
        ),
        ("mcp-restaurants", "search_restaurants", {"location": "Sydney", "date": day(47), "party_size": 2}),
    ]:
        first, second = replicas[name]
        assert await call(first.mcp_url, tool, args) == await call(second.mcp_url, tool, args)


async def test_flights_take_longer_and_cost_more_with_distance(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-flights"].mcp_url
    figures = []
    for destination in ("SFO", "JFK", "LHR", "SIN"):
        found = await call(
            url,
            "search_flights",
            {"origin": "SEA", "destination": destination, "depart_date": day(50), "passengers": 1},
        )
        offers = found["offers"]
        figures.append(
            (
                found["distance_km"],
                min(o["slices"][0]["duration_minutes"] for o in offers),
                statistics.median(o["price_per_passenger"] for o in offers),
            )
        )
    distances, durations, prices = zip(*figures, strict=True)
    assert list(distances) == sorted(distances)
    assert list(durations) == sorted(durations)
    assert list(prices) == sorted(prices)
    # About 800 km/h in the air: a nonstop SEA-SFO (1,090 km) is close to two hours.
    assert 90 <= durations[0] <= 180


async def test_cabin_and_date_change_the_fare(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-flights"].mcp_url
    base = {"origin": "ORD", "destination": "DEN", "passengers": 1}
    economy = await call(url, "search_flights", {**base, "depart_date": day(70), "cabin": "economy"})
    business = await call(url, "search_flights", {**base, "depart_date": day(70), "cabin": "business"})
    assert min(o["price_per_passenger"] for o in business["offers"]) > 2 * min(
        o["price_per_passenger"] for o in economy["offers"]
    )
    fares = set()
    for offset in range(70, 77):
        found = await call(url, "search_flights", {**base, "depart_date": day(offset)})
        fares.add(min(o["price_per_passenger"] for o in found["offers"]))
    assert len(fares) >= 4


async def test_fares_rise_as_seats_sell(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-flights"].mcp_url
    args = {"origin": "ATL", "destination": "MIA", "depart_date": day(80), "passengers": 1}
    offer = (await call(url, "search_flights", args))["offers"][0]
    await call(
        url, "book_flight", {"offer_id": offer["offer_id"], "passengers": 4, "request_id": uuid.uuid4().hex}
    )
    after = {o["offer_id"]: o for o in (await call(url, "search_flights", args))["offers"]}[offer["offer_id"]]
    assert after["seats_left"] == offer["seats_left"] - 4
    assert after["price_per_passenger"] > offer["price_per_passenger"]


async def test_weather_follows_latitude_and_the_hemisphere_season(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-weather"].mcp_url

    async def mean_high(location: str, start: dt.date) -> float:
        forecast = await call(
            url,
            "get_forecast",
            {
                "location": location,
                "start_date": start.isoformat(),
                "end_date": (start + dt.timedelta(days=13)).isoformat(),
            },
        )
        return statistics.mean(float(d["high_c"]) for d in forecast["days"])

    january, july = next_date(1), next_date(7)
    assert await mean_high("Seattle", july) > await mean_high("Seattle", january) + 5
    assert await mean_high("Patagonia", january) > await mean_high("Patagonia", july) + 5
    assert await mean_high("Singapore", january) > await mean_high("Seattle", january) + 10
    tropical_swing = abs(await mean_high("Singapore", july) - await mean_high("Singapore", january))
    assert tropical_swing < 5


async def test_hotels_are_priced_by_stars_and_country(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-hotels"].mcp_url

    async def by_stars(location: str) -> dict[int, float]:
        found = await call(
            url,
            "search_hotels",
            {"location": location, "check_in": day(100), "check_out": day(102), "guests": 2},
        )
        stars: dict[int, list[float]] = {}
        for h in found["hotels"]:
            stars.setdefault(h["stars"], []).append(h["nightly_price"])
        return {s: statistics.mean(p) for s, p in stars.items()}

    zurich, buenos_aires = await by_stars("Zurich"), await by_stars("Buenos Aires")
    assert max(zurich) >= 4
    assert zurich[max(zurich)] > zurich[min(zurich)]
    assert statistics.mean(zurich.values()) > statistics.mean(buenos_aires.values())


async def test_fine_dining_costs_more(servers: dict[str, ServiceProcess]) -> None:
    found = await call(
        servers["mcp-restaurants"].mcp_url,
        "search_restaurants",
        {"location": "Paris", "date": day(30), "party_size": 2},
    )
    by_level: dict[int, list[float]] = {}
    for r in found["restaurants"]:
        by_level.setdefault(r["price_level"], []).append(r["price_per_person"])
    levels = sorted(by_level)
    means = [statistics.mean(by_level[level]) for level in levels]
    assert len(levels) >= 3
    assert means == sorted(means)
