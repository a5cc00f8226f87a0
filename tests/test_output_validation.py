"""The orchestrator's MCP client still refuses a tool result that breaks the tool's output schema,
now that a compiled validator (jsonschema-rs) does the SDK's check.

The misbehaving server is a real MCP server (the SDK's low-level `Server`, which sends what its
handler returns without checking it against the schema it lists), served over Streamable HTTP by
uvicorn on a free loopback port; the clients are the orchestrator's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server, ServerRequestContext
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from tests.support import free_port, wait_until
from waypoint_common.errors import MalformedResult, TransientError
from waypoint_orchestrator.mcpclient import CompiledOutputValidator, CompiledValidationClient
from waypoint_orchestrator.toolclient import ToolClient

OFFERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "offers": {
            "type": "array",
            "items": {"$ref": "#/$defs/Offer"},
        }
    },
    "required": ["offers"],
    "$defs": {
        "Offer": {
            "type": "object",
            "properties": {"offer_id": {"type": "string"}, "total_price": {"type": "number", "minimum": 0}},
            "required": ["offer_id", "total_price"],
        }
    },
}
# What each tool answers: `good` keeps its schema; the others break it in different ways.
ANSWERS: dict[str, dict[str, Any]] = {
    "good": {"offers": [{"offer_id": "A1", "total_price": 120.5}]},
    "wrong_type": {"offers": [{"offer_id": "A1", "total_price": "free"}]},
    "negative": {"offers": [{"offer_id": "A1", "total_price": -1}]},
    "missing": {"offers": [{"offer_id": "A1"}]},
}


def misbehaving_server() -> Server[Any]:
    async def list_tools(_: ServerRequestContext[Any], __: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(
            tools=[
                Tool(name=name, input_schema={"type": "object"}, output_schema=OFFERS_SCHEMA)
                for name in ANSWERS
            ]
        )

    async def call_tool(_: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        answer = ANSWERS[params.name]
        return CallToolResult(content=[TextContent(type="text", text=str(answer))], structured_content=answer)

    return Server("misbehaving", on_list_tools=list_tools, on_call_tool=call_tool)


@pytest.fixture(scope="module")
def misbehaving_url() -> Iterator[str]:
    """The server on a free loopback port, in a thread of its own (its own event loop)."""
    server = misbehaving_server()
    app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    http_server = uvicorn.Server(config)
    thread = threading.Thread(target=http_server.run, name="misbehaving-mcp", daemon=True)
    thread.start()
    try:
        wait_until(lambda: http_server.started, 20, "misbehaving MCP server")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        http_server.should_exit = True
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def compiled_client(url: str) -> AsyncIterator[CompiledValidationClient]:
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(15)) as http,
        CompiledValidationClient(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_a_result_keeping_its_schema_passes_the_compiled_validator(misbehaving_url: str) -> None:
    async with compiled_client(misbehaving_url) as client:
        result = await client.call_tool("good", {})
        # The SDK's cache holds the compiled validator: the check that ran is jsonschema-rs's.
        cached = client.session._tool_output_validators["good"]
    assert not result.is_error
    assert result.structured_content == ANSWERS["good"]
    assert isinstance(cached, CompiledOutputValidator)


@pytest.mark.parametrize(
    ("tool", "why"),
    [
        ("wrong_type", "is not of type 'number'"),
        ("negative", "less than the minimum"),
        ("missing", "required"),
    ],
)
async def test_a_result_breaking_its_schema_is_refused(misbehaving_url: str, tool: str, why: str) -> None:
    async with compiled_client(misbehaving_url) as client:
        with pytest.raises(
            RuntimeError, match=f"Invalid structured content returned by tool {tool}"
        ) as refused:
            await client.call_tool(tool, {})
        assert isinstance(client.session._tool_output_validators[tool], CompiledOutputValidator)
        # The connection is still good after a refusal.
        assert (await client.call_tool("good", {})).structured_content == ANSWERS["good"]
    assert why in str(refused.value)  # the SDK's own message (from its jsonschema validator)


async def test_the_tool_client_never_returns_a_result_breaking_its_schema(misbehaving_url: str) -> None:
    tools = ToolClient("misbehaving", misbehaving_url, timeout=5)
    try:
        assert await tools.call("good", {}) == ANSWERS["good"]
        # A broken contract, not a broken connection: final (not retried), and the replica that
        # answered is neither ejected nor counted against the breaker.
        with pytest.raises(MalformedResult, match="Invalid structured content returned by tool wrong_type"):
            await tools.call("wrong_type", {})
        assert not issubclass(MalformedResult, TransientError)
        assert all(r.ejected_until == 0 for r in tools._replicas.values())
        assert tools.breaker.state == "closed"
        assert await tools.call("good", {}) == ANSWERS["good"]
    finally:
        await tools.aclose()
