"""The one seam between the inference server and the platform: `PlatformLink`.

The inference server is a separate process. Everything it needs from the control plane
(who a model key belongs to, where usage goes, one-off dynos, MCP process types, read-only
database credentials) goes through this Protocol. `linkwire` carries it over a unix socket;
`locallink.LocalLink` implements it with local subprocesses for tests and development.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class LinkError(Exception):
    """A refusal from the platform, with the HTTP status the inference API should answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Per-key rate limits; 0 means unlimited."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0


@dataclass(frozen=True)
class KeyGrant:
    """Who a model key belongs to: one model resource (add-on) of one app."""

    addon_id: str
    addon_name: str
    app_id: str
    app_name: str
    model_id: str | None
    """None for a plan without a fixed model (`heroku-inference:standard`)."""
    limits: Limits = field(default_factory=Limits)
    created_at: str = ""


@dataclass(frozen=True)
class Usage:
    """One request's consumption, reported per app and model resource."""

    addon_id: str
    app_id: str
    model_id: str
    kind: str
    """chat | embeddings | images | agents"""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    duration_ms: int = 0


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass(frozen=True)
class McpProcessType:
    """An app process type named `mcp*`, registered as an MCP server of a model resource."""

    id: str
    app_id: str
    app_name: str
    process_type: str
    command: str
    namespace: str
    """Stable, two words (e.g. `acute-partridge`): tool names are `<namespace>/<tool>`."""
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class PostgresCredentials:
    host: str
    port: int
    database: str
    user: str
    password: str

    def connect_kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
        }


class StdioSession:
    """A byte pipe to a one-off dyno's stdin/stdout (stderr is not part of it)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | Any,
        closer: Callable[[], Awaitable[None]],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._closer = closer
        self._closed = False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()
        await self._closer()


@runtime_checkable
class PlatformLink(Protocol):
    """What the inference server asks the platform. Every method may raise `LinkError`."""

    async def verify_key(self, key: str) -> KeyGrant | None:
        """The grant of a model key (the platform stores keys hashed), or None if unknown."""
        ...

    async def record_usage(self, usage: Usage) -> None: ...

    async def run_command(
        self,
        addon_id: str,
        app_name: str,
        command: str,
        *,
        size: str,
        ttl_seconds: int,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run `command` in a one-off dyno of `app_name`, killed after `ttl_seconds`.

        Refused (403) unless the model resource `addon_id` is attached to that app.
        """
        ...

    async def mcp_process_types(self, addon_id: str) -> list[McpProcessType]:
        """The `mcp*` process types of the apps this model resource is attached to."""
        ...

    async def open_stdio(
        self, addon_id: str, server_id: str, *, size: str, ttl_seconds: int
    ) -> StdioSession:
        """Start a one-off dyno running MCP server `server_id`'s command; its stdio."""
        ...

    async def postgres_credentials(
        self, addon_id: str, app_name: str, attachment: str
    ) -> PostgresCredentials:
        """Read-only credentials of the Postgres add-on attached to `app_name` as `attachment`."""
        ...
