"""The language model of `make chaos MODEL=1`: a scripted endpoint that misbehaves on purpose.

It reads the chaos run's queries correctly (they follow one template), picks the dining
specialist's search, and writes narratives from the itinerary's summary; but 10% of its
answers are malformed (half a body that is not JSON, half JSON that breaks the schema) and 5%
are slow (past the orchestrator's model timeout). The run must stay consistent all the same.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
import re
import threading
from collections.abc import Callable
from typing import Any

from bench.fakellm import Behaviour, Garbage, Hang, Reply

QUERY = re.compile(
    r"^(?P<days>\d+)-day trip to (?P<destination>.+?) from (?P<origin>.+?) on (?P<month>[A-Z][a-z]+) "
    r"(?P<day>\d+) for (?P<party>\d+)(?P<dinner> with a fancy dinner)?, budget \$(?P<budget>\d+)$"
)
MALFORMED = 0.10
SLOW = 0.05


def _next_occurrence(month: int, day: int, today: dt.date) -> dt.date:
    date = dt.date(today.year, month, day)
    return date if date >= today else date.replace(year=today.year + 1)


def reading(query: str, today: dt.date) -> dict[str, Any]:
    """What a well-behaved model reads from a chaos query."""
    found = QUERY.match(query)
    if found is None:
        return {"kind": "unsupported", "unsupported_reason": "not a chaos query"}
    month = list(calendar.month_name).index(found["month"])
    return {
        "kind": "full_trip",
        "origin": found["origin"],
        "destination": found["destination"],
        "start_date": _next_occurrence(month, int(found["day"]), today).isoformat(),
        "days": int(found["days"]),
        "travelers": int(found["party"]),
        "budget_amount": int(found["budget"]),
        "budget_currency": "USD",
        "dinners": 1 if found["dinner"] else None,
        "dinner_style": "fancy" if found["dinner"] else None,
    }


def responder(seed: int, today: dt.date, slow_seconds: float) -> Callable[[dict[str, Any]], Behaviour]:
    rng = random.Random(seed)
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Behaviour:
        with lock:
            roll = rng.random()
        if roll < SLOW:
            return Hang(slow_seconds)
        if roll < SLOW + MALFORMED / 2:
            return Garbage()
        if roll < SLOW + MALFORMED:
            return Reply(content='{"days": "several", "travelers": ')
        messages = request["messages"]
        system, user = str(messages[0]["content"]), str(messages[1]["content"])
        if system.startswith("Write a short"):
            return Reply(content=f"{json.loads(user)['summary']}.")
        if "tools" in request:
            if any(m["role"] == "tool" for m in messages):
                return Reply(content="Found restaurants.")
            brief = json.loads(user)
            function = {"name": brief["tool"], "arguments": json.dumps(brief["arguments"])}
            return Reply(
                content=None,
                finish_reason="tool_calls",
                tool_calls=[{"id": "call_1", "type": "function", "function": function}],
            )
        return Reply(content=reading(user, today))

    return respond
