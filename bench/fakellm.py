"""A scripted OpenAI-compatible endpoint (`POST /v1/chat/completions` on 127.0.0.1), for the
suite and for `make chaos MODEL=1`.

It stands in for the language model, the one external service Waypoint calls that the suite does
not run for real. It speaks the Chat Completions wire format (choices, finish_reason, refusal,
tool calls, usage) over real HTTP, so the orchestrator's own client, retries, budgets and spans
are what is exercised. A test scripts it: `script(...)` queues what the next calls get, in order
(a `Reply`, an HTTP `Status`, a `Hang` past the client's timeout, `Garbage` that is not JSON);
when the queue is empty, each call gets what `responder(request)` answers, if a test set one,
else `default` (a `Reply`). Every request received is kept, decoded, in `requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeModel", "Garbage", "Hang", "Reply", "Status"]


@dataclass(frozen=True)
class Reply:
    """A completion: `content` (text or a JSON-able value), with the usage it reports."""

    content: Any = None
    finish_reason: str = "stop"
    input_tokens: int = 120
    output_tokens: int = 40
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    """An HTTP error answer (429, 500, ...), with a `Retry-After` when given."""

    code: int
    retry_after: float | None = None


@dataclass(frozen=True)
class Hang:
    """No answer for `seconds` (then a well-formed one, which the client has stopped waiting for)."""

    seconds: float


@dataclass(frozen=True)
class Garbage:
    """A 200 answer whose body is not JSON."""


Behaviour = Reply | Status | Hang | Garbage


class FakeModel:
    """The endpoint, serving from a background thread until `stop`."""

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.default: Behaviour = Reply(content={})
        self.responder: Callable[[dict[str, Any]], Behaviour] | None = None
        self.requests: list[dict[str, Any]] = []
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-model", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """What the next calls get, in order (then `default`); replaces what was queued."""
        with self._lock:
            self._queue = list(behaviours)
            self.requests.clear()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: dict[str, Any]) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.pop(0)
            responder = self.responder
        return responder(request) if responder is not None else self.default

    def completion(self, reply: Reply) -> dict[str, Any]:
        content = reply.content
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": reply.refusal}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
            "usage": {
                "prompt_tokens": reply.input_tokens,
                "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens,
            },
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeModel) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the suite's output is for failures."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        behaviour = self.server.fake._next(body)
        match behaviour:
            case Status(code=code, retry_after=retry_after):
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                self._send(code, {"error": {"message": f"scripted {code}", "type": "server_error"}}, headers)
            case Hang(seconds=seconds):
                time.sleep(seconds)
                self._send(200, self.server.fake.completion(Reply(content={})))
            case Garbage():
                self._send_raw(200, b"<html>this is not JSON</html>", "application/json")
            case Reply():
                self._send(200, self.server.fake.completion(behaviour))

    def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_raw(code, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, code: int, data: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (a Hang past its timeout)
