"""The API's /mcp route. The MCP server is built on the first request: the `mcp` library
takes a while to import, and `spruce up` should not wait for it."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spruce.services import Services

if TYPE_CHECKING:
    from .server import McpServer

log = logging.getLogger(__name__)
PATH = "/mcp"


class McpEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._server: McpServer | None = None
        self._lock = asyncio.Lock()

    async def server(self) -> McpServer:
        if self._server is None:
            async with self._lock:
                if self._server is None:
                    module = await asyncio.to_thread(importlib.import_module, "spruce.mcp.server")
                    server: McpServer = module.McpServer(self.services)
                    await server.start()
                    self._server = server
        return self._server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (await self.server())(scope, receive, send)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()


def mcp_first(api: ASGIApp, mcp: McpEndpoint) -> ASGIApp:
    """The API with `/mcp` served ahead of it: an agent's call skips the API's routing
    (a few hundred routes tried in turn) and its middleware. An unexpected error still
    answers the API's 500 (its message only: exceptions may carry secrets)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await api(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await mcp(scope, receive, tracked)
        except Exception:
            log.exception("MCP request failed")
            if started:
                raise
            body = json.dumps(
                {"id": "internal_server_error", "message": "Internal server error."}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    return app
