"""Fixtures: real backend dyno processes and an in-process router on free loopback ports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spruce.netutil import free_port
from spruce.router.server import RouterServer, listening_socket
from spruce.router.state import Router
from spruce.router.timers import RouterTimers

BACKEND = Path(__file__).with_name("backend.py")

FAST = RouterTimers(
    response=1.0,
    idle=1.0,
    connect=0.5,
    boot_wait=1.0,
    all_quarantined=0.6,
    keepalive_idle=5.0,
    quarantine=0.5,
    page_cache=60.0,
    shutdown_grace=1.0,
)


class Backend:
    def __init__(self, name: str, *args: str) -> None:
        self.name = name
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(BACKEND), str(self.port), name, *args],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"

    def dyno(self, state: str = "up") -> dict[str, Any]:
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "state": state}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(name: str = "web.1", *args: str) -> Backend:
        b = Backend(name, *args)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def app_entry(
    app_id: str, hostnames: list[str], dynos: list[dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": app_id,
        "name": app_id,
        "hostnames": hostnames,
        "maintenance": False,
        "released": True,
        "features": [],
        "maintenance_page_url": None,
        "error_page_url": None,
        "web_quantity": max(1, len(dynos)),
        "sleeping": False,
        "eco_quota_exhausted": False,
        "dynos": dynos,
    }
    d.update(kw)
    return d


class RunningRouter:
    def __init__(self, router: Router, server: RouterServer, logs: list[tuple[str, str]]) -> None:
        self.router = router
        self.server = server
        self.logs = logs
        addrs = server.addresses
        self.http_port = addrs[0][1]
        self.https_port = addrs[1][1] if len(addrs) > 1 else 0

    async def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in self.logs:
                if needle in line:
                    return line
            await asyncio.sleep(0.02)
        raise AssertionError(f"no log line with {needle!r} in {self.logs!r}")


@pytest.fixture
async def running_router() -> AsyncIterator[Callable[..., Any]]:
    servers: list[RouterServer] = []

    async def start(
        snapshot: dict[str, Any], timers: RouterTimers = FAST, wakes: list[str] | None = None
    ) -> RunningRouter:
        logs: list[tuple[str, str]] = []
        router = Router(
            timers,
            lambda a, line: logs.append((a, line)),
            (wakes.append if wakes is not None else None),
        )
        server = RouterServer(router)
        router.replace_table(snapshot)
        await server.start(
            [listening_socket("127.0.0.1", 0, reuse_port=False)],
            [listening_socket("127.0.0.1", 0, reuse_port=False)],
        )
        servers.append(server)
        return RunningRouter(router, server, logs)

    yield start
    for s in servers:
        await s.stop()


async def raw_request(
    port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1"
) -> bytes:
    """Send raw bytes, read until the router closes (or timeout)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
    except TimeoutError:
        pass
    writer.close()
    return out


async def one_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return status, headers, body
