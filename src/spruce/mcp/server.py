"""Spruce's MCP server: Heroku's MCP tools (and a few more) over services, in process.

Served over Streamable HTTP at `<api>/mcp`, each request authenticated with the caller's
API key as a Bearer token (as the Platform API does, with its rate limit); every tool
acts as that user, under the API's access rules, and the app's `app[api]` lines say
"via MCP". `spruce mcp` relays stdio to this endpoint (spruce/mcp/bridge.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jsonschema
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from spruce.services import Services
from spruce.services.errors import ServiceError, Unauthorized
from spruce.services.events import REQUEST_CHANNEL
from spruce.services.views import UserView

from . import addon_tools, app_tools, dyno_tools, pipeline_tools, prompts
from .fastpath import STARTED, FastPath
from .registry import Call, Progress, Registry, Tool, ToolError

log = logging.getLogger(__name__)
ACTOR_KEY = "spruce.actor"
INSTRUCTIONS = (
    "Spruce is a self-hosted Heroku. These tools act on its apps, dynos, add-ons and "
    "Postgres databases as the user whose API key you connected with. Tools named like "
    "Heroku's MCP server's take the same arguments."
)


def build_registry() -> Registry:
    r = Registry()
    app_tools.register(r)
    addon_tools.register(r)
    dyno_tools.register(r)
    pipeline_tools.register(r)
    return r


def _tool_json(t: Tool) -> types.Tool:
    return types.Tool(
        name=t.name,
        description=t.description,
        input_schema=t.input_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=t.read_only,
            destructive_hint=t.destructive,
            idempotent_hint=t.idempotent,
            open_world_hint=False,
        ),
    )


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, default=str, ensure_ascii=False)


@dataclass(frozen=True)
class Answer:
    """What a tool call answers: its text, the JSON object it also is (if one), and
    whether it is an error."""

    text: str
    structured: dict[str, Any] | None
    is_error: bool

    @staticmethod
    def error(message: str) -> Answer:
        return Answer(message, None, True)

    def result_json(self) -> dict[str, Any]:
        """The CallToolResult, as JSON (what the SDK would write for it)."""
        out: dict[str, Any] = {"content": [{"type": "text", "text": self.text}]}
        if self.structured is not None:
            out["structuredContent"] = self.structured
        out["isError"] = self.is_error
        return out


def _schema_error(tool: Tool, e: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in e.absolute_path)
    if e.validator == "additionalProperties":
        allowed = ", ".join(sorted(tool.input_schema.get("properties", {})))
        return f"Invalid arguments for {tool.name}: {e.message}. Arguments it takes: {allowed}."
    return f"Invalid arguments for {tool.name}: {(where + ': ') if where else ''}{e.message}."


class McpServer:
    """The MCP server over `services`; the object is the ASGI endpoint the API mounts at /mcp."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.registry = build_registry()
        self._tools = [_tool_json(t) for t in self.registry.tools.values()]
        self._validators = {
            name: jsonschema.Draft7Validator(t.input_schema)
            for name, t in self.registry.tools.items()
        }
        self.server: Server[Any] = Server(
            "spruce",
            version="0.1.0",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
        )
        # Spruce traces nothing from MCP: no span per message (the library's default).
        self.server.middleware = []
        self.sessions = StreamableHTTPSessionManager(self.server, session_idle_timeout=30 * 60)
        self.fast: FastPath | None = (
            None if os.environ.get("SPRUCE_MCP_NO_FAST_PATH") else FastPath(self)
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle: the session manager's task group lives in one task -------------------
    async def start(self) -> None:
        ready = asyncio.Event()

        async def run() -> None:
            async with self.sessions.run():
                ready.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run())
        await asyncio.wait({self._task, asyncio.ensure_future(ready.wait())}, timeout=10)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                log.warning("the MCP sessions did not close in time")

    # -- HTTP: the API key authenticates every request ------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        try:
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthorized("Invalid credentials provided.")
            actor = self.services.accounts.verified(key.strip())
            if actor is None:  # not seen in the last seconds: the store, off the loop
                actor = await asyncio.to_thread(self.services.accounts.authenticate, key.strip())
            self.services.accounts.rate_limiter.take(actor.id)
        except ServiceError as e:
            resp = JSONResponse({"id": e.id, "message": e.message}, status_code=e.status)
            if e.status == 401:
                resp.headers["WWW-Authenticate"] = 'Bearer realm="spruce"'
            await resp(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[ACTOR_KEY] = actor
        state[STARTED] = started
        if scope["method"] == "POST" and self.fast is not None:
            rest = await self.fast.serve(actor, scope, receive, send)
            if rest is None:
                return  # answered on the fast path (spruce/mcp/fastpath.py)
            receive = rest
        await self.sessions.handle_request(scope, receive, send)

    @staticmethod
    def _actor(ctx: ServerRequestContext[Any]) -> UserView:
        request = ctx.request
        actor = request.scope.get("state", {}).get(ACTOR_KEY) if request is not None else None
        if not isinstance(actor, UserView):
            raise Unauthorized("Invalid credentials provided.")
        return actor

    # -- tools ------------------------------------------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        answer = await self.call(self._actor(ctx), params.name, params.arguments, progress)
        return types.CallToolResult(
            content=[types.TextContent(text=answer.text)],
            structured_content=answer.structured,
            is_error=answer.is_error,
        )

    async def call(
        self, actor: UserView, name: str, arguments: dict[str, Any] | None, progress: Progress
    ) -> Answer:
        """One tool call as `actor`: the arguments checked against the tool's schema, then
        its handler; what goes wrong is an error answer with one sentence."""
        tool = self.registry.tools.get(name)
        if tool is None:
            return Answer.error(f"Unknown tool {name!r}.")
        args = dict(arguments or {})
        error = next(iter(self._validators[tool.name].iter_errors(args)), None)
        if error is not None:
            return Answer.error(_schema_error(tool, error))
        token = REQUEST_CHANNEL.set("MCP")
        try:
            value = await tool.handler(Call(self.services, actor, args, progress))
        except (ServiceError, ToolError) as e:
            return Answer.error(e.message)
        except Exception:
            # Never echo the exception: it may carry secrets (URLs with passwords, keys).
            log.exception("MCP tool %s failed", tool.name)
            return Answer.error(f"{tool.name} failed with an internal error.")
        finally:
            REQUEST_CHANNEL.reset(token)
        return Answer(_text(value), value if isinstance(value, dict) else None, False)

    # -- resources and prompts (spruce/mcp/prompts.py) ----------------------------------------
    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        actor = self._actor(ctx)
        apps = await asyncio.to_thread(self.services.apps.list_for, actor)
        return types.ListResourcesResult(resources=prompts.app_resources(apps))

    async def _list_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=prompts.TEMPLATES)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        actor = self._actor(ctx)
        text = await asyncio.to_thread(prompts.read_resource, self.services, actor, params.uri)
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(uri=params.uri, mime_type="application/json", text=text)
            ]
        )

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompts.PROMPTS)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return prompts.get_prompt(params.name, params.arguments or {})


@asynccontextmanager
async def running(server: McpServer) -> AsyncIterator[McpServer]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
