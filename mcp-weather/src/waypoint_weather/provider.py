"""Where forecasts come from: a small interface, and a climate model on real coordinates.

The simulation follows latitude (warmer towards the equator), the hemisphere's season (July
is summer in Seattle and winter in Patagonia) and a seeded, day-to-day correlated variation,
so every replica gives the same forecast for the same place and day. A real provider
(Open-Meteo, say) would implement `WeatherProvider`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Protocol

from waypoint_common.geography import Place
from waypoint_common.inventory import seeded_rng
from waypoint_common.results.weather import Condition, DailyForecast


class WeatherProvider(Protocol):
    def daily(self, place: Place, day: dt.date) -> DailyForecast: ...


def _noise(place: Place, day: dt.date, what: str) -> float:
    """A value in about [-1, 1], smooth from one day to the next (a 3-day moving average)."""
    total = 0.0
    for back in range(3):
        d = day - dt.timedelta(days=back)
        total += seeded_rng("weather", what, place.code, d.isoformat()).uniform(-1, 1)
    return total / 1.8


def suitability(high: float, precip_probability: float, wind: float) -> float:
    """0-1: how good a day is for being outdoors (hiking)."""
    score = 1.0 - 0.7 * precip_probability
    if high < 8:
        score -= (8 - high) * 0.05
    if high > 27:
        score -= (high - 27) * 0.06
    if wind > 30:
        score -= (wind - 30) * 0.02
    return round(min(1.0, max(0.0, score)), 2)


class SimulatedWeather:
    def daily(self, place: Place, day: dt.date) -> DailyForecast:
        lat = abs(place.lat)
        mean = 27 - 0.38 * lat
        amplitude = 0.18 * lat
        peak = 201 if place.lat >= 0 else 20
        doy = day.timetuple().tm_yday
        seasonal = math.cos(2 * math.pi * (doy - peak) / 365.25)
        temp = mean + amplitude * seasonal + 3.5 * _noise(place, day, "temp")
        spread = 4 + 1.5 * (1 + _noise(place, day, "spread"))
        base_rain = 0.5 if lat < 15 else 0.22 if lat < 35 else 0.35
        base_rain -= 0.08 * seasonal if lat >= 35 else 0
        precip_p = round(min(0.95, max(0.02, base_rain + 0.3 * _noise(place, day, "rain"))), 2)
        precip_mm = round(max(0.0, (precip_p - 0.35) * 25 * (1 + _noise(place, day, "mm")) / 2), 1)
        wind = round(max(0.0, 8 + 0.35 * lat + 10 * _noise(place, day, "wind")), 1)
        high, low = round(temp + spread / 2, 1), round(temp - spread / 2, 1)
        return DailyForecast(
            date=day,
            condition=_condition(high, precip_p, precip_mm, wind),
            high_c=high,
            low_c=low,
            precipitation_probability=precip_p,
            precipitation_mm=precip_mm,
            wind_kph=wind,
            outdoor_suitability=suitability(high, precip_p, wind),
        )


def _condition(high: float, precip_p: float, precip_mm: float, wind: float) -> Condition:
    if precip_mm >= 0.5 and high <= 1:
        return "snow"
    if precip_mm >= 4:
        return "rain"
    if precip_mm > 0:
        return "showers"
    if wind >= 40:
        return "windy"
    if precip_p < 0.2:
        return "sunny"
    return "partly_cloudy" if precip_p < 0.4 else "cloudy"
