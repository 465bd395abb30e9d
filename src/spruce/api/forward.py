"""An ASGI app that hands a request to the main process over its unix socket, as it came.

A read worker (api/read_worker.py) sends here every request it does not answer itself:
writes, and reads that need the main process's memory (dynos, logs, the router, the event
bus). Method, path, query, headers (Request-Id, Range, Authorization...) and body go
through unchanged and so do the status, headers and body of the answer, streamed both ways
(a log tail or a build's output flows as it is written). Only hop-by-hop headers, which
describe one connection and not the message, are left to each hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

# RFC 9110 7.6.1: these describe a connection; each hop frames its own (Expect too: the
# worker's server has answered 100-continue to its client). Date and Server are the
# answering server's: the worker's own server adds them.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"expect",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
FROM_SERVER = frozenset({b"date", b"server"})
UNAVAILABLE = (
    b'{"id":"unavailable","message":"The platform is restarting. Please try again shortly."}'
)

Scope = dict[str, Any]
Receive = Any
Send = Any


class Forwarder:
    """ASGI: every HTTP request it gets goes to `socket_path` (the main process's API)."""

    def __init__(self, socket_path: str) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket_path),
            timeout=httpx.Timeout(None, connect=10.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        self.client.headers = httpx.Headers()  # send the client's headers only, no defaults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        has_body = any(
            k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]
        )
        request = self.client.build_request(
            scope["method"],
            "http://spruce" + target.decode("latin-1"),
            headers=headers,
            content=body() if has_body else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError:
            await _unavailable(send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v)
                        for k, v in response.headers.raw
                        if k.lower() not in HOP_BY_HOP and k.lower() not in FROM_SERVER
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()


async def _unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(UNAVAILABLE)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": UNAVAILABLE})
