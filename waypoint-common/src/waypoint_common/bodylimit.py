"""A request-body size limit enforced while the body streams in, before anything parses it.

`BodyLimitMiddleware` is plain ASGI and buffers nothing: a declared `Content-Length` above the
limit is refused at once, without reading the body; otherwise the bytes are counted as the app
receives them, and as soon as the count passes the limit the client gets `413` (when the app has
not started its response yet) and the app sees the client disconnect, so it stops reading. The
connection is closed after the `413`, so the rest of the body is never read.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TooLarge = Callable[[Scope], Response]


def _default_too_large(max_bytes: int) -> TooLarge:
    def too_large(_: Scope) -> Response:
        return JSONResponse({"error": "request body too large", "limit_bytes": max_bytes}, status_code=413)

    return too_large


class BodyLimitMiddleware:
    """Answer `413 Content Too Large` to any HTTP request whose body exceeds `max_bytes`.

    `too_large(scope)` builds the refusal (a JSON document by default); `Connection: close` is
    added to it, since the unread rest of the body cannot be left on a kept-alive connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, too_large: TooLarge | None = None) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large or _default_too_large(max_bytes)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.too_large(scope)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        response_started = False
        refused = False  # the body passed the limit: the app reads no more of it
        answered = False  # ...and the client got the 413: the app's own answer is dropped

        async def limited_receive() -> Message:
            nonlocal received, refused, answered
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received <= self.max_bytes:
                return message
            refused = True
            if not response_started:
                answered = True
                await self._refuse(scope, receive, send)
            # The app stops reading as if the client had gone.
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
