"""A trip as a person reads it: status, the problems to fix, the itinerary day by day with its
prices, the total against the budget, bookings, warnings, budget use and the trace link.

Every string from the API is shown as text (`clean`): never as markup, and with control
characters made visible, so that a name a tool server returned cannot restyle or rewrite the
terminal.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from waypoint_orchestrator.cli.api import ApiProblem, Trip

STATUS_STYLES = {
    "queued": "bold cyan",
    "running": "bold cyan",
    "booking": "bold cyan",
    "planned": "bold green",
    "booked": "bold green",
    "partial": "bold yellow",
    "needs_input": "bold yellow",
    "over_budget": "bold red",
    "failed": "bold red",
    "cancelled": "bold dim",
}


def clean(value: Any) -> str:
    """`value` as one-line text with every control character shown as an escape."""
    text = value if isinstance(value, str) else str(value)
    return "".join(
        c if c == " " or unicodedata.category(c)[0] != "C" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def money(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def usage_line(usage: dict[str, Any]) -> str:
    """What the trip used of its budgets: `6 of 40 steps, 4 of 60 tool calls, 0 of 50,000 tokens`
    (and the model's cost, if any)."""
    limits, used = _dict(usage.get("limits")), _dict(usage.get("used"))
    parts = []
    for name, limit in (("steps", "max_steps"), ("tool calls", "max_tool_calls"), ("tokens", "max_tokens")):
        count = used.get(name.replace(" ", "_"), 0)
        parts.append(f"{count:,} of {limits.get(limit, 0):,} {name}")
    cost = used.get("cost_usd")
    if isinstance(cost, int | float) and cost > 0:
        parts.append(f"model cost {money(cost)}")
    return ", ".join(parts)


def trace_link(trip: Trip, jaeger: str) -> str | None:
    """The trip's trace in Jaeger: the API's link if it has one, else `jaeger`'s."""
    if trip.get("trace_url"):
        return clean(trip["trace_url"])
    if trip.get("trace_id"):
        return f"{jaeger.rstrip('/')}/trace/{clean(trip['trace_id'])}"
    return None


def print_problem(console: Console, error: ApiProblem) -> None:
    """An error answer: its status, title and detail, then each invalid field on its line."""
    console.print(
        Text.assemble(
            ("error ", "bold red"),
            (f"{error.status} {clean(error.title)}", "bold"),
            f": {clean(error.detail)}",
        )
    )
    for field, message in error.errors:
        console.print(Text.assemble("  ", (clean(field), "bold"), f": {clean(message)}"))


def print_trip(console: Console, trip: Trip, *, jaeger: str) -> None:
    status = str(trip.get("status", "?"))
    itinerary = _dict(trip.get("itinerary"))
    console.print()
    console.print(
        Text.assemble(
            ("trip ", "bold"),
            (clean(trip.get("id", "?")), "bold cyan"),
            "  ",
            (status, STATUS_STYLES.get(status, "bold")),
        )
    )
    if itinerary.get("summary"):
        console.print(Text(clean(itinerary["summary"])))
    termination = _dict(trip.get("termination"))
    problems = [_dict(p) for p in _list(trip.get("problems"))]
    if problems:
        console.print(Text("The request needs more input; say it again with:", style="bold yellow"))
        for problem in problems:
            console.print(
                Text.assemble(
                    "  ", (clean(problem.get("field", "?")), "bold"), f": {clean(problem.get('reason', ''))}"
                )
            )
    elif termination and termination.get("reason") != "done" and termination.get("detail"):
        style = "red" if status in ("failed", "over_budget") else "yellow"
        console.print(
            Text.assemble(
                (f"{clean(termination.get('reason', ''))}: ", f"bold {style}"), clean(termination["detail"])
            )
        )
    for step in (_dict(s) for s in _list(trip.get("steps"))):
        if step.get("status") == "failed" and step.get("error"):
            failed = f"  step {clean(step.get('id', '?'))} failed: {clean(step['error'])}"
            if step.get("degraded"):  # the trip went on without it
                console.print(
                    Text(f"{failed}; the trip goes on with {clean(step['degraded'])}", style="yellow")
                )
            else:
                console.print(Text(failed, style="red"))
    if itinerary.get("days"):
        console.print(_days(itinerary))
    if itinerary.get("budget"):
        console.print(_costs(trip, itinerary))
    bookings = [_dict(b) for b in _list(trip.get("bookings"))]
    if bookings:
        console.print(_bookings(bookings))
    warnings = [clean(w) for w in _list(trip.get("warnings"))]
    if warnings:
        console.print(Text("Warnings", style="bold yellow"))
        for warning in warnings:
            console.print(Text(f"  • {warning}"))
    if trip.get("manual_intervention_required"):
        undone = "A booking could not be undone: a person must check it (see the warnings)."
        console.print(Text(undone, style="bold red"))
    usage = _dict(trip.get("usage"))
    if usage:
        console.print(Text.assemble(("Budget use  ", "bold"), usage_line(usage)))
    link = trace_link(trip, jaeger)
    if link:
        console.print(Text.assemble(("Trace       ", "bold"), (link, "underline")))


def _day_costs(itinerary: dict[str, Any]) -> dict[str, float]:
    """What is paid for on which day: the flights on the outbound departure's day, the hotel on
    the day of arrival (the first day without flights), each dinner on its evening."""
    days = [str(_dict(d).get("date", "")) for d in _list(itinerary.get("days"))]
    costs: dict[str, float] = {}

    def add(day: str, amount: Any) -> None:
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            key = day if day in days else (days[0] if days else day)
            costs[key] = costs.get(key, 0.0) + float(amount)

    flight, hotel = _dict(itinerary.get("flight")), _dict(itinerary.get("hotel"))
    slices = [_dict(s) for s in _list(flight.get("slices"))]
    if flight:
        add(str(slices[0].get("departure_local", ""))[:10] if slices else "", flight.get("total_price"))
    if hotel:
        add(str(slices[0].get("arrival_local", ""))[:10] if slices else "", hotel.get("total_price"))
    for dinner in (_dict(d) for d in _list(itinerary.get("dinners"))):
        add(str(dinner.get("date", "")), dinner.get("estimated_cost_usd"))
    return costs


def _date(value: Any) -> str:
    try:
        return dt.date.fromisoformat(str(value)).strftime("%a %d %b")
    except ValueError:
        return clean(value)


def _days(itinerary: dict[str, Any]) -> RenderableType:
    costs = _day_costs(itinerary)
    table = Table(title="Itinerary", title_justify="left", title_style="bold", expand=False)
    table.add_column("day", justify="right")
    table.add_column("date", no_wrap=True)
    table.add_column("plan")
    table.add_column("weather")
    table.add_column("price", justify="right", no_wrap=True)
    for day in (_dict(d) for d in _list(itinerary.get("days"))):
        plan = Text()
        plan.append(clean(day.get("title", "")), style="bold")
        for activity in _list(day.get("activities")):
            plan.append(f"\n• {clean(activity)}")
        cost = costs.get(str(day.get("date", "")))
        table.add_row(
            str(day.get("day", "")),
            _date(day.get("date")),
            plan,
            clean(day.get("weather") or ""),
            money(cost) if cost else "",
        )
    return table


def _costs(trip: Trip, itinerary: dict[str, Any]) -> RenderableType:
    budget = _dict(itinerary.get("budget"))
    table = Table(title="Costs (USD)", title_justify="left", title_style="bold", show_header=False)
    table.add_column("item")
    table.add_column("amount", justify="right", no_wrap=True)
    for line in (_dict(x) for x in _list(budget.get("lines"))):
        table.add_row(clean(line.get("item", "")), money(line.get("amount_usd")))
    table.add_section()
    table.add_row(Text("Total", style="bold"), Text(money(budget.get("total_usd")), style="bold"))
    if budget.get("budget_usd") is not None:
        given = _dict(_dict(trip.get("resolved")).get("budget"))
        label = "Budget"
        amount = given.get("amount")
        if given.get("currency") not in (None, "USD") and isinstance(amount, int | float):
            label += f" ({amount:,.2f} {clean(given['currency'])} at indicative rates)"
        table.add_row(label, money(budget["budget_usd"]))
        within = budget.get("within_budget")
        if within is False:
            table.add_row(
                Text("Over budget by", style="bold red"),
                Text(money(budget.get("shortfall_usd")), style="bold red"),
            )
        elif budget.get("remaining_usd") is not None:
            table.add_row(
                Text("Within budget, left", style="green"),
                Text(money(budget["remaining_usd"]), style="green"),
            )
    return table


def _bookings(bookings: list[dict[str, Any]]) -> RenderableType:
    table = Table(title="Bookings", title_justify="left", title_style="bold")
    table.add_column("kind")
    table.add_column("booking", overflow="fold")
    table.add_column("what")
    table.add_column("amount", justify="right")
    table.add_column("status")
    for booking in bookings:
        status = str(booking.get("status", ""))
        table.add_row(
            clean(booking.get("kind", "")),
            clean(booking.get("booking_id", "")),
            clean(booking.get("description", "")),
            money(booking.get("amount_usd")),
            Text(clean(status), style="green" if status == "confirmed" else "dim"),
        )
    return table
