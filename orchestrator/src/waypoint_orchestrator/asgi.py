"""What the orchestrator's pure ASGI middlewares share."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Message


def with_headers(message: Message, extra: Mapping[str, str]) -> Message:
    """An `http.response.start` message with `extra` headers added, except those it already has
    (a header the app set wins); any other message unchanged."""
    if message["type"] != "http.response.start" or not extra:
        return message
    headers = list(message.get("headers", []))
    present = {name.lower() for name, _ in headers}
    added = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    return {**message, "headers": headers + [(k, v) for k, v in added if k not in present]}
