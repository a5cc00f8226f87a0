"""Structured JSON logs carrying the current trace and span ids."""

from __future__ import annotations

import logging
import sys

from opentelemetry import baggage, trace
from pythonjsonlogger.json import JsonFormatter


class _TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` of the active span, and the trip id, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        trip_id = baggage.get_baggage("waypoint.trip_id")
        if trip_id:
            record.trip_id = str(trip_id)
        return True


def setup_logging(service_name: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr: time, level, logger, message, service and trace ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContextFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service_name},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request made is noise next to the traces, which have them all.
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # uvicorn installs its own handlers; route its records through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
