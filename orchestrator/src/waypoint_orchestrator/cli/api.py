"""The trip API over HTTP, for the `waypoint` command.

Requests are retried where that is safe: a trip is posted with an Idempotency-Key, so a retry
after a lost answer gets the same trip; confirm and cancel are idempotent; reads are reads. An
error answer is an `ApiProblem` (its RFC 9457 document); an API that cannot be reached, or that
keeps answering 5xx, is `Unreachable`. A trip's event stream resumes with `Last-Event-ID`
whenever its connection drops, until the API ends it with the trip settled.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx2

from waypoint_common import devkey
from waypoint_common.errors import FinalError, TransientError

DEFAULT_API_URL = "http://127.0.0.1:8000"
# Statuses a trip does not leave by itself: the API ends an event stream there.
SETTLED = frozenset({"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Pauses between tries of a request that got no answer or a 502/503/504: about 8 s in all.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
# Tries of a request whose connection is refused (about 2 s).
CONNECT_TRIES = 4
# The longest a `Retry-After` is honoured for.
MAX_RETRY_AFTER = 5.0
# The API sends a comment every 15 s on an idle stream; a minute of silence is a dead connection.
STREAM_READ_TIMEOUT = 60.0
# How often a stream is opened again while the trip is settled but not yet where it is going.
SETTLE_POLL_SECONDS = 0.5
_RETRIED_STATUSES = frozenset({502, 503, 504})
_IN_FLIGHT = "/problems/idempotency-key-in-flight"

Trip = dict[str, Any]
Notice = Callable[[str], None]


class ApiProblem(FinalError):
    """The API refused a request: its status and problem document (RFC 9457). Final: the
    client already retried what a retry could help (no answer, 502/503/504)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {self.title}: {self.detail}")

    @property
    def type(self) -> str:
        return str(self.problem.get("type", ""))

    @property
    def title(self) -> str:
        return str(self.problem.get("title", "Error"))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))

    @property
    def errors(self) -> list[tuple[str, str]]:
        """Each invalid field and what is wrong with it."""
        found = self.problem.get("errors")
        if not isinstance(found, list):
            return []
        return [(str(e.get("field", "")), str(e.get("message", ""))) for e in found if isinstance(e, dict)]


class Unreachable(TransientError):
    """No answer from the API (refused, timed out, cut), or only 5xx answers, after the retries."""


@dataclass(frozen=True)
class Event:
    """One server-sent event of a trip: its id (its position in the trip's log), type and data."""

    id: str
    type: str
    data: dict[str, Any]

    @property
    def time(self) -> dt.datetime | None:
        """When the server logged it: an id is `<milliseconds since the epoch>-<sequence>`."""
        millis, _, _ = self.id.partition("-")
        if not millis.isdigit():
            return None
        return dt.datetime.fromtimestamp(int(millis) / 1000).astimezone()


def problem_of(response: httpx2.Response) -> dict[str, Any]:
    """The problem document of an error answer, or one made from its status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        return body
    return {"title": response.reason_phrase or "Error", "status": response.status_code, "detail": ""}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retry_after(response: httpx2.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return default


def check_api_url(url: str) -> str:
    """The API's base URL without a trailing slash; `ValueError` unless it is http(s)://host[:port]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url.rstrip("/")


def local_development_key(api_url: str) -> str | None:
    """The key `make run` left for its fleet (see `waypoint_common.devkey`), when the API is on
    this machine's loopback address."""
    parts = urlsplit(api_url)
    if parts.hostname not in LOOPBACK:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return devkey.read_key(port)


class TripApi:
    """A client of one trip API with one API key."""

    def __init__(
        self, base_url: str, key: str, *, notice: Notice | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url
        self._notice = notice or (lambda _: None)
        self._http = httpx2.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "waypoint-cli"},
            timeout=httpx2.Timeout(timeout, connect=5.0),
        )

    def __enter__(self) -> TripApi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------------------------

    def create(self, body: dict[str, Any], idempotency_key: str) -> Trip:
        """Post a trip; retried with the same Idempotency-Key, so it is made once."""
        return self._json("POST", "/v1/trips", body=body, headers={"Idempotency-Key": idempotency_key})

    def get(self, trip_id: str) -> Trip:
        return self._json("GET", f"/v1/trips/{trip_id}")

    def confirm(self, trip_id: str) -> Trip:
        return self._json("POST", f"/v1/trips/{trip_id}/confirm")

    def cancel(self, trip_id: str) -> Trip:
        return self._json("POST", f"/v1/trips/{trip_id}/cancel")

    def _json(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> Trip:
        response = self._request(method, path, body=body, headers=headers)
        document = response.json()
        if not isinstance(document, dict):
            raise Unreachable(f"{method} {path} answered something other than a JSON object")
        return document

    def _request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx2.Response:
        what = f"{method} {path}"
        for attempt, pause in enumerate((*RETRY_DELAYS, None)):
            try:
                response = self._http.request(method, path, json=body, headers=headers)
            except httpx2.RequestError as exc:
                # Refused connections are given up sooner: nothing is listening, nothing was sent.
                refused = isinstance(exc, httpx2.ConnectError) and attempt >= CONNECT_TRIES - 1
                if pause is None or refused:
                    raise Unreachable(f"{self.base_url} did not answer {what} ({_describe(exc)})") from exc
                self._notice(f"{what}: no answer ({_describe(exc)}); trying again ({attempt + 2})")
                time.sleep(pause)
                continue
            status = response.status_code
            in_flight = status == 409 and problem_of(response).get("type") == _IN_FLIGHT
            if (status in _RETRIED_STATUSES or in_flight) and pause is not None:
                self._notice(f"{what}: {status} {problem_of(response).get('title', '')}; trying again")
                time.sleep(_retry_after(response, pause))
                continue
            if status >= 500:
                detail = problem_of(response).get("detail") or response.reason_phrase
                raise Unreachable(f"{self.base_url} answered {what} with {status} ({detail})")
            if status >= 400:
                raise ApiProblem(status, problem_of(response))
            return response
        raise AssertionError("unreachable: the last try returns or raises")

    # -- events -----------------------------------------------------------------------------

    def events(
        self, trip_id: str, after: str | None = None, *, until: frozenset[str] = SETTLED
    ) -> EventStream:
        return EventStream(self, trip_id, after, until=until)

    def open_stream(self, trip_id: str, last_event_id: str | None) -> Any:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        return self._http.sse(
            f"/v1/trips/{trip_id}/events",
            headers=headers,
            timeout=httpx2.Timeout(10.0, read=STREAM_READ_TIMEOUT),
        )


@dataclass
class EventStream:
    """A trip's events, in order and each once: when the connection drops (or the stream ends
    before the trip's status is one of `until`) it is opened again with `Last-Event-ID`, the id
    of the last event received. After the iteration, `trip` is the trip as it ended."""

    api: TripApi
    trip_id: str
    last_id: str | None = None
    until: frozenset[str] = SETTLED
    trip: Trip | None = None
    resumed: int = 0
    on_resume: Notice = field(default=lambda _: None)

    def __iter__(self) -> Iterator[Event]:
        failures = 0
        while True:
            try:
                with self.api.open_stream(self.trip_id, self.last_id) as source:
                    response: httpx2.Response = source.response
                    if response.status_code != 200:
                        response.read()
                        if response.status_code in _RETRIED_STATUSES and failures < len(RETRY_DELAYS):
                            failures += 1
                            time.sleep(_retry_after(response, RETRY_DELAYS[failures - 1]))
                            continue
                        if response.status_code >= 500:
                            raise Unreachable(
                                f"{self.api.base_url} answered the event stream with {response.status_code}"
                            )
                        raise ApiProblem(response.status_code, problem_of(response))
                    for sse in source:
                        failures = 0
                        self.last_id = sse.id or self.last_id
                        yield Event(sse.id, sse.event, _data(sse.data))
            except httpx2.RequestError as exc:
                failures += 1
                if failures > len(RETRY_DELAYS):
                    raise Unreachable(
                        f"the event stream of trip {self.trip_id} could not be resumed ({_describe(exc)})"
                    ) from exc
                self._resume(f"connection lost ({_describe(exc)})")
                time.sleep(RETRY_DELAYS[failures - 1])
                continue
            # The API ends the stream once the trip has settled and every event is sent. A trip
            # whose cancellation is queued is still settled (booked) until its job runs: look
            # again, quietly, until it reaches one of `until`.
            self.trip = self.api.get(self.trip_id)
            if self.trip["status"] in self.until:
                return
            if self.trip["status"] not in SETTLED:
                self._resume(f"the stream ended with the trip still {self.trip['status']}")
            time.sleep(SETTLE_POLL_SECONDS)

    def _resume(self, why: str) -> None:
        self.resumed += 1
        after = f"after event {self.last_id}" if self.last_id else "from the start"
        self.on_resume(f"{why}; resuming {after}")


def _data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {"text": text}
    return data if isinstance(data, dict) else {"value": data}
