"""Serving ASGI apps with uvicorn inside a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from spruce.netutil import free_port


@dataclass
class Served:
    base: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def serve(app: Any, **kwargs: Any) -> AsyncIterator[Served]:
    """Run an ASGI app with uvicorn on a free loopback port inside the test's loop."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **kwargs
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.01)
    scheme = "https" if "ssl_certfile" in kwargs else "http"
    try:
        yield Served(f"{scheme}://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
