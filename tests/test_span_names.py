"""Span names stay short: a Redis pipeline's span is named by its distinct commands, a few."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from tests.support import RedisServer
from waypoint_common.telemetry import BoundedSpanNames, bounded_name


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BoundedSpanNames())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RedisInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()


async def test_a_long_pipeline_gets_a_short_span_name(
    redis_server: RedisServer, exported: InMemorySpanExporter
) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        pipe = client.pipeline(transaction=False)
        for n in range(200):
            pipe.get(f"test:span-names:{n}")
        pipe.hset("test:span-names:h", "a", "1")
        await pipe.execute()
        await client.get("test:span-names:0")
    finally:
        await client.aclose()
    names = [s.name for s in exported.get_finished_spans()]
    assert "GET HSET" in names  # the pipeline: its distinct commands
    assert "GET" in names  # a single command keeps its name
    assert max(len(n) for n in names) <= 64


def test_bounded_names() -> None:
    assert bounded_name("GET") == "GET"
    assert bounded_name("MULTI HSET EXPIRE EXEC") == "MULTI HSET EXPIRE +1"
    assert bounded_name(" ".join(["GET"] * 300)) == "GET"
