"""The tool servers' front door: who may call (the service token) and from where (Host/Origin).

`ServiceGuard` is plain ASGI in front of everything a tool server serves except its probes
(`/healthz`, `/readyz`):

1. `Host` and `Origin` are checked exactly as the MCP SDK checks them for `/mcp` (the same
   allowed hosts and origins; a bad Host is `421`, a bad Origin `403`), so a DNS-rebinding page
   in a browser reaches neither `/mcp` nor `/admin`;
2. `Authorization: Bearer <service token>` is required (compared in constant time); missing or
   wrong is `401` with `WWW-Authenticate: Bearer`. Without a configured token (development and
   tests only: production refuses to start) this step is skipped;
3. `/mcp` answers only `POST`: the servers are stateless and have nothing to push, so `GET` (a
   standalone SSE stream) and `DELETE` (session end) are `405` with `Allow: POST`, as the MCP
   Streamable HTTP transport allows. No request can hold a stream open on a tool server.
"""

from __future__ import annotations

import hmac

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PROBES = frozenset({"/healthz", "/readyz"})
REALM = "waypoint-tools"


def bearer_header(token: SecretStr | None) -> dict[str, str]:
    """The header a caller sends to a tool server (nothing without a token)."""
    return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}


def bearer_matches(authorization: str | None, token: SecretStr) -> bool:
    """Whether an `Authorization` header carries `token`, compared in constant time."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())


class ServiceGuard:
    """Host/Origin check, service token and `POST`-only `/mcp`, in front of a tool server's app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: SecretStr | None,
        security: TransportSecuritySettings,
        mcp_path: str = "/mcp",
    ) -> None:
        self.app = app
        self.token = token
        self.security = TransportSecurityMiddleware(security)
        self.mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        # is_post=False: only Host and Origin here; the SDK checks an MCP POST's Content-Type.
        refused = await self.security.validate_request(Request(scope), is_post=False)
        if refused is not None:
            await refused(scope, receive, send)
            return
        if self.token is not None:
            authorization = Headers(scope=scope).get("authorization")
            if not bearer_matches(authorization, self.token):
                challenge = f'Bearer realm="{REALM}"'
                if authorization:
                    challenge += ', error="invalid_token"'
                response = JSONResponse(
                    {
                        "error": "unauthorized",
                        "detail": "this endpoint needs the service credential: "
                        "Authorization: Bearer <WAYPOINT_SERVICE_TOKEN>",
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": challenge},
                )
                await response(scope, receive, send)
                return
        if scope["path"].rstrip("/") == self.mcp_path and scope["method"] != "POST":
            response = JSONResponse(
                {
                    "error": "method not allowed",
                    "detail": "this server is stateless and pushes nothing: send MCP messages with POST",
                },
                status_code=405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
