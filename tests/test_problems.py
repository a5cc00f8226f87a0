"""The problem documents Redis failures become: unreachable storage and an exhausted pool differ."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from waypoint_orchestrator import problems


def app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/fail")
    async def fail() -> None:
        raise exc

    return app


async def answer(exc: Exception) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app_raising(exc))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/fail")


async def test_unreachable_redis_is_storage_unavailable() -> None:
    for exc in (
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6380."),
        RedisTimeoutError("Timeout"),
    ):
        response = await answer(exc)
        assert response.status_code == 503
        assert response.headers["content-type"] == problems.PROBLEM_JSON
        assert response.json()["type"] == "/problems/storage-unavailable"
        assert response.headers["retry-after"] == "5"
        assert "6380" not in response.text


async def test_an_exhausted_pool_says_the_server_is_busy_not_that_storage_is_gone() -> None:
    response = await answer(RedisConnectionError(problems.POOL_EXHAUSTED))
    assert response.status_code == 503
    problem = response.json()
    assert problem["type"] == "/problems/overloaded"
    assert "busy" in problem["detail"]
    assert response.headers["retry-after"] == "2"
