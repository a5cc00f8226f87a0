"""The web page at `/`: plan a trip from a form, follow it, read the itinerary, confirm or cancel.

Plain static files from this package (`static/`: one HTML page, one script, one style sheet),
served by the orchestrator itself: no CDN, no build step, so it works on a network without the
internet. The page and its files hold no data and need no API key; the page asks the person for
their key and sends it in the `Authorization` header of each `/v1` call it makes, like any other
client (never in a URL). It reads the event stream with `fetch`, since `EventSource` cannot send
that header.

`SecurityHeaders` puts `X-Content-Type-Options: nosniff` on every answer, and on the page and
its files a strict Content-Security-Policy (scripts, styles and calls from this origin only, no
inline script, no framing) and `Referrer-Policy: no-referrer`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waypoint_orchestrator.asgi import with_headers

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The page is small and changes with the code: browsers ask again each time (If-None-Match).
PAGE_CACHE = {"Cache-Control": "no-cache"}


def install(app: FastAPI) -> None:
    """`GET /` (the page) and `/static/*` (its script, style sheet and icon); neither is in the
    OpenAPI document, which describes the API."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_CACHE)

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC), name="static")


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith(STATIC_PREFIX + "/")


class SecurityHeaders:
    """Pure ASGI: `nosniff` on every answer; the page's policy headers on the page and its files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = {"X-Content-Type-Options": "nosniff"}
        if _is_page(str(scope.get("path", ""))):
            extra.update(PAGE_HEADERS)
            if scope.get("path", "").startswith(STATIC_PREFIX + "/"):
                extra.update(PAGE_CACHE)

        async def send_with_headers(message: Message) -> None:
            await send(with_headers(message, extra))

        await self.app(scope, receive, send_with_headers)
