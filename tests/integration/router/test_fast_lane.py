"""The HTTP/1.1 fast lane (callback-driven exchanges on pooled dyno connections) keeps every
behaviour: each misbehaving dyno is met on a warm pool, through one keepalive client
connection, so the exchange starts on the fast lane and is handed over mid-way."""

from __future__ import annotations

import asyncio
import json

import pytest

from .conftest import app_entry, one_response

H = "demo.localhost"


def table(*apps) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


async def _client(rr):
    return await asyncio.open_connection("127.0.0.1", rr.http_port)


async def _get(reader, writer, path: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {H}\r\n{extra}\r\n".encode())
    return await asyncio.wait_for(one_response(reader), 5)


async def test_fast_lane_serves_simple_requests_with_full_fidelity(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    for _ in range(3):
        status, headers, body = await _get(reader, writer, "/echo?x=1")
        assert status == 200
    assert rr.router.fast_lane >= 2  # the first request opened the pooled connection
    sent = json.loads(body)
    names = {k.lower(): v for k, v in sent["headers"]}
    assert names["x-forwarded-for"] == "127.0.0.1" and names["x-forwarded-proto"] == "http"
    assert names["via"] == "1.1 spruce" and len(names["x-request-id"]) == 36
    assert headers["via"] == "1.1 spruce" and "connection" not in headers
    line = await rr.wait_log('path="/echo?x=1"')
    assert line.startswith("at=info method=GET ") and " status=200 " in line
    # pipelined requests in one write, then Connection: close
    writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode() * 2)
    assert (await one_response(reader))[2] == b"web.1"
    assert (await one_response(reader))[2] == b"web.1"
    status, headers, _ = await _get(reader, writer, "/name", "Connection: close\r\n")
    assert status == 200 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()


@pytest.mark.parametrize(
    "path,code,status",
    [
        ("/sleep?s=3", "H12", 503),
        ("/close", "H13", 503),
        ("/noreason", "H17", 502),
        ("/bigcookie", "H25", 502),
    ],
)
async def test_dyno_errors_after_the_fast_lane_hands_over(
    running_router, backends, path, code, status
):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    before = rr.router.fast_lane
    assert (await _get(reader, writer, path))[0] == status
    assert rr.router.fast_lane == before + 1
    line = await rr.wait_log(f"code={code}")
    assert "dyno=web.1 " in line and f"status={status}" in line
    writer.close()


async def test_long_chunked_interim_and_head_responses_after_hand_over(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    status, _, body = await _get(reader, writer, "/big?n=3000000")
    assert status == 200 and body == b"z" * 3000000
    status, _, body = await _get(reader, writer, "/chunked")
    assert status == 200 and body == b"hello world"
    status, _, body = await _get(reader, writer, "/interim")
    assert status == 200 and body == b"after hints"
    writer.write(f"HEAD /big?n=1234 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"Content-Length: 1234" in head
    assert (await _get(reader, writer, "/name"))[2] == b"web.1"
    assert rr.router.fast_lane >= 4
    writer.close()


async def test_h18_and_h15_after_hand_over(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    writer.write(f"GET /partial HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    out = await asyncio.wait_for(reader.read(), 5)
    while not out.endswith(b"abc"):
        more = await asyncio.wait_for(reader.read(), 5)
        assert more
        out += more
    await rr.wait_log("code=H18")
    writer.close()
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    writer.write(f"GET /stall HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    await rr.wait_log("code=H15")
    writer.close()


@pytest.mark.parametrize("features", [[], ["runtime-dyno-metadata"]])
async def test_client_closing_while_the_dyno_thinks(running_router, backends, features):
    # the same outcome on the fast lane and (any feature set) on the coroutine path
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()], features=features)))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    writer.write(f"GET /sleep?s=0.3 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    line = await rr.wait_log('path="/sleep?s=0.3"')
    assert " status=200 " in line  # the answer left before the reset came back
    assert rr.router.fast_lane == (0 if features else 1)
    # the connection is gone; the router keeps serving
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    writer.close()


async def test_stale_pool_connection_is_replayed_from_the_fast_lane(running_router, backends):
    b = backends("web.1", "--drop-reused")
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    for _ in range(4):
        status, _, body = await _get(reader, writer, "/name")
        assert status == 200 and body == b"web.1"
    assert rr.router.fast_lane >= 3
    assert not any("code=" in line for _, line in rr.logs)
    writer.close()


async def test_router_fault_on_the_fast_lane_is_h99(running_router, backends, monkeypatch):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    before = rr.router.fast_lane
    # a fault once the fast lane has committed to the request: building the dyno head fails
    # on a Via value that is not bytes (data, not a patched function: the lane may be
    # compiled, and compiled code calls its functions directly)
    monkeypatch.setattr(rr.router.table, "via_h1", None)
    assert (await _get(reader, writer, "/name"))[0] == 503
    assert rr.router.fast_lane == before + 1
    line = await rr.wait_log("code=H99")
    assert "dyno=web.1 " in line and "status=503" in line
    monkeypatch.undo()
    # the same connection carries on, and nothing stays counted in flight
    assert (await _get(reader, writer, "/name"))[0] == 200
    assert not rr.router.inflight
    writer.close()


async def test_a_connection_served_on_the_fast_lane_has_no_task(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200  # opens the pooled connection
    writer.close()  # (that one needed the ordinary loop: nothing was pooled yet)
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    tasks = {t for t in rr.server._tasks if not t.done()}
    for _ in range(3):
        assert (await _get(reader, writer, "/name"))[0] == 200
    await asyncio.sleep(0.1)  # the first connection's end
    (client,) = rr.server.clients
    assert client._parked  # callbacks only, no reader task
    assert {t for t in rr.server._tasks if not t.done()} <= tasks
    assert rr.router.open_connections == 1
    # a request the fast lane declines (a body) starts the ordinary loop, which carries on
    writer.write(f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 2\r\n\r\nhi".encode())
    status, _, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and json.loads(body)["body"] == "hi"
    assert not client._parked
    assert (await _get(reader, writer, "/name"))[0] == 200
    writer.close()
    for _ in range(100):
        if not rr.server.clients and not rr.router.open_connections:
            break
        await asyncio.sleep(0.02)
    assert not rr.server.clients and rr.router.open_connections == 0
    # a parked connection closed by its client ends in the callbacks, counters included
    reader, writer = await _client(rr)
    assert (await _get(reader, writer, "/name"))[0] == 200
    (client,) = rr.server.clients
    assert client._parked
    writer.close()
    for _ in range(100):
        if not rr.server.clients and not rr.router.open_connections:
            break
        await asyncio.sleep(0.02)
    assert not rr.server.clients and rr.router.open_connections == 0
    assert not rr.router.inflight
