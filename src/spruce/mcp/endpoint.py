"""The API's /mcp route. The MCP server is built on the first request: the `mcp` library
takes a while to import, and `spruce up` should not wait for it."""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from spruce.services import Services

if TYPE_CHECKING:
    from .server import McpServer


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
