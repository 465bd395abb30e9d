"""MCP clients (the `mcp` library's) against a running platform: over Streamable HTTP
at <api>/mcp, and over stdio through `spruce mcp:start`."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from support import RunningPlatform


def create_user(p: RunningPlatform, email: str) -> str:
    res = p.cli("users:create", email, "--home", str(p.home), check=True)
    return res.stdout.strip().splitlines()[-1].split("API key: ")[1]


@asynccontextmanager
async def http_session(p: RunningPlatform, key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key or p.api_key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http:
        async with streamable_http_client(p.api_url + "/mcp", http_client=http) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                yield s


@asynccontextmanager
async def stdio_session(p: RunningPlatform, key: str | None = None) -> AsyncIterator[ClientSession]:
    env = dict(p.env)
    env["SPRUCE_API_URL"] = p.api_url
    env["SPRUCE_API_KEY"] = key or p.api_key
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "spruce.cli.main", "mcp:start"], env=env
    )
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            yield s


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def ok(result: Any) -> Any:
    """The JSON a successful tool call answered (or its text)."""
    assert not result.is_error, text(result)
    body = text(result)
    try:
        return json.loads(body)
    except ValueError:
        return body


def failed(result: Any) -> str:
    assert result.is_error, text(result)
    return text(result)
