"""`waypoint`: plan, follow, show, confirm and cancel trips through the trip API."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from waypoint_orchestrator.cli.api import (
    DEFAULT_API_URL,
    SETTLED,
    ApiProblem,
    EventStream,
    Trip,
    TripApi,
    Unreachable,
    check_api_url,
    local_development_key,
)
from waypoint_orchestrator.cli.progress import USAGE_EVENTS, Progress, View
from waypoint_orchestrator.cli.render import clean, print_problem, print_trip, trace_link

DEFAULT_JAEGER_URL = "http://127.0.0.1:16686"
# Where a cancellation ends: the API's `Prefer: wait` on cancel waits for the same.
CANCEL_ENDS = frozenset({"cancelled", "failed"})


class Code(IntEnum):
    """The exit codes (README, "The `waypoint` command")."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    NEEDS_INPUT = 3
    OVER_BUDGET = 4
    FAILED = 5
    UNREACHABLE = 6
    PARTIAL = 7
    CANCELLED = 8
    NOT_SETTLED = 9
    INTERRUPTED = 130


STATUS_CODES = {
    "planned": Code.OK,
    "booked": Code.OK,
    "needs_input": Code.NEEDS_INPUT,
    "over_budget": Code.OVER_BUDGET,
    "failed": Code.FAILED,
    "partial": Code.PARTIAL,
    "cancelled": Code.CANCELLED,
    "queued": Code.NOT_SETTLED,
    "running": Code.NOT_SETTLED,
    "booking": Code.NOT_SETTLED,
}

# `\b` keeps click from re-wrapping the paragraph.
EXIT_CODES = """\
\b
Exit codes:
  0  planned or booked (for cancel: cancelled)
  1  the API refused the request (its problem is printed), or another error
  2  usage: a bad option or argument, or no API key
  3  needs input: the problems are printed per field (also a 422 from the API)
  4  over budget: the cheapest complete option and the shortfall are printed
  5  failed: the reason is printed
  6  API unreachable: no answer, or only 5xx answers, after retries
  7  partial: planned without something (the warnings say what)
  8  cancelled
  9  not settled yet (show: queued, running or booking)
  130  interrupted (Ctrl-C); the trip goes on on the server
"""

app = typer.Typer(
    name="waypoint",
    help="Plan, follow and book trips with the Waypoint trip API.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api",
        envvar="WAYPOINT_API_URL",
        help="The trip API's base URL.",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="WAYPOINT_API_KEY",
        show_default=False,
        help="An API key (wpk_…). Without one, the key `make run` saved for a fleet on this machine.",
    ),
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print the final trip document (JSON) only, nothing else on stdout.")
]
Jaeger = Annotated[
    str,
    typer.Option(
        "--jaeger",
        envvar="JAEGER_UI_URL",
        help="The Jaeger UI, for trace links the API does not give itself.",
    ),
]
TripId = Annotated[str, typer.Argument(help="The trip's id.", show_default=False)]


class Output:
    """Where things are printed: stdout (`out`) for what the command produces, stderr (`err`) for
    errors and, with `--json`, for notices."""

    def __init__(self, json_output: bool, svg: Path | None = None) -> None:
        self.json = json_output
        self.svg = svg
        self.out = Console(highlight=False, record=svg is not None)
        self.err = Console(stderr=True, highlight=False)

    @property
    def view(self) -> View:
        """A live view redrawn in place on a terminal; its last frame alone when recording; a
        line per event anywhere else."""
        if self.svg is not None:
            return "final"
        # FORCE_COLOR makes rich treat a pipe as a terminal: colour, yes; redrawing a log, no.
        terminal = self.out.is_terminal and not self.out.is_dumb_terminal and sys.stdout.isatty()
        return "live" if terminal else "lines"

    def notice(self, text: str) -> None:
        self.err.print(Text(clean(text), style="yellow"))

    def error(self, text: str) -> None:
        self.err.print(Text.assemble(("waypoint: ", "bold red"), clean(text)))

    def finish(self, code: int) -> NoReturn:
        if self.svg is not None:
            # Without rich's web fonts: the picture names nothing outside itself.
            svg = re.sub(r"@font-face\s*\{[^}]*\}\s*", "", self.out.export_svg(title="waypoint"))
            self.svg.write_text(svg, encoding="utf-8")
        raise typer.Exit(code)


@contextmanager
def _client(
    output: Output, api: str, api_key: str | None, notice: Callable[[str], None]
) -> Iterator[TripApi]:
    try:
        base = check_api_url(api)
    except ValueError as exc:
        output.error(f"--api: {exc}")
        raise typer.Exit(Code.USAGE) from None
    key = api_key or local_development_key(base)
    if not key:
        output.error(
            f"no API key for {base}: set WAYPOINT_API_KEY or pass --api-key "
            "(`make run` prints one; `waypoint-admin keys create --tenant <name>` makes one)"
        )
        raise typer.Exit(Code.USAGE)
    with TripApi(base, key, notice=notice) as client:
        yield client


def _refused(output: Output, error: ApiProblem) -> NoReturn:
    print_problem(output.err, error)
    if error.status == 401:
        output.err.print(Text("  (check WAYPOINT_API_KEY or --api-key)", style="dim"))
    invalid = error.status == 422 and error.type.endswith("/validation-error")
    output.finish(Code.NEEDS_INPUT if invalid else Code.REFUSED)


def _status_code(trip: Trip) -> Code:
    return STATUS_CODES.get(str(trip.get("status")), Code.REFUSED)


def _settle(output: Output, trip: Trip, jaeger: str, code: Code | None = None) -> NoReturn:
    """Print the trip (the document itself with `--json`) and exit with its code."""
    if output.json:
        sys.stdout.write(json.dumps(trip, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        print_trip(output.out, trip, jaeger=jaeger)
    output.finish(code if code is not None else _status_code(trip))


def _follow(
    output: Output,
    client: TripApi,
    trip: Trip,
    *,
    shown_from: str | None = None,
    until: frozenset[str] = SETTLED,
) -> Trip:
    """Follow the trip's events (a live view, a line per event, or nothing with `--json`) until it
    settles; the trip as it settled."""
    trip_id = str(trip["id"])
    stream: EventStream = client.events(trip_id, until=until)
    progress = Progress(output.out, view=output.view, shown_from=shown_from)
    stream.on_resume = output.notice if output.json else progress.notice
    try:
        with progress:
            if not output.json:
                progress.accepted(trip)
            for event in stream:
                if output.json:
                    continue
                progress.event(event)
                if not progress.lines and event.type in USAGE_EVENTS:
                    # On an error the view keeps the last figures; the stream goes on.
                    with contextlib.suppress(Unreachable, ApiProblem):
                        progress.sync(client.get(trip_id))
                progress.refresh()
            if stream.trip is not None:
                progress.sync(stream.trip)
    except Unreachable as exc:
        output.error(f"{exc}\nthe trip goes on: `waypoint show {trip_id}` for where it stands")
        output.finish(Code.UNREACHABLE)
    except KeyboardInterrupt:
        output.error(f"stopped following trip {trip_id}; it goes on: `waypoint show {trip_id}`")
        output.finish(Code.INTERRUPTED)
    return stream.trip if stream.trip is not None else client.get(trip_id)


@app.command(epilog=EXIT_CODES)
def plan(
    query: Annotated[str, typer.Argument(help="The trip, in your words.", show_default=False)],
    book: Annotated[bool, typer.Option("--book", help="Book it once it is planned.")] = False,
    json_output: JsonOutput = False,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            show_default=False,
            help="Reuse the key of an earlier try (printed when the API stopped answering) to get "
            "that trip instead of a second one. Default: a new one.",
        ),
    ] = None,
    jaeger: Jaeger = DEFAULT_JAEGER_URL,
    svg: Annotated[Path | None, typer.Option("--svg", hidden=True)] = None,
) -> None:
    """Plan a trip from free text, follow it live, and print the itinerary.

    Example: waypoint plan "4-day hiking trip to Patagonia from Seattle in March, under $3000 for two"
    """
    output = Output(json_output, svg)
    key = idempotency_key or f"waypoint-cli-{uuid.uuid4().hex}"
    notice = (
        output.notice
        if json_output
        else (lambda text: output.out.print(Text(f"  ↻ {clean(text)}", style="yellow")))
    )
    with _client(output, api, api_key, notice) as client:
        try:
            trip = client.create({"query": query, "book": book}, key)
        except ApiProblem as exc:
            _refused(output, exc)
        except Unreachable as exc:
            output.error(
                f"{exc}\nif the trip was accepted before the API stopped answering, the same command "
                f"with --idempotency-key {key} gets it rather than making a second one"
            )
            output.finish(Code.UNREACHABLE)
        trip = _follow(output, client, trip)
    _settle(output, trip, jaeger)


@app.command(epilog=EXIT_CODES)
def show(
    trip_id: TripId,
    json_output: JsonOutput = False,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    jaeger: Jaeger = DEFAULT_JAEGER_URL,
) -> None:
    """Print a trip as it stands now."""
    output = Output(json_output)
    with _client(output, api, api_key, output.notice) as client:
        trip = _call(output, lambda: client.get(trip_id))
    _settle(output, trip, jaeger)


@app.command(epilog=EXIT_CODES)
def confirm(
    trip_id: TripId,
    json_output: JsonOutput = False,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    jaeger: Jaeger = DEFAULT_JAEGER_URL,
) -> None:
    """Book a planned trip, follow the booking, and print the trip with its bookings."""
    output = Output(json_output)
    with _client(output, api, api_key, output.notice) as client:
        trip = _call(output, lambda: client.confirm(trip_id))
        trip = _follow(output, client, trip, shown_from="trip.confirmed")
    _settle(output, trip, jaeger)


@app.command(epilog=EXIT_CODES)
def cancel(
    trip_id: TripId,
    json_output: JsonOutput = False,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    jaeger: Jaeger = DEFAULT_JAEGER_URL,
) -> None:
    """Cancel a trip (its bookings are cancelled too) and print it; exits 0 once it is cancelled."""
    output = Output(json_output)
    with _client(output, api, api_key, output.notice) as client:
        trip = _call(output, lambda: client.cancel(trip_id))
        trip = _follow(output, client, trip, shown_from="trip.cancel_requested", until=CANCEL_ENDS)
    _settle(output, trip, jaeger, Code.OK if trip.get("status") == "cancelled" else None)


@app.command(epilog=EXIT_CODES)
def events(
    trip_id: TripId,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object a line: id, event, data.")
    ] = False,
    last_event_id: Annotated[
        str | None, typer.Option("--last-event-id", show_default=False, help="Start after this event.")
    ] = None,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
) -> None:
    """Print a trip's event stream as the API sends it (resumed if the connection drops), until the
    trip has settled."""
    output = Output(json_output)
    with _client(output, api, api_key, output.notice) as client:
        stream = client.events(trip_id, last_event_id)
        stream.on_resume = output.notice
        try:
            for event in stream:
                if json_output:
                    line = json.dumps(
                        {"id": event.id, "event": event.type, "data": event.data}, ensure_ascii=False
                    )
                else:
                    data = json.dumps(event.data, ensure_ascii=False)
                    line = f"id: {event.id}\nevent: {event.type}\ndata: {data}\n"
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        except ApiProblem as exc:
            _refused(output, exc)
        except Unreachable as exc:
            output.error(str(exc))
            output.finish(Code.UNREACHABLE)
        except KeyboardInterrupt:
            output.finish(Code.INTERRUPTED)
    output.finish(Code.OK)


@app.command(epilog=EXIT_CODES)
def trace(
    trip_id: TripId,
    api: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    jaeger: Jaeger = DEFAULT_JAEGER_URL,
) -> None:
    """Print the link to the trip's trace in Jaeger."""
    output = Output(False)
    with _client(output, api, api_key, output.notice) as client:
        trip = _call(output, lambda: client.get(trip_id))
    link = trace_link(trip, jaeger)
    if link is None:
        output.error(f"trip {trip_id} has no trace id")
        output.finish(Code.REFUSED)
    sys.stdout.write(link + "\n")
    output.finish(Code.OK)


def _call(output: Output, request: Callable[[], Trip]) -> Trip:
    try:
        return request()
    except ApiProblem as exc:
        _refused(output, exc)
    except Unreachable as exc:
        output.error(str(exc))
        output.finish(Code.UNREACHABLE)


def main() -> Any:
    return app()
