"""A small deterministic fake world: daily weather and umbrella sales per region.

Every value is a pure function of the date (and region), so each run of the example
pipeline sees the same "data" for the same day, with no network access.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta


def _rng(day: date, stream: str) -> random.Random:
    return random.Random(f"{day.isoformat()}/{stream}")


def weather(day: date) -> tuple[float, float]:
    """(rain in mm, temperature in C) for a day."""
    rng = _rng(day, "weather")
    rain = max(0.0, rng.gauss(2.0, 4.0))
    temp = 12.0 + 9.0 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 110) / 365) + rng.gauss(0, 2)
    return round(rain, 1), round(temp, 1)


def sales(day: date, region: str) -> int:
    """Umbrellas sold in a region on a day: more rain, more umbrellas; warmth, fewer."""
    rain, temp = weather(day)
    noise = _rng(day, f"sales/{region}").gauss(0, 4)
    return max(0, round(40 + 9.0 * rain - 1.2 * temp + noise))


def days_until(last: date, count: int) -> list[date]:
    """The `count` days ending with `last`, oldest first."""
    return [last - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
