"""The hot path of `/mcp`: a `tools/call` (or `tools/list`, `ping`) of an open session,
with no progress token, answered as one JSON response.

Streamable HTTP lets a server answer each POSTed request either with an SSE stream or
with `application/json`. The mcp library's transport answers every request with a stream
of its own (a task group, memory streams, pydantic models both ways); a call that will
send no notification needs none of that. Everything else goes to the library, which owns
the sessions (initialize, DELETE, idle expiry): notifications, progress streams,
resources, prompts, the 2026 protocol, and any request this module is not sure of. A call
answered here is the same call (`McpServer.call`): the same schema check, handler, access
rule and errors.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from spruce.services.views import UserView

if TYPE_CHECKING:
    from .server import McpServer

FAST_METHODS = ("tools/call", "tools/list", "ping")
SESSION = b"mcp-session-id"
STARTED = "spruce.mcp_started"
"""scope["state"] key: when the server began on this request (perf_counter), for the
Server-Timing header: `mcp` (the whole request in Spruce) and `tool` (the call itself)."""


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` (already read) once, then what `receive` gives."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _no_progress(done: float, total: float | None, message: str | None) -> None:
    return None


class FastPath:
    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._tools = {
            "tools": [
                t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in server._tools
            ]
        }

    def _live(self, session_id: bytes) -> bool:
        """Is this a session the library has open? (Its table of sessions is not public:
        if it is not where this looks, nothing is answered here.)"""
        instances = getattr(self.server.sessions, "_server_instances", None)
        if not isinstance(instances, dict):
            return False
        transport = instances.get(session_id.decode("latin-1"))
        return transport is not None and not getattr(transport, "is_terminated", True)

    def _request(self, scope: Scope, body: bytes) -> dict[str, Any] | None:
        """The JSON-RPC request this path answers, or None to leave it to the library."""
        headers = dict(scope["headers"])
        version = headers.get(b"mcp-protocol-version")
        if (
            b"application/json" not in headers.get(b"accept", b"")
            or not headers.get(b"content-type", b"").startswith(b"application/json")
            or (
                version is not None and version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS
            )
            or SESSION not in headers
        ):
            return None
        try:
            msg = json.loads(body)
        except ValueError:
            return None
        if (
            not isinstance(msg, dict)
            or msg.get("jsonrpc") != "2.0"
            or msg.get("method") not in FAST_METHODS
            or not isinstance(msg.get("id"), int | str)
            or isinstance(msg.get("id"), bool)
        ):
            return None
        params = msg.get("params", {})
        if not isinstance(params, dict):
            return None
        meta = params.get("_meta")
        if isinstance(meta, dict) and meta.get("progressToken") is not None:
            return None  # progress notifications need the library's stream
        if msg["method"] == "tools/call" and (
            not isinstance(params.get("name"), str)
            or not isinstance(params.get("arguments", {}), dict | None)
        ):
            return None
        if not self._live(headers[SESSION]):
            return None
        return msg

    async def serve(
        self, actor: UserView, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Answer the POST here (None), or hand back the receive the library should read
        it from (its body already read once)."""
        body = await read_body(receive)
        msg = self._request(scope, body)
        if msg is None:
            return replay(body, receive)
        method, params = msg["method"], msg.get("params") or {}
        result: dict[str, Any]
        tool_ms = 0.0
        if method == "tools/list":
            result = self._tools
        elif method == "ping":
            result = {}
        else:
            t = time.perf_counter()
            answer = await self.server.call(
                actor, params["name"], params.get("arguments"), _no_progress
            )
            result = answer.result_json()
            tool_ms = (time.perf_counter() - t) * 1000
        payload = json.dumps(
            {"jsonrpc": "2.0", "id": msg["id"], "result": result},
            default=str,
            ensure_ascii=False,
        ).encode()
        session = dict(scope["headers"])[SESSION]
        started = scope.get("state", {}).get(STARTED)
        timing = f"tool;dur={tool_ms:.2f}"
        if isinstance(started, float):
            timing = f"mcp;dur={(time.perf_counter() - started) * 1000:.2f}, {timing}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (SESSION, session),
                    # what Spruce spent, for benchmarks/mcp/inprocess.py (no secrets)
                    (b"server-timing", timing.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return None
