"""MCP servers deployed as apps: listing, calls over one-off dynos' stdio, and the toolkit.

An app process type named `mcp*` is an MCP server speaking JSON-RPC on stdio. Each use
starts a one-off dyno through the platform link (`open_stdio`) and drives it with the `mcp`
SDK's `ClientSession` over that byte pipe. Tool lists are cached per server (they are what
`/v1/mcp/servers` shows as `primitives_status: synced`). `/mcp` is one Streamable-HTTP MCP
endpoint (the SDK's session manager) listing every server's tools as `<namespace>/<tool>`
and forwarding calls; it authenticates with the model key, like the rest of the API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.message import SessionMessage
from starlette.types import Receive, Scope, Send

from .errors import InferenceError
from .link import KeyGrant, LinkError, McpProcessType, PlatformLink, StdioSession

if TYPE_CHECKING:
    from .service import InferenceService

log = logging.getLogger(__name__)
LIST_TTL = 120  # seconds a dyno gets to answer tools/list
DEFAULT_SIZE = "standard-1x"


@dataclass
class _Synced:
    at: str
    tools: list[dict[str, Any]]
    status: str  # synced | error


@contextlib.asynccontextmanager
async def client_session(stdio: StdioSession) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session over a dyno's stdin/stdout."""
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)

    async def pump_in() -> None:
        async with read_in:
            while line := await stdio.reader.readline():
                if not line.strip():
                    continue
                try:
                    msg = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    await read_in.send(SessionMessage(msg))
                except ValueError as e:
                    await read_in.send(e)

    async def pump_out() -> None:
        async with write_out:
            async for m in write_out:
                data = m.message.model_dump_json(by_alias=True, exclude_unset=True)
                stdio.writer.write(data.encode() + b"\n")
                await stdio.writer.drain()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump_in)
            tg.start_soon(pump_out)
            try:
                async with ClientSession(read_out, write_in) as session:
                    await session.initialize()
                    yield session
            finally:
                tg.cancel_scope.cancel()
    finally:
        await stdio.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tool_json(tool: types.Tool, namespace: str) -> dict[str, Any]:
    return {
        "name": tool.name,
        "namespaced_name": f"{namespace}/{tool.name}",
        "description": tool.description or "",
        "input_schema": tool.input_schema,
        "annotations": tool.annotations.model_dump(exclude_none=True) if tool.annotations else {},
    }


def result_json(result: Any) -> dict[str, Any]:
    """An MCP tool result as the plain JSON an agent's tool completion quotes."""
    if isinstance(result, types.CallToolResult):
        return {
            "content": [c.model_dump(exclude_none=True, by_alias=True) for c in result.content],
            "isError": bool(result.is_error),
        }
    return {"content": [{"type": "text", "text": json.dumps(result, default=str)}], "isError": True}


class McpHub:
    def __init__(self, link: PlatformLink) -> None:
        self.link = link
        self._synced: dict[str, _Synced] = {}
        self._manager: StreamableHTTPSessionManager | None = None

    async def servers(self, grant: KeyGrant) -> list[McpProcessType]:
        try:
            return await self.link.mcp_process_types(grant.addon_id)
        except LinkError as e:
            raise InferenceError(e.status, e.message) from None

    async def _sync(self, grant: KeyGrant, server: McpProcessType) -> _Synced:
        # a new release changes the process type's command or updated_at: list again
        key = f"{server.id}|{server.command}|{server.updated_at}"
        cached = self._synced.get(key)
        if cached is not None and cached.status == "synced":
            return cached
        try:
            stdio = await self.link.open_stdio(
                grant.addon_id, server.id, size=DEFAULT_SIZE, ttl_seconds=LIST_TTL
            )
            with anyio.fail_after(LIST_TTL):
                async with client_session(stdio) as session:
                    listed = await session.list_tools()
            tools = [_tool_json(t, server.namespace) for t in listed.tools]
            synced = _Synced(_now(), tools, "synced")
        except Exception as e:  # a broken server is listed as such, not an API failure
            log.warning(
                "MCP server %s/%s: tools/list failed: %s", server.app_name, server.process_type, e
            )
            synced = _Synced(_now(), [], "error")
        self._synced[key] = synced
        return synced

    async def listing(self, grant: KeyGrant) -> list[dict[str, Any]]:
        out = []
        for s in await self.servers(grant):
            synced = await self._sync(grant, s)
            out.append(
                {
                    "id": s.id,
                    "app_id": s.app_id,
                    "process_type": s.process_type,
                    "process_command": s.command,
                    "created_at": s.created_at or synced.at,
                    "updated_at": s.updated_at or synced.at,
                    "namespace": s.namespace,
                    "server_status": "registered" if synced.status == "synced" else "disconnected",
                    "primitives_status": synced.status,
                    "tools": synced.tools,
                }
            )
        return out

    async def tools(self, grant: KeyGrant) -> list[dict[str, Any]]:
        return [t for s in await self.listing(grant) for t in s["tools"]]

    async def call(
        self,
        grant: KeyGrant,
        namespaced_name: str,
        arguments: dict[str, Any],
        *,
        size: str = DEFAULT_SIZE,
        ttl_seconds: int = 120,
    ) -> dict[str, Any]:
        namespace, _, tool = namespaced_name.partition("/")
        server = next((s for s in await self.servers(grant) if s.namespace == namespace), None)
        if server is None or not tool:
            raise InferenceError(400, f"no MCP tool named {namespaced_name}")
        try:
            stdio = await self.link.open_stdio(
                grant.addon_id, server.id, size=size, ttl_seconds=ttl_seconds
            )
        except LinkError as e:
            raise InferenceError(e.status, e.message) from None
        try:
            with anyio.fail_after(ttl_seconds):
                async with client_session(stdio) as session:
                    result = await session.call_tool(tool, arguments)
        except TimeoutError:
            return {
                "content": [
                    {"type": "text", "text": f"the tool did not answer within {ttl_seconds} s"}
                ],
                "isError": True,
            }
        return result_json(result)

    # -- the MCP toolkit at /mcp ----------------------------------------------------------
    def asgi_app(self, service: InferenceService) -> Any:
        hub = self

        async def grant_of(ctx: Any) -> KeyGrant:
            request = getattr(ctx, "request", None)
            headers = getattr(request, "headers", {}) or {}
            return await service.authenticate(headers.get("authorization"))

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            grant = await grant_of(ctx)
            tools = [
                types.Tool(
                    name=t["namespaced_name"],
                    description=t["description"],
                    input_schema=t["input_schema"] or {"type": "object"},
                )
                for t in await hub.tools(grant)
            ]
            return types.ListToolsResult(tools=tools)

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            grant = await grant_of(ctx)
            try:
                result = await hub.call(grant, params.name, dict(params.arguments or {}))
            except InferenceError as e:
                result = {"content": [{"type": "text", "text": e.message}], "isError": True}
            return types.CallToolResult(
                content=[
                    types.TextContent(type="text", text=c.get("text", json.dumps(c)))
                    for c in result["content"]
                ],
                is_error=result["isError"],
            )

        server: Server[Any] = Server(
            "spruce-mcp-toolkit", version="1", on_list_tools=list_tools, on_call_tool=call_tool
        )
        self._manager = StreamableHTTPSessionManager(server, stateless=True, json_response=True)
        manager = self._manager

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            headers = dict(scope.get("headers") or [])
            try:
                grant = await service.authenticate(
                    headers.get(b"authorization", b"").decode("latin-1")
                )
                if scope.get("method") == "POST":
                    service.admit(grant)  # a toolkit call counts as a request of the key
            except InferenceError as e:
                body = json.dumps(e.body()).encode()
                extra = [(k.lower().encode(), v.encode()) for k, v in e.headers.items()]
                await send(
                    {
                        "type": "http.response.start",
                        "status": e.status,
                        "headers": [(b"content-type", b"application/json"), *extra],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await manager.handle_request(scope, receive, send)

        return app

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if self._manager is None:
            yield
            return
        async with self._manager.run():
            yield
