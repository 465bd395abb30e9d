"""Edges of the HTTP/1.1 fast lane and parked connections (real sockets, real dynos): what
happens around a fast-lane exchange (pipelined bytes, the connection's end, faults), what the
dyno pool hands out afterwards, and what the head memos keep."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from .conftest import app_entry, one_response

H = "demo.localhost"


def table(*apps) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


async def _get(reader, writer, path: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {H}\r\n{extra}\r\n".encode())
    return await asyncio.wait_for(one_response(reader), 5)


async def _parked(rr) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A parked connection with a warm pool: its requests take the fast lane from the first."""
    r0, w0 = await asyncio.open_connection("127.0.0.1", rr.http_port)
    assert (await _get(r0, w0, "/name"))[0] == 200  # (opens the pooled dyno connection)
    w0.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port, limit=1 << 16)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    return reader, writer


@pytest.mark.parametrize("parked", [True, False])
@pytest.mark.parametrize("wait", ["0.1", "0.5"])  # relayed whole / handed over (tick 0.25 s)
async def test_nothing_after_connection_close_is_read(running_router, backends, wait, parked):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    if parked:  # no task: the bytes left start one once the exchange is over
        reader, writer = await _parked(rr)
    else:  # the ordinary loop's read is pending (its first request found no pooled connection)
        reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
        assert (await _get(reader, writer, "/name"))[0] == 200
    before = rr.router.fast_lane
    writer.write(f"GET /sleep?s={wait} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(0.03)  # taken by the fast lane; then a request that must not be read
    writer.write(f"DELETE /echo?after-close=1 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    status, headers, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and headers["connection"] == "close" and body == b"slept"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert rr.router.fast_lane == before + 1
    await asyncio.sleep(0.2)
    assert not any("after-close" in line for _, line in rr.logs), rr.logs
    assert not rr.router.inflight and rr.router.open_connections == 0
    writer.close()


async def test_pooled_connection_with_unsolicited_bytes_is_not_reused(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    assert (await _get(reader, writer, "/name"))[0] == 200
    status, _, body = await _get(reader, writer, "/double")
    assert status == 200 and body == b"first"
    await asyncio.sleep(0.3)  # the dyno's extra response now sits on the pooled connection
    # a request with a body takes the ordinary path, which takes from the same pool
    writer.write(f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 2\r\n\r\nhi".encode())
    status, _, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and body.startswith(b"{") and json.loads(body)["body"] == "hi", body
    # nor does another client get the answer meant for this one (one response behind)
    r2, w2 = await asyncio.open_connection("127.0.0.1", rr.http_port)
    w2.write(f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\n\r\nother".encode())
    status, _, body = await asyncio.wait_for(one_response(r2), 5)
    assert status == 200 and json.loads(body)["body"] == "other", body
    writer.close()
    w2.close()


async def test_the_request_memo_keeps_heads_only(running_router, backends):
    # the first read of a parked connection goes through fast_request whatever it holds: a
    # head and the start of a large body must not be kept (512 of them: over 100 MB)
    from spruce.router.proto import fast

    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    fast._request_memo.clear()
    for i in range(3):
        body = bytes([65 + i]) * 200_000
        reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
        writer.write(
            f"POST /name HTTP/1.1\r\nHost: {H}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert (await asyncio.wait_for(one_response(reader), 5))[0] == 200
        writer.close()
    assert max(map(len, fast._request_memo), default=0) <= 8192


async def test_a_fault_on_the_fast_lane_keeps_pipelined_requests_in_order(
    running_router, backends, monkeypatch
):
    b, pages = backends(), backends("pages")
    page = f"http://127.0.0.1:{pages.port}/sleep?s=0.5"  # an error page slow to fetch
    rr = await running_router(table(app_entry("a", [H], [b.dyno()], error_page_url=page)))

    async def warm() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", rr.http_port)
        assert (await _get(r, w, "/sleep?s=0.2"))[0] == 200
        w.close()

    await asyncio.gather(warm(), warm())  # two pooled dyno connections
    assert rr.router.pool.count() == 2
    # the first request faults once the lane committed (its dyno head cannot be built: see
    # test_router_fault_on_the_fast_lane_is_h99), the second is served as usual
    monkeypatch.setattr(rr.router.table, "via_h1", None)
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    writer.write(f"GET /name?first HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(0.1)  # the H99 page is being fetched
    monkeypatch.undo()
    writer.write(f"GET /name?second HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    first = await asyncio.wait_for(one_response(reader), 5)
    second = await asyncio.wait_for(one_response(reader), 5)
    assert (first[0], first[2]) == (503, b"slept")
    assert (second[0], second[2]) == (200, b"web.1")
    writer.close()


async def test_half_closed_slow_reader_gets_a_whole_closing_response(running_router, backends):
    # `printf 'GET ... Connection: close' | nc`: the request, its end (FIN), then reading
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await _parked(rr)
    n = 4_000_000  # not whole in one read: handed over, ends with up to 1 MB still buffered
    writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode())
    writer.write_eof()
    await asyncio.sleep(0.5)
    status, headers, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 200 and headers["connection"] == "close" and len(body) == n
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert rr.router.fast_lane == 1  # it started on the fast lane
    writer.close()
