"""A trip's progress as its events arrive.

On a terminal, a live view redrawn in place (`live`): every step with its state, tries, retries
and degradation, the trip's budget use, the latest event. Anywhere else (a pipe, a file, a CI
log), one line per event, appended, never redrawn (`lines`). Or only the view's last frame, once
the trip has settled (`final`: what a recording shows).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from waypoint_orchestrator.cli.api import Event, Trip
from waypoint_orchestrator.cli.render import STATUS_STYLES, clean, money, usage_line

# Events after which the live view reads the trip again, for its budget use.
USAGE_EVENTS = frozenset(
    {"step.finished", "step.failed", "step.degraded", "booking.made", "budget.exhausted", "trip.settled"}
)
STATE_MARKS = {
    "pending": ("·", "dim"),
    "running": ("…", "cyan"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "dim"),
}


def _steps(value: Any) -> list[dict[str, Any]]:
    return [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []


def describe(event: Event) -> str:
    """One line saying what the event means."""
    d = event.data
    step = clean(d.get("step", ""))
    match event.type:
        case "trip.accepted":
            return f"accepted, trace {clean(d.get('trace_id') or 'none')}"
        case "trip.status":
            return f"now {clean(d.get('status', '?'))}"
        case "router.decided":
            return f"{clean(d.get('kind', '?'))}: {clean(d.get('reason', ''))}"
        case "gate.passed":
            trip = d.get("trip") if isinstance(d.get("trip"), dict) else {}
            return _resolved(trip or {})
        case "gate.failed":
            problems = d.get("problems") if isinstance(d.get("problems"), list) else []
            fields = ", ".join(clean(p.get("field", "?")) for p in problems or [] if isinstance(p, dict))
            return f"needs input: {fields}"
        case "plan.created" | "plan.extended":
            ids = [clean(s.get("id", "?")) for s in _steps(d.get("steps"))]
            return f"{len(ids)} step(s): {', '.join(ids)}"
        case "step.started":
            return f"{step} ({clean(d.get('agent', '?'))})"
        case "step.retried":
            # `attempt` is the try about to start; `error`, how the one before it failed.
            tool, error = clean(d.get("tool", "?")), clean(d.get("error", ""))
            return f"{step}: {tool} failed ({error}); try {d.get('attempt', '?')}"
        case "step.finished":
            return f"{step}: {clean(d.get('summary') or 'done')}{_tries(d)}"
        case "step.failed":
            return f"{step}: {clean(d.get('error', ''))}{_tries(d)}"
        case "step.degraded":
            return f"{step}: {clean(d.get('warning', ''))}"
        case "itinerary.ready":
            return clean(d.get("summary", ""))
        case "trip.confirmed":
            return "booking it"
        case "booking.made":
            return (
                f"{clean(d.get('kind', '?'))} {clean(d.get('booking_id', ''))}, {money(d.get('amount_usd'))}"
            )
        case "booking.failed":
            return f"{clean(d.get('kind', '?'))}: {clean(d.get('warning') or d.get('error') or '')}"
        case "compensation.done":
            return f"{clean(d.get('kind', '?'))} booking {clean(d.get('booking_id', ''))} cancelled"
        case "compensation.failed":
            return (
                f"{clean(d.get('kind', '?'))} booking {clean(d.get('booking_id', ''))} "
                f"not cancelled: {clean(d.get('error', ''))}"
            )
        case "budget.exhausted":
            return f"{clean(d.get('budget', '?'))}: {d.get('used', '?')} of {d.get('limit', '?')} used"
        case "spend.refused":
            return (
                f"{money(d.get('amount_usd'))} would pass the key's daily cap of {money(d.get('cap_usd'))} "
                f"({money(d.get('spent_usd'))} spent)"
            )
        case "trip.cancel_requested":
            return "cancelling"
        case "trip.settled":
            detail = clean(d.get("detail", ""))
            settled = f"{clean(d.get('status', '?'))} ({clean(d.get('reason', ''))})"
            return f"{settled}: {detail}" if detail else settled
    return clean(" ".join(f"{k}={v}" for k, v in d.items()))


def _tries(data: dict[str, Any]) -> str:
    attempts = data.get("attempts")
    return f" ({attempts} tries)" if isinstance(attempts, int) and attempts > 1 else ""


def _resolved(trip: dict[str, Any]) -> str:
    def place(key: str) -> str:
        value = trip.get(key)
        return clean(value.get("city", "?")) if isinstance(value, dict) else "?"

    parts = [f"{place('origin')} → {place('destination')}"] if trip.get("destination") else []
    if trip.get("start_date"):
        parts.append(f"{clean(trip['start_date'])} to {clean(trip.get('end_date') or '?')}")
    if trip.get("travelers"):
        parts.append(f"{trip['travelers']} traveller(s)")
    if trip.get("budget_usd") is not None:
        parts.append(f"budget {money(trip['budget_usd'])}")
    return ", ".join(parts) or "complete"


View = Literal["live", "lines", "final"]


@dataclass
class StepView:
    id: str
    agent: str
    state: str = "pending"
    attempts: int = 0
    retries: int = 0
    note: str = ""
    degraded: str = ""


class Progress:
    """What the user sees while a trip runs. Use as a context manager around the event loop.

    `shown_from`: in line mode, events before the first one of this type are not printed (they
    still build the view): `confirm` and `cancel` follow a stream that starts with the plan.
    """

    def __init__(self, console: Console, *, view: View, shown_from: str | None = None) -> None:
        self.console = console
        self.view = view
        self.lines = view == "lines"
        self._shown = shown_from is None
        self._shown_from = shown_from
        self.trip_id = ""
        self.status = "queued"
        self.steps: dict[str, StepView] = {}
        self.usage: dict[str, Any] | None = None
        self.latest = Text("")
        self.notice_text = ""
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._ended: float | None = None
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.view == "live":
            self._live = Live(
                get_renderable=self._render_locked,
                console=self.console,
                refresh_per_second=4,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()  # the last frame stays on the screen
        elif self.view == "final" and kind is None:
            self.console.print(self._render_locked())

    # -- input ------------------------------------------------------------------------------

    def accepted(self, trip: Trip) -> None:
        with self._lock:
            self.trip_id = str(trip.get("id", ""))
            self.status = str(trip.get("status", "queued"))
        if self.lines:
            self.console.print(Text.assemble(("trip ", "bold"), (clean(self.trip_id), "bold cyan")))

    def event(self, event: Event) -> None:
        with self._lock:
            self._apply(event)
            self.latest = self._line(event)
        if not self._shown and event.type == self._shown_from:
            self._shown = True
        if self.lines and self._shown:
            self.console.print(self._line(event), soft_wrap=True)

    def notice(self, text: str) -> None:
        """Something the user should know that is not an event (a retry, a resumed stream)."""
        with self._lock:
            self.notice_text = clean(text)
        if self.lines:
            self.console.print(Text(f"  ↻ {clean(text)}", style="yellow"), soft_wrap=True)

    def sync(self, trip: Trip) -> None:
        """Take what the trip document knows and the events do not say: the budget use, and the
        steps the trip went on without (a failed forecast is `degraded` once the plan is made)."""
        with self._lock:
            usage = trip.get("usage")
            self.usage = usage if isinstance(usage, dict) else self.usage
            for record in _steps(trip.get("steps")):
                sid = str(record.get("id", ""))
                if not sid:
                    continue
                step = self.steps.setdefault(sid, StepView(sid, clean(record.get("agent", ""))))
                step.state = str(record.get("status", step.state))
                step.attempts = int(record.get("attempts") or step.attempts)
                if record.get("degraded"):
                    step.degraded = clean(record["degraded"])

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    # -- state ------------------------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        d = event.data
        step = self.steps.get(str(d.get("step", "")))
        match event.type:
            case "trip.status":
                self.status = str(d.get("status", self.status))
            case "trip.settled":
                self.status = str(d.get("status", self.status))
                self._ended = time.monotonic()
            case "plan.created" | "plan.extended":
                for s in _steps(d.get("steps")):
                    sid = str(s.get("id", ""))
                    if sid and sid not in self.steps:
                        self.steps[sid] = StepView(
                            sid, clean(s.get("agent", "")), str(s.get("status", "pending"))
                        )
            case "step.started" if step is not None:
                step.state = "running"
            case "step.retried" if step is not None:
                step.retries += 1
                step.note = f"retry {step.retries}: {clean(d.get('error', ''))}"
            case "step.finished" if step is not None:
                step.state = "succeeded"
                step.attempts = int(d.get("attempts") or 0)
                step.note = clean(d.get("summary") or "")
            case "step.failed" if step is not None:
                step.state = "failed"
                step.attempts = int(d.get("attempts") or 0)
                step.note = clean(d.get("error", ""))
            case "step.degraded" if step is not None:
                step.degraded = clean(d.get("warning", ""))

    def _line(self, event: Event) -> Text:
        stamp = event.time.strftime("%H:%M:%S") if event.time else "--:--:--"
        style = _event_style(event)
        return Text.assemble((f"{stamp}  ", "dim"), (f"{event.type:<22}", style), describe(event))

    # -- the live view ----------------------------------------------------------------------

    def _render_locked(self) -> RenderableType:
        with self._lock:
            return self._render()

    def _render(self) -> RenderableType:
        elapsed = (self._ended or time.monotonic()) - self._started
        head = Text.assemble(
            ("trip ", "bold"),
            (self.trip_id or "…", "bold cyan"),
            "  ",
            (self.status, STATUS_STYLES.get(self.status, "bold")),
            (f"  {elapsed:.1f} s", "dim"),
        )
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold dim")
        table.add_column("step")
        table.add_column("agent", style="dim")
        table.add_column("state")
        table.add_column("tries", justify="right")
        table.add_column("retries", justify="right")
        table.add_column("note", overflow="fold")
        for step in self.steps.values():
            mark, style = STATE_MARKS.get(step.state, ("?", ""))
            note = Text(step.note)
            if step.degraded:
                note = Text.assemble(("degraded: ", "yellow"), step.degraded)
            table.add_row(
                step.id,
                step.agent,
                Text(f"{mark} {step.state}", style=style),
                str(step.attempts or ""),
                Text(str(step.retries), style="yellow") if step.retries else Text(""),
                note,
            )
        parts: list[RenderableType] = [head]
        if self.steps:
            parts.append(table)
        if self.usage:
            parts.append(Text("budget use  ", style="dim") + Text(usage_line(self.usage)))
        parts.append(self.latest)
        if self.notice_text:
            parts.append(Text(f"↻ {self.notice_text}", style="yellow"))
        return Group(*parts)


def _event_style(event: Event) -> str:
    if event.type in ("step.failed", "compensation.failed", "budget.exhausted", "spend.refused"):
        return "red"
    if event.type in ("step.retried", "step.degraded", "booking.failed", "gate.failed"):
        return "yellow"
    if event.type == "trip.settled":
        return STATUS_STYLES.get(str(event.data.get("status", "")), "bold")
    if event.type in ("step.finished", "booking.made", "itinerary.ready", "gate.passed"):
        return "green"
    return "cyan"
