"""`/mcp` ahead of the API (spruce.mcp.endpoint.mcp_first): its routing, and an MCP
request that fails unexpectedly answers the API's 500 without the exception's text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from spruce.mcp.endpoint import mcp_first


class FakeMcp:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        if self.fail:
            raise RuntimeError("postgres://u:secret@db/x")
        await PlainTextResponse("mcp")(scope, receive, send)


def api() -> Starlette:
    return Starlette(routes=[Route("/apps", lambda r: PlainTextResponse("api"))])


async def get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.post(path)


@pytest.mark.asyncio
async def test_mcp_goes_first_and_the_rest_to_the_api() -> None:
    mcp = FakeMcp()
    app = mcp_first(api(), mcp)  # type: ignore[arg-type]
    assert (await get(app, "/mcp")).text == "mcp"
    assert (await get(app, "/apps")).status_code == 405  # the API's: a GET route
    assert (await get(app, "/mcp/x")).status_code == 404
    assert mcp.paths == ["/mcp"]


@pytest.mark.asyncio
async def test_an_unexpected_error_is_the_apis_500_without_its_text() -> None:
    r = await get(mcp_first(api(), FakeMcp(fail=True)), "/mcp")  # type: ignore[arg-type]
    assert r.status_code == 500
    assert r.json() == {"id": "internal_server_error", "message": "Internal server error."}
    assert "secret" not in r.text
