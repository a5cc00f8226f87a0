"""The weather tool's structured output."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Condition = Literal["sunny", "partly_cloudy", "cloudy", "showers", "rain", "snow", "windy"]


class DailyForecast(BaseModel):
    date: dt.date
    condition: Condition
    high_c: float
    low_c: float
    precipitation_probability: float = Field(ge=0, le=1)
    precipitation_mm: float = Field(ge=0)
    wind_kph: float = Field(ge=0)
    outdoor_suitability: float = Field(
        ge=0, le=1, description="0 (stay in) to 1 (perfect for a hike): dry, mild and calm scores high."
    )


class Forecast(BaseModel):
    location: str
    country: str
    airport: str
    lat: float
    lon: float
    tz: str
    days: list[DailyForecast] = Field(description="One entry a day from start_date to end_date inclusive.")
