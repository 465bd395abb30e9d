"""Plain connections accepted by the router itself (router/early.py): the first request is
served before the loop watches the socket, and every other case hands the socket to the loop
without losing or reordering a byte. Run on the test's loop and on uvloop (the workers')."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from spruce.router.early import Acceptor
from spruce.router.server import RouterServer, listening_socket
from spruce.router.state import Router

from .conftest import FAST, app_entry, one_response

H = "demo.localhost"


def table(*apps: dict) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


async def early_paths(
    port: int, router: Router, logs: list[tuple[str, str]], acceptor: Acceptor
) -> None:
    open_ = lambda: asyncio.open_connection("127.0.0.1", port)  # noqa: E731
    # a new connection per request (Connection: close): answered, then closed
    for i in range(5):
        reader, writer = await open_()
        writer.write(f"GET /name?i={i} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = await asyncio.wait_for(one_response(reader), 5)
        assert (status, body, headers["connection"]) == (200, b"web.1", "close")
        assert await _read_all(reader) == b""
        writer.close()
    lines = [line for _, line in logs if 'path="/name?i=' in line]
    assert len(lines) == 5 and all('fwd="127.0.0.1"' in line for line in lines)
    assert router.fast_lane >= 4  # the first opened the pooled dyno connection
    # keep-alive: the first request early, the next ones once the loop watches the socket
    reader, writer = await open_()
    for _ in range(3):
        writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
        assert (await asyncio.wait_for(one_response(reader), 5))[2] == b"web.1"
    # two pipelined requests in the first bytes, then the end
    writer.close()
    reader, writer = await open_()
    writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode() * 2)
    for _ in range(2):
        assert (await asyncio.wait_for(one_response(reader), 5))[2] == b"web.1"
    writer.close()
    # nothing to read at accept (TCP_DEFER_ACCEPT hands a silent client over after ~1 s): the
    # loop waits for the request
    reader, writer = await open_()
    await asyncio.sleep(1.5)
    assert acceptor.unread == 1
    writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    assert (await asyncio.wait_for(one_response(reader), 5))[2] == b"web.1"
    writer.close()
    # a first request the fast lane declines (a body): the ordinary path, bytes in order
    reader, writer = await open_()
    writer.write(
        f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\n\r\nabc"
        f"GET /name HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode()
    )
    status, _, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and b'"body": "abc"' in body
    assert (await asyncio.wait_for(one_response(reader), 5))[2] == b"web.1"
    assert await _read_all(reader) == b""
    writer.close()
    # a response larger than what a slow reader's socket takes at once: the rest follows
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=s)
    writer.write(f"GET /big?n=60000 HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    await asyncio.sleep(0.3)
    status, _, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and body == b"z" * 60000
    writer.close()
    # a client that closes without a word, and one that resets
    _, writer = await open_()
    writer.close()
    r = socket.create_connection(("127.0.0.1", port))
    r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    r.close()
    for _ in range(100):  # every connection's end was seen
        if router.open_connections == 0:
            break
        await asyncio.sleep(0.02)
    assert router.open_connections == 0


async def _serve_and_check(dyno: dict) -> None:
    logs: list[tuple[str, str]] = []
    router = Router(FAST, lambda a, line: logs.append((a, line)), None)
    router.replace_table(table(app_entry("a", [H], [dyno])))
    server = RouterServer(router)
    await server.start([listening_socket("127.0.0.1", 0, reuse_port=False)], [])
    try:
        acceptor = server._servers[0]
        assert isinstance(acceptor, Acceptor)  # the path under test
        await early_paths(server.addresses[0][1], router, logs, acceptor)
        assert acceptor.accepted >= 10  # (the two that never spoke are never handed over)
    finally:
        await server.stop()
    assert server.addresses == []


async def test_early_accept_on_the_asyncio_loop(backends) -> None:
    await _serve_and_check(backends().dyno())


def test_early_accept_on_uvloop(backends) -> None:
    dyno = backends().dyno()
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(_serve_and_check(dyno))
    finally:
        loop.close()
