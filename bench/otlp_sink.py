"""An OTLP/HTTP receiver for the benchmarks: takes what the services export, counts it, keeps nothing.

The services' OpenTelemetry SDK exporters POST protobuf bodies to `/v1/traces` and
`/v1/metrics`; this decodes each trace request (as a collector's receiver would) to count its
spans (in all, and by service and instrumentation scope), and answers `200` with an empty export
response. `GET /stats` tells what arrived. It runs
as a process of its own (`python -m bench.otlp_sink --port N`), so that what it costs is not the
services' nor the load generator's; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

TRACES_PATH = "/v1/traces"


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.spans = 0
        self.bytes = 0
        self.by_source: Counter[str] = Counter()  # "<service> <instrumentation scope>": spans

    def add(self, path: str, size: int, spans: Counter[str]) -> None:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.bytes += size
            self.spans += spans.total()
            self.by_source.update(spans)

    def as_json(self) -> bytes:
        with self.lock:
            return json.dumps(
                {
                    "requests": self.requests,
                    "spans": self.spans,
                    "bytes": self.bytes,
                    "by_source": dict(self.by_source),
                }
            ).encode()


def _service(resource_spans: ResourceSpans) -> str:
    for attribute in resource_spans.resource.attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return "unknown"


def _spans(body: bytes) -> Counter[str]:
    """The request's spans by `<service> <instrumentation scope>`."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: Counter[str] = Counter()
    for rs in request.resource_spans:
        for scope in rs.scope_spans:
            spans[f"{_service(rs)} {scope.scope.name}"] += len(scope.spans)
    return spans


def handler(counts: Counts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            counts.add(self.path, len(body), _spans(body) if self.path == TRACES_PATH else Counter())
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = counts.as_json() if self.path == "/stats" else b"{}"
            self.send_response(200 if self.path == "/stats" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(Counts()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
