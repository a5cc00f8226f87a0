"""RFC 9457 problem details: every error the API returns is `application/problem+json`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ClusterDownError, MaxConnectionsError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from waypoint_common.errors import WaypointError

PROBLEM_JSON = "application/problem+json"
# What redis-py's BlockingConnectionPool raises when no connection came free within its wait (on a
# Redis Cluster: `MaxConnectionsError`, see `waypoint_common.connections.ClusterClient`).
POOL_EXHAUSTED = "No connection available."

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(WaypointError):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.slug, exc.title, exc.detail, request.url.path, exc.headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response(
                400,
                "malformed-json",
                "Bad Request",
                "the body is not valid JSON",
                request.url.path,
                errors=errors,
            )
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(
            422, "validation-error", "Unprocessable Content", summary, request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "Error")
        return problem_response(
            exc.status_code,
            title.lower().replace(" ", "-"),
            title,
            str(exc.detail),
            request.url.path,
            dict(exc.headers or {}),
        )

    async def on_redis_down(request: Request, exc: Exception) -> JSONResponse:
        # Fail closed: without Redis there is no idempotency and no trip state, so nothing is taken.
        if str(exc) == POOL_EXHAUSTED or isinstance(exc, MaxConnectionsError):
            # Redis answers, but every pooled connection stayed busy for the pool's whole wait:
            # the process is overloaded, and says so rather than blaming the storage.
            return problem_response(
                503,
                "overloaded",
                "Service Unavailable",
                "the server is too busy to take this request; try again shortly",
                request.url.path,
                {"Retry-After": "2"},
            )
        return problem_response(
            503,
            "storage-unavailable",
            "Service Unavailable",
            "trip storage is unreachable; try again shortly",
            request.url.path,
            {"Retry-After": "5"},
        )

    app.add_exception_handler(RedisConnectionError, on_redis_down)
    app.add_exception_handler(RedisTimeoutError, on_redis_down)
    app.add_exception_handler(ClusterDownError, on_redis_down)  # a cluster missing a master
