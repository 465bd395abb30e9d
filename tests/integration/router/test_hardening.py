"""Hostile and broken clients: the router answers as the spec says, never crashes, and
holds no connection afterwards."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest

from .conftest import app_entry, one_response, raw_request

H = "demo.localhost"


@pytest.fixture
async def rr(running_router, backends):
    b = backends()
    return await running_router({"apps": {"a": app_entry("a", [H], [b.dyno()])}})


def req(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + body


@pytest.mark.parametrize(
    "data,status",
    [
        # smuggling: conflicting lengths, lists, obfuscated TE (both framings: see below)
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 3\nContent-Length: 4\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 15,24\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: -1\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 0x10\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nTransfer-Encoding: gzip\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nTransfer-Encoding: chunked, chunked\n\n"), 400),
        (req(f"POST /echo HTTP/1.1\nHost: {H}\nTransfer-Encoding : chunked\n\n"), 400),
        # header injection and malformed lines
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nX-A: a\rb\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nX-A: a\nX-B: b\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\n continued\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nBad Name: x\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nX-A: \x00\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nHost: other\r\n\r\n".encode(), 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (f"GET /a b HTTP/1.1\r\nHost: {H}\r\n\r\n".encode(), 400),
        (f"GET / HTTP/2.0\r\nHost: {H}\r\n\r\n".encode(), 505),
        (f"CONNECT {H}:443 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode(), 405),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
        # limits
        (f"GET /{'a' * 8200} HTTP/1.1\r\nHost: {H}\r\n\r\n".encode(), 414),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Big: {'b' * 8200}\r\n\r\n".encode(), 400),
        (f"GET / HTTP/1.1\r\nHost: {H}\r\n{'N' * 1001}: v\r\n\r\n".encode(), 400),
        ((f"GET / HTTP/1.1\r\nHost: {H}\r\n" + "X-H: v\r\n" * 1001 + "\r\n").encode(), 400),
        (f"{'M' * 128} / HTTP/1.1\r\nHost: {H}\r\n\r\n".encode(), 400),
    ],
)
async def test_refused_requests(rr, data, status):
    out = await raw_request(rr.http_port, data)
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out[:200]
    assert b"Connection: close" in out.split(b"\r\n\r\n")[0]


async def test_accepted_edge_requests(rr):
    # equal duplicate Content-Length merges; non-RFC methods pass; 127-char method passes
    out = await raw_request(
        rr.http_port,
        req(
            f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 3\nContent-Length: 3\nConnection: close\n\n",
            b"abc",
        ),
    )
    assert out.startswith(b"HTTP/1.1 200 ") and b'"body": "abc"' in out
    out = await raw_request(
        rr.http_port, req(f"PURGE /echo HTTP/1.1\nHost: {H}\nConnection: close\n\n")
    )
    assert out.startswith(b"HTTP/1.1 200 ") and b'"method": "PURGE"' in out
    m = "X" * 127
    out = await raw_request(
        rr.http_port, req(f"{m} /echo HTTP/1.1\nHost: {H}\nConnection: close\n\n")
    )
    assert out.startswith(b"HTTP/1.1 200 ")
    # a request line of exactly 8192 bytes is fine
    target = "/echo?" + "q" * (8192 - len("GET /echo? HTTP/1.1") - 0)
    line = f"GET {target} HTTP/1.1"
    assert len(line) == 8192
    out = await raw_request(
        rr.http_port, f"{line}\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode()
    )
    assert out.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcXX0\r\n\r\n",
        b"-3\r\nabc\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\n",
    ],
)
async def test_bad_chunked_bodies(rr, chunks):
    out = await raw_request(
        rr.http_port, req(f"POST /echo HTTP/1.1\nHost: {H}\nTransfer-Encoding: chunked\n\n", chunks)
    )
    assert out.startswith(b"HTTP/1.1 400 ") or out == b""
    await rr.wait_log("status=400")


async def test_half_closed_client_still_gets_its_answer(rr):
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"web.1")


async def test_slow_reading_client_gets_every_byte(rr):
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port, limit=1 << 16)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    n = 6_000_000
    writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    await asyncio.sleep(0.5)  # not reading: the router must hold back, not buffer 6 MB
    (client,) = rr.server.clients
    assert 0 < client.writer.transport.get_write_buffer_size() <= (1 << 20) + 65536
    status, headers, body = await one_response(reader)
    assert status == 200 and len(body) == n and body == b"z" * n
    writer.close()


async def test_slow_reader_gets_every_byte_before_connection_close(rr):
    """A response ending the connection (Connection: close, or any during a router's grace
    period) is not cut while the client is still reading it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port, limit=1 << 16)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    n = 6_000_000
    writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    await asyncio.sleep(0.5)
    status, headers, body = await one_response(reader)
    assert status == 200 and headers["connection"] == "close" and len(body) == n
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()


async def test_idle_and_silent_connections_are_closed(rr):
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    # silent: closed quietly after the idle window (1 s in tests)
    assert await asyncio.wait_for(reader.read(), 3) == b""
    # incomplete head that names no app yet, then silence: 408 and closed
    out = await raw_request(rr.http_port, b"GET / HTTP/1.1\r\nX-A: b\r\n", timeout=3)
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    # once it names an app, that app's log gets H28 and the client nothing (as mid-body)
    out = await raw_request(rr.http_port, f"GET / HTTP/1.1\r\nHost: {H}\r\n".encode(), timeout=3)
    assert out == b""
    await rr.wait_log("code=H28")


async def test_router_survives_and_leaks_nothing(rr):
    bad = [
        b"\x00\xff" * 5000,
        req(f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 100000\n\n", b"x" * 10),
        b"GET / HTTP/1.1\r\nHost: " + b"h" * 9000,
        req(f"GET /partial HTTP/1.1\nHost: {H}\n\n"),
        req(f"GET /close HTTP/1.1\nHost: {H}\n\n"),
    ]

    async def hit(data: bytes) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", rr.http_port)
        w.write(data)
        await asyncio.sleep(0.05)
        w.transport.abort()

    await asyncio.gather(*(hit(d) for d in bad * 10))
    for _ in range(200):
        if rr.router.open_connections == 0 and not rr.router.inflight:
            break
        await asyncio.sleep(0.02)
    assert rr.router.open_connections == 0 and not rr.router.inflight
    async with httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{rr.http_port}/name", headers={"Host": H})
    assert r.status_code == 200


async def test_chunked_wins_over_content_length_and_the_connection_closes(rr):
    # Router 2.0's rule (RFC 9112 6.1): Transfer-Encoding wins, the dyno never sees the
    # Content-Length, and nothing after the chunked body is read as another request
    data = req(
        f"POST /echo HTTP/1.1\nHost: {H}\nContent-Length: 3\nTransfer-Encoding: chunked\n\n",
        b"5\r\nhello\r\n0\r\n\r\n" + req(f"GET /echo?smuggled=1 HTTP/1.1\nHost: {H}\n\n"),
    )
    out = await raw_request(rr.http_port, data)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
    echoed = json.loads(body)
    assert echoed["body"] == "hello"
    assert not any(k.lower() == "content-length" for k, _ in echoed["headers"])
    assert b"smuggled" not in out and out.count(b"HTTP/1.1 ") == 1


async def test_closing_connection_timer_after_a_complete_flush_is_quiet(rr, caplog):
    # the idle-window abort of a closing connection fires after the slow reader got it all:
    # nothing left to cut (asyncio's abort() on that closed transport raised in the callback)
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port, limit=1 << 16)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    n = 6_000_000
    writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    await asyncio.sleep(0.5)
    status, _, body = await one_response(reader)
    assert status == 200 and len(body) == n
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    await asyncio.sleep(1.2)  # past the idle window (1 s in tests)
    assert not [r for r in caplog.records if "Exception in callback" in r.getMessage()]
    assert not rr.router.flushing
