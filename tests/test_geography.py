"""Place resolution on real airport data."""

from __future__ import annotations

import pytest

from waypoint_common import geography


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SEA", "SEA"),
        ("sea", "SEA"),
        ("Seattle", "SEA"),
        ("  seattle ", "SEA"),
        ("Patagonia", "FTE"),
        ("Torres del Paine", "PNT"),
        ("Portland, Maine", "PWM"),
        ("Portland, Oregon", "PDX"),
        ("London", "LHR"),
        ("São Paulo", "GRU"),
        ("Zurich", "ZRH"),
    ],
)
def test_resolve(text: str, code: str) -> None:
    assert geography.resolve(text).code == code


@pytest.mark.parametrize("text", ["", "Atlantis", "XQZ", "x" * 500])
def test_unknown_places_are_refused(text: str) -> None:
    with pytest.raises(geography.UnknownPlace):
        geography.resolve(text)


def test_places_carry_coordinates_and_time_zones() -> None:
    sea = geography.resolve("Seattle")
    assert sea.tz == "America/Los_Angeles"
    assert 47 < sea.lat < 48
    assert sea.country == "US"
    assert geography.resolve("Patagonia").lat < -45


def test_great_circle_distance() -> None:
    sea, jfk, lhr = (geography.airport(c) for c in ("SEA", "JFK", "LHR"))
    assert geography.great_circle_km(sea, jfk) == pytest.approx(3870, rel=0.02)
    assert geography.great_circle_km(jfk, lhr) == pytest.approx(5540, rel=0.02)
    assert geography.great_circle_km(sea, sea) == 0
