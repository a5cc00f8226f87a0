"""The web page at `/`, end to end in headless Chromium (Debian's `chromium`, driven by Playwright).

A real orchestrator with its workers, the four tool servers and a redis-server of this module's
own; the page is used as a person would: the key and the request typed in, the form submitted
from the keyboard, progress read off the page as the events arrive, the trip confirmed (or
cancelled) with its buttons. Screenshots are saved under pytest's temporary directory (their
paths are printed); with `WAYPOINT_PAGE_SCREENSHOT=<path>` the booked trip's is also written there
(that is how `docs/web-page.png` was made).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.helpers import month_ahead
from tests.support import (
    ApiKey,
    Harness,
    ServiceProcess,
    make_key,
    orchestrator_env,
    own_tool_servers,
    read_sse,
)

MONTH, _ = month_ahead(60)
PATAGONIA = (
    f"4-day hiking trip to Patagonia from Seattle in {MONTH} with one fancy dinner, under $3000 for two"
)
NO_DATES = "hiking trip to Patagonia from Seattle, under $3000 for two"
JAEGER_UI = "http://127.0.0.1:16686"
# Generous: two cores shared with other test runs. Playwright waits only as long as it must.
SETTLE_MS = 90_000
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1100, "height": 900}
REFUSED_BY_THE_API = "Failed to load resource: the server responded with a status of 4"
# Tool output is untrusted: a restaurant (or hotel) may be named anything, markup included.
HOSTILE_NAME = "<img src=x onerror=\"document.body.dataset.pwned='yes'\"><b>Chez Script</b>"


def chromium_path() -> str:
    """Debian's chromium (`make chromium` installs it), or the browser `CHROMIUM` names."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), f"no chromium at {path}: run `make chromium` (apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def fleet(harness: Harness) -> Iterator[tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey]]:
    """An orchestrator on tool servers and a Redis of this module's own (their faults are ours to
    set), with `JAEGER_UI_URL` so that trips carry a trace link; and an API key for the page."""
    with own_tool_servers(harness) as (redis, servers):
        service = harness.start(
            "waypoint-orchestrator", orchestrator_env(redis.url, servers, JAEGER_UI_URL=JAEGER_UI)
        )
        try:
            yield service, servers, make_key(redis.url, "web-page")
        finally:
            service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module, closed (with every page) at its end."""
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-page-screenshots")


class Watched:
    """A page, with what it must never do recorded: script errors, console errors (a CSP
    violation is one), and requests carrying the API key anywhere but the Authorization header."""

    def __init__(self, page: Page, key: ApiKey) -> None:
        self.page = page
        self.key = key
        self.errors: list[str] = []
        self.api_calls: list[Request] = []
        self.key_in_url: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer; the tests that cause them check what the page shows.
        if message.type == "error" and not message.text.startswith(REFUSED_BY_THE_API):
            self.errors.append(f"console: {message.text}")

    def _request(self, request: Request) -> None:
        if self.key.key in request.url:
            self.key_in_url.append(request.url)
        if "/v1/" in request.url:
            self.api_calls.append(request)

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not self.key_in_url, "the API key must never be in a URL"
        assert self.api_calls, "the page called the API"
        for call in self.api_calls:
            assert call.headers.get("authorization") == f"Bearer {self.key.key}", call.url
        assert self.page.evaluate("document.body.dataset.pwned") is None


@pytest.fixture
def page(
    browser: Browser, fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey]
) -> Iterator[Watched]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        watched = Watched(context.new_page(), fleet[2])
        yield watched
    finally:
        context.close()


def open_page(watched: Watched, base_url: str) -> None:
    response = watched.page.goto(f"{base_url}/")
    assert response is not None
    assert response.status == 200
    headers = response.headers
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    expect(watched.page.locator("body")).to_have_attribute("data-ready", "true")


def tab_to(page: Page, element_id: str, *, most: int = 25) -> None:
    """Press Tab until the element has the keyboard focus (it must be reachable by keyboard)."""
    for _ in range(most):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} not reached with Tab in {most} presses")


def shoot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def fits_the_width(page: Page) -> None:
    """Nothing wider than the viewport: no sideways scrolling."""
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"the page is {width}px wide in a {viewport}px viewport"


# Every visible text against the background it is drawn on: WCAG AA contrast (4.5:1, 3:1 for
# large text). Backgrounds are found by walking up to the first opaque one.
CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const node of document.querySelectorAll("body *")) {
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || !node.getClientRects().length) continue;
    const style = getComputedStyle(node);
    if (style.visibility === "hidden") continue;
    const a = lum(rgb(style.color)), b = lum(background(node));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const what = `${node.tagName}#${node.id} "${node.textContent.trim().slice(0, 30)}"`;
    if (ratio < needed) low.push(`${what} ${ratio.toFixed(2)}`);
  }
  return low;
}"""

# Every form control has a label, every button a name, and no id is used twice.
LABELS = """() => {
  const problems = [];
  for (const c of document.querySelectorAll("input, select, textarea")) {
    if (!c.labels || !c.labels.length) problems.push(`no label: #${c.id}`);
  }
  for (const b of document.querySelectorAll("button, a[href]")) {
    if (!b.textContent.trim()) problems.push(`no text: ${b.outerHTML.slice(0, 60)}`);
  }
  const ids = [...document.querySelectorAll("[id]")].map((n) => n.id);
  for (const id of new Set(ids)) if (ids.filter((i) => i === id).length > 1) problems.push(`id twice: ${id}`);
  return problems;
}"""


def accessible(page: Page) -> None:
    assert page.evaluate(LABELS) == []
    assert page.evaluate(CONTRAST) == []


def api_trip(service: ServiceProcess, key: ApiKey, trip_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{service.base_url}/v1/trips/{trip_id}", headers=key.headers, timeout=10)
    response.raise_for_status()
    trip: dict[str, Any] = response.json()
    return trip


def trip_id_of(watched: Watched) -> str:
    """The trip the page created (from its own `POST /v1/trips` call's answer)."""
    for call in watched.api_calls:
        if call.method == "POST" and call.url.endswith("/v1/trips"):
            response = call.response()
            assert response is not None
            trip_id: str = response.json()["id"]
            return trip_id
    raise AssertionError("the page made no trip")


def events_shown(page: Page) -> list[tuple[str, str]]:
    items = page.locator("#progress li").evaluate_all(
        "(items) => items.map((i) => [i.dataset.id, i.dataset.event])"
    )
    return [(str(i), str(e)) for i, e in items]


def test_the_patagonia_trip_is_planned_and_booked_from_the_page(
    page: Watched, fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey], shots: Path
) -> None:
    service, _, key = fleet
    browser_page = page.page
    try:
        open_page(page, service.base_url)
        accessible(browser_page)
        browser_page.fill("#api-key", key.key)
        browser_page.fill("#query", PATAGONIA)
        # From the request to the submit button with the keyboard, and Enter submits.
        browser_page.focus("#query")
        tab_to(browser_page, "submit")
        browser_page.keyboard.press("Enter")

        status = browser_page.locator("#status")
        # Progress appears as the events come, before the trip is planned.
        expect(browser_page.locator('#progress li[data-event="trip.accepted"]')).to_have_count(
            1, timeout=SETTLE_MS
        )
        expect(browser_page.locator('#progress li[data-event="step.started"]').first).to_be_visible(
            timeout=SETTLE_MS
        )
        expect(status).to_have_attribute("data-status", "planned", timeout=SETTLE_MS)
        expect(browser_page.locator('#progress li[data-event="itinerary.ready"]')).to_have_count(1)
        expect(browser_page.locator('#progress li[data-event="trip.settled"]')).to_have_count(1)

        trip_id = trip_id_of(page)
        trip = api_trip(service, key, trip_id)
        assert trip["status"] == "planned"
        itinerary = trip["itinerary"]

        # The itinerary day by day: the dates, the weather, the hike and the dinner.
        days = browser_page.locator("#itinerary-days > li")
        expect(days).to_have_count(4)
        assert days.evaluate_all("(ds) => ds.map((d) => d.dataset.date)") == [
            d["date"] for d in itinerary["days"]
        ]
        for index, day in enumerate(itinerary["days"]):
            shown = days.nth(index)
            expect(shown.locator(".weather")).to_contain_text(day["weather"])
            expect(shown.locator("h4")).to_contain_text(day["title"])
            expect(shown.locator(".tag.hike")).to_have_count(1 if day["hike"] else 0)
            expect(shown.locator(".tag.dinner")).to_have_count(1 if day["dinner"] else 0)
        assert any(d["hike"] for d in itinerary["days"])
        expect(browser_page.locator(".tag.dinner")).to_have_count(1)
        expect(browser_page.locator(".item.flight")).to_contain_text(itinerary["flight"]["carrier"])
        expect(browser_page.locator(".item.hotel")).to_contain_text(itinerary["hotel"]["name"])
        dinner = itinerary["dinners"][0]["restaurant"]
        expect(browser_page.locator(".item.dinner")).to_contain_text(dinner["name"])

        # The prices and the budget, as the API has them.
        budget = itinerary["budget"]
        expect(browser_page.locator("#budget-lines tr")).to_have_count(len(budget["lines"]))
        expect(browser_page.locator("#budget-totals .total")).to_contain_text(f"${budget['total_usd']:,.2f}")
        expect(browser_page.locator("#budget-totals .limit")).to_contain_text(f"${budget['budget_usd']:,.2f}")
        expect(browser_page.locator("#budget-totals .remaining")).to_contain_text(
            f"${budget['remaining_usd']:,.2f}"
        )

        # The trace link opens the trip's trace in Jaeger, in a new tab, without a referrer.
        link = browser_page.locator("#trace-link")
        expect(link).to_be_visible()
        expect(link).to_have_attribute("href", f"{JAEGER_UI}/trace/{trip['trace_id']}")
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(browser_page.locator("#cancel")).to_be_visible()
        accessible(browser_page)
        shoot(browser_page, shots / "planned.png")

        # Confirm, from the keyboard: the page follows the booking and shows it booked.
        tab_to(browser_page, "confirm")
        browser_page.keyboard.press("Enter")
        expect(status).to_have_attribute("data-status", "booked", timeout=SETTLE_MS)
        bookings = browser_page.locator("#bookings li")
        expect(bookings).to_have_count(3)
        assert sorted(bookings.evaluate_all("(bs) => bs.map((b) => b.dataset.kind)")) == [
            "dinner",
            "flight",
            "hotel",
        ]
        expect(browser_page.locator('#bookings li[data-booking-status="confirmed"]')).to_have_count(3)
        expect(browser_page.locator('#progress li[data-event="booking.made"]')).to_have_count(3)
        expect(browser_page.locator('#progress li[data-event="trip.settled"]')).to_have_count(2)
        expect(browser_page.locator("#confirm")).to_be_hidden()
        booked = api_trip(service, key, trip_id)
        assert booked["status"] == "booked"
        assert sorted(b["status"] for b in booked["bookings"]) == ["confirmed"] * 3

        # The page showed every event of the trip's stream once, in order: the stream after the
        # confirm was resumed with Last-Event-ID, not read again from the start.
        stream = read_sse(f"{service.base_url}/v1/trips/{trip_id}/events", auth=key.headers)
        assert events_shown(browser_page) == [(e.id, e.event) for e in stream]
        accessible(browser_page)
        shoot(browser_page, shots / "booked.png")
        wanted = os.environ.get("WAYPOINT_PAGE_SCREENSHOT")
        if wanted:
            # For the README: from the top to the bookings and the first few events.
            bottom = browser_page.evaluate(
                "document.querySelector('#progress li:nth-child(6)').getBoundingClientRect().bottom + scrollY"
            )
            browser_page.screenshot(
                path=wanted,
                full_page=True,
                clip={"x": 0, "y": 0, "width": DESKTOP["width"], "height": bottom + 16},
            )

        # On a phone: the same page, nothing wider than the screen.
        browser_page.set_viewport_size(PHONE)
        fits_the_width(browser_page)
        shoot(browser_page, shots / "booked-phone.png")

        # The key stays for this tab (session storage): a reload keeps it.
        browser_page.reload()
        expect(browser_page.locator("#api-key")).to_have_value(key.key)
        page.check()
    except BaseException:
        shoot(browser_page, shots / "failure-booked.png")
        raise


def test_a_request_without_dates_shows_each_problem_by_its_field_on_a_phone(
    page: Watched, fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey], shots: Path
) -> None:
    service, _, key = fleet
    browser_page = page.page
    browser_page.set_viewport_size(PHONE)
    try:
        open_page(page, service.base_url)
        fits_the_width(browser_page)
        browser_page.fill("#api-key", key.key)
        browser_page.fill("#query", NO_DATES)
        browser_page.click("#submit")

        expect(browser_page.locator("#status")).to_have_attribute(
            "data-status", "needs_input", timeout=SETTLE_MS
        )
        trip = api_trip(service, key, trip_id_of(page))
        problems = {p["field"]: p["reason"] for p in trip["problems"]}
        assert problems, trip
        assert set(problems) <= {"start_date", "end_date"}, problems
        # Each problem is next to its field: the field is invalid and described by the message,
        # and the optional fields are opened to show it.
        expect(browser_page.locator("#details")).to_have_attribute("open", "")
        for field, reason in problems.items():
            control = browser_page.locator(f"#{field}")
            message = browser_page.locator(f"#{field}-problem")
            expect(message).to_be_visible()
            expect(message).to_have_text(reason)
            expect(control).to_have_attribute("aria-invalid", "true")
            described = control.get_attribute("aria-describedby") or ""
            assert f"{field}-problem" in described.split()
        # The summary above the form lists them and has the focus; its links go to the fields.
        summary = browser_page.locator("#problem-summary")
        expect(summary).to_be_visible()
        expect(summary).to_be_focused()
        expect(summary.locator("li")).to_have_count(len(problems))
        first = next(iter(problems))
        summary.locator("a").first.click()
        expect(browser_page.locator(f"#{first}")).to_be_focused()
        expect(browser_page.locator("#itinerary")).to_be_hidden()
        expect(browser_page.locator("#confirm")).to_be_hidden()
        fits_the_width(browser_page)
        accessible(browser_page)
        shoot(browser_page, shots / "needs-input-phone.png")
        page.check()
    except BaseException:
        shoot(browser_page, shots / "failure-needs-input.png")
        raise


def test_refused_requests_show_the_problem_by_its_field(
    page: Watched, fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey], shots: Path
) -> None:
    service, _, key = fleet
    browser_page = page.page
    try:
        open_page(page, service.base_url)
        # No key: said by the key field, nothing sent.
        browser_page.fill("#query", PATAGONIA)
        browser_page.click("#submit")
        expect(browser_page.locator("#api-key-problem")).to_be_visible()
        expect(browser_page.locator("#api-key")).to_have_attribute("aria-invalid", "true")
        assert page.api_calls == []

        # An unknown key: the API's 401, by the key field.
        unknown = "wpk_000000000000_" + "x" * 43
        browser_page.fill("#api-key", unknown)
        browser_page.click("#submit")
        expect(browser_page.locator("#api-key-problem")).to_contain_text("not valid")
        expect(browser_page.locator("#trip")).to_be_hidden()

        # A request the schema refuses (422): each error by its field.
        browser_page.fill("#api-key", key.key)
        browser_page.click("#details summary")
        browser_page.fill("#travelers", "12")
        browser_page.fill("#dining_count", "7")
        browser_page.click("#submit")
        expect(browser_page.locator("#travelers-problem")).to_contain_text("9")
        expect(browser_page.locator("#travelers")).to_have_attribute("aria-invalid", "true")
        expect(browser_page.locator("#dining_count-problem")).to_contain_text("3")
        expect(browser_page.locator("#dining_count")).to_have_attribute("aria-invalid", "true")
        expect(browser_page.locator("#trip")).to_be_hidden()
        accessible(browser_page)
        shoot(browser_page, shots / "refused.png")
        # Every call but the one made without a key, which has a key of its own to check.
        page.api_calls = [c for c in page.api_calls if c.headers.get("authorization") != f"Bearer {unknown}"]
        page.check()
    except BaseException:
        shoot(browser_page, shots / "failure-refused.png")
        raise


def test_tool_output_is_shown_as_text_and_a_trip_can_be_cancelled(
    page: Watched, fleet: tuple[ServiceProcess, dict[str, ServiceProcess], ApiKey], shots: Path
) -> None:
    service, servers, key = fleet
    browser_page = page.page
    hotels, restaurants = servers["mcp-hotels"], servers["mcp-restaurants"]
    hotels.admin("PUT", "/admin/faults", {"search_hotels": {"tamper_names": HOSTILE_NAME}})
    restaurants.admin("PUT", "/admin/faults", {"search_restaurants": {"tamper_names": HOSTILE_NAME}})
    try:
        open_page(page, service.base_url)
        browser_page.fill("#api-key", key.key)
        browser_page.fill("#query", PATAGONIA)
        browser_page.click("#submit")
        expect(browser_page.locator("#status")).to_have_attribute("data-status", "planned", timeout=SETTLE_MS)
        # The names are there, character for character, and made no element.
        expect(browser_page.locator(".item.hotel")).to_contain_text(HOSTILE_NAME)
        expect(browser_page.locator(".item.dinner")).to_contain_text(HOSTILE_NAME)
        assert browser_page.locator("#trip img, #trip b").count() == 0

        browser_page.click("#cancel")
        expect(browser_page.locator("#status")).to_have_attribute(
            "data-status", "cancelled", timeout=SETTLE_MS
        )
        expect(browser_page.locator('#progress li[data-event="trip.cancel_requested"]')).to_have_count(1)
        expect(browser_page.locator("#cancel")).to_be_hidden()
        expect(browser_page.locator("#confirm")).to_be_hidden()
        assert api_trip(service, key, trip_id_of(page))["status"] == "cancelled"
        shoot(browser_page, shots / "cancelled.png")
        page.check()
    except BaseException:
        shoot(browser_page, shots / "failure-cancelled.png")
        raise
    finally:
        hotels.admin("PUT", "/admin/faults", {})
        restaurants.admin("PUT", "/admin/faults", {})
