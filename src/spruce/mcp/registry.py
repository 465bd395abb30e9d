"""The tool table: each MCP tool's name, input schema, annotations and handler.

Heroku's tools keep Heroku's names and input schemas exactly (heroku_tools.json is the
list their server publishes); Spruce's own tools declare theirs here. A handler gets a
`Call` (the services, the caller and the arguments) and returns text or JSON-able data;
a `ServiceError` or `ToolError` it raises becomes an `isError` result with its message.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from spruce.services import Services
from spruce.services.errors import InvalidParams
from spruce.services.views import AppView, UserView

T = TypeVar("T")
# Store calls run here, never on the event loop (as the API does with its own threads).
_DB_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mcp-db")

Progress = Callable[[float, float | None, str | None], Awaitable[None]]


class ToolError(Exception):
    """A tool cannot do what was asked; the message is for the agent (never a secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotBuilt(ToolError):
    """The capability behind a tool does not exist in Spruce yet: say so, never pretend."""

    def __init__(self, tool: str, capability: str, hint: str = "") -> None:
        super().__init__(
            f"{tool}: {capability} are not built in Spruce yet, so this tool cannot run."
            + (f" {hint}" if hint else "")
        )


async def _no_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


@dataclass
class Call:
    services: Services
    actor: UserView
    args: dict[str, Any]
    progress: Progress = _no_progress

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(_DB_THREADS, lambda: ctx.run(fn, *args))

    def opt(self, name: str, default: str | None = None) -> str | None:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise InvalidParams(f"{name} must be a string.")
        return value

    def need(self, name: str) -> str:
        value = self.opt(name)
        if value is None:
            raise InvalidParams(f"{name} is required.")
        return value

    def seconds(self, name: str, default: float, most: float) -> float:
        """A positive number of seconds (at most `most`)."""
        value = self.args.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidParams(f"{name} must be a positive number of seconds.")
        return min(float(value), most)

    def flag(self, name: str) -> bool:
        return bool(self.args.get(name, False))

    def app(self, name: str = "app", owner_only: bool = False, need: str = "view") -> AppView:
        """The app named in `name`, if the caller may do `need` to it (the API's access
        rule: view, deploy, operate or manage). Blocking (a store read): call it in a store
        thread, or use `target`."""
        return self.services.apps.get(self.actor, self.need(name), owner_only=owner_only, need=need)

    async def target(
        self,
        name: str = "app",
        *,
        owner_only: bool = False,
        confirm: bool = False,
        need: str = "view",
    ) -> AppView:
        """The app a tool acts on, in one place: named by the argument `name`, checked
        with the API's access rule (`owner_only`: what only its owner or team admin may
        do), and, for Spruce's own destructive tools, `confirm` naming it."""
        app = await self.db(self.app, name, owner_only, need)
        if confirm and self.args.get("confirm") != app.name:
            raise ToolError(
                f"This is destructive: to proceed, pass confirm={app.name!r} (the app's name)."
            )
        return app


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    heroku: bool = True
    """One of Heroku's MCP server's tools (same name and schema)."""


def _heroku_schemas() -> dict[str, dict[str, Any]]:
    text = resources.files("spruce.mcp").joinpath("heroku_tools.json").read_text()
    return {t["name"]: t for t in json.loads(text)}


HEROKU = _heroku_schemas()


@dataclass
class Registry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def heroku(
        self,
        name: str,
        *,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register the handler of one of Heroku's tools, under its published schema."""
        spec = HEROKU[name]

        def add(fn: Handler) -> Handler:
            self.tools[name] = Tool(
                name,
                spec["description"].strip(),
                spec["inputSchema"],
                fn,
                read_only,
                destructive,
                idempotent,
            )
            return fn

        return add

    def own(
        self,
        name: str,
        description: str,
        properties: dict[str, Any],
        required: tuple[str, ...] = (),
        *,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register a tool Heroku's server lacks."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = list(required)

        def add(fn: Handler) -> Handler:
            self.tools[name] = Tool(
                name, description, schema, fn, read_only, destructive, idempotent, heroku=False
            )
            return fn

        return add


def string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}
