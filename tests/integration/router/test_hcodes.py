"""Every H code the router emits, through real sockets and real backend processes."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket

import httpx
import pytest

from spruce.netutil import free_port

from .conftest import FAST, app_entry, raw_request

H = "demo.localhost"


async def get(rr, path: str = "/", host: str = H, **kw) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as c:
        return await c.get(f"http://127.0.0.1:{rr.http_port}{path}", headers={"Host": host}, **kw)


def table(*apps) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


async def test_no_such_app_is_404_without_log(running_router):
    rr = await running_router(table())
    r = await get(rr, host="nope.localhost")
    assert r.status_code == 404 and "No such app" in r.text
    assert rr.logs == []


@pytest.mark.parametrize(
    "kw,code,at",
    [
        ({"maintenance": True}, "H80", "info"),
        ({"released": False}, "H81", "info"),
        ({"eco_quota_exhausted": True}, "H82", "info"),
        ({"web_quantity": 0}, "H14", "error"),
    ],
)
async def test_app_state_codes(running_router, backends, kw, code, at):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()], **kw)))
    r = await get(rr)
    assert r.status_code == 503
    line = await rr.wait_log(f"code={code}")
    assert re.fullmatch(
        rf'at={at} code={code} desc="[^"]+" method=GET path="/" host={H} '
        r'request_id=[0-9a-f-]{36} fwd="127.0.0.1" dyno= connect= service= status=503 bytes= '
        r"protocol=http1.1 tls=false tls_version=unknown",
        line,
    ), line


async def test_maintenance_and_error_page_urls_are_fetched(running_router, backends):
    b = backends("pagehost")
    rr = await running_router(
        table(
            app_entry(
                "a",
                [H],
                [b.dyno()],
                maintenance=True,
                maintenance_page_url=f"http://127.0.0.1:{b.port}/name",
            ),
            app_entry(
                "c",
                ["crash.localhost"],
                [b.dyno("crashed")],
                error_page_url=f"http://127.0.0.1:{b.port}/echo",
            ),
        )
    )
    r = await get(rr)
    assert r.status_code == 503 and r.text == "pagehost"
    r = await get(rr, host="crash.localhost")
    assert r.status_code == 503 and '"dyno": "pagehost"' in r.text
    await rr.wait_log("code=H10")


async def test_h10_all_crashed(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno("crashed")])))
    r = await get(rr)
    assert r.status_code == 503 and "Application Error" in r.text
    line = await rr.wait_log("code=H10")
    assert 'desc="App crashed"' in line and "dyno= connect= service= status=503 bytes= " in line


async def test_h20_starting_dyno_then_boot_and_success(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno("starting")])))
    r = await get(rr)
    assert r.status_code == 503
    await rr.wait_log("code=H20")
    # a request waiting for boot goes through once the dyno is up
    task = asyncio.ensure_future(get(rr, "/name"))
    await asyncio.sleep(0.2)
    rr.router.upsert_app(app_entry("a", [H], [b.dyno("up")]))
    r = await task
    assert r.status_code == 200 and r.text == "web.1"


async def test_sleeping_app_is_woken(running_router, backends):
    b = backends()
    wakes: list[str] = []
    rr = await running_router(table(app_entry("a", [H], [], sleeping=True)), wakes=wakes)
    task = asyncio.ensure_future(get(rr, "/name"))
    for _ in range(100):
        if wakes:
            break
        await asyncio.sleep(0.02)
    assert wakes == ["a"]
    rr.router.upsert_app(app_entry("a", [H], [b.dyno()]))
    assert (await task).text == "web.1"


async def test_h21_refused_then_h99_all_quarantined(running_router):
    dead = {"name": "web.1", "host": "127.0.0.1", "port": free_port(), "state": "up"}
    timers = dataclasses.replace(FAST, quarantine=5.0, all_quarantined=0.5)
    rr = await running_router(table(app_entry("a", [H], [dead])), timers)
    r = await get(rr)
    assert r.status_code == 503
    line = await rr.wait_log("code=H21")
    # a refused connect takes a few ms on loaded cores: the time itself is not the point
    assert re.search(r"dyno=web\.1 connect=\d+ms service= status=503 bytes=0 ", line), line
    assert 'desc="Backend connection refused"' in line
    r = await get(rr)  # the dyno is quarantined: wait (0.6 s in tests), then H99
    assert r.status_code == 503
    await rr.wait_log("code=H99")


async def test_retry_on_other_dyno_when_one_refuses(running_router, backends):
    b = backends("web.2")
    dead = {"name": "web.1", "host": "127.0.0.1", "port": free_port(), "state": "up"}
    rr = await running_router(table(app_entry("a", [H], [dead, b.dyno()])))
    for _ in range(6):
        r = await get(rr, "/name")
        assert r.status_code == 200 and r.text == "web.2"


async def test_h19_connect_timeout(running_router):
    # a listener whose accept queue is full: SYNs are dropped, connect hangs
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    port = lsock.getsockname()[1]
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        rr = await running_router(
            table(
                app_entry(
                    "a", [H], [{"name": "web.1", "host": "127.0.0.1", "port": port, "state": "up"}]
                )
            )
        )
        r = await get(rr)
        assert r.status_code == 503
        line = await rr.wait_log("code=H19")
        ms = int(re.search(r"connect=(\d+)ms", line).group(1))
        assert ms >= 450
    finally:
        for s in fillers:
            s.close()
        lsock.close()


@pytest.mark.parametrize(
    "path,code,status",
    [
        ("/sleep?s=3", "H12", 503),
        ("/close", "H13", 503),
        ("/noreason", "H17", 502),
        ("/bigcookie", "H25", 502),
    ],
)
async def test_dyno_misbehaviour(running_router, backends, path, code, status):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    r = await get(rr, path)
    assert r.status_code == status
    line = await rr.wait_log(f"code={code}")
    assert "dyno=web.1 " in line and f"status={status}" in line
    if code == "H12":
        assert re.search(r"service=(9\d\d|1\d{3})ms", line), line


async def test_h18_and_h15_cut_the_client(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    out = await raw_request(rr.http_port, f"GET /partial HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"abc")
    line = await rr.wait_log("code=H18")
    assert line.startswith("sock=backend at=error code=H18 ")
    out = await raw_request(rr.http_port, f"GET /stall HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    assert out.endswith(b"ab")
    await rr.wait_log("code=H15")


async def test_h27_client_gone_and_h28_client_idle(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    writer.write(f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 100\r\n\r\nabc".encode())
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    line = await rr.wait_log("code=H27")
    assert line.startswith('sock=client at=warning code=H27 desc="Client Request Interrupted"')
    assert "status=499" in line
    out = await raw_request(
        rr.http_port, f"POST /echo HTTP/1.1\r\nHost: {H}\r\nContent-Length: 100\r\n\r\nabc".encode()
    )
    line = await rr.wait_log("code=H28")
    assert "at=warning" in line and "status=499" in line
    assert out == b""  # nothing but a closed connection
    # a head left incomplete once its request line and Host named the app: H28 too
    rr.logs.clear()
    out = await raw_request(
        rr.http_port, f"GET /half HTTP/1.1\r\nHost: {H}\r\nX-Partial: yes".encode()
    )
    line = await rr.wait_log("code=H28")
    assert 'path="/half"' in line and "status=499" in line and f"host={H}" in line
    assert out == b""


async def test_h11_backlog_too_deep(running_router, backends):
    b = backends()
    rr = await running_router(
        table(app_entry("a", [H], [b.dyno()])), dataclasses.replace(FAST, response=10.0)
    )
    payload = f"GET /sleep?s=5 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode()
    conns = [await asyncio.open_connection("127.0.0.1", rr.http_port) for _ in range(200)]
    for _, w in conns:
        w.write(payload)
    for _ in range(500):
        if rr.router.inflight["a"] == 200:
            break
        await asyncio.sleep(0.02)
    assert rr.router.inflight["a"] == 200
    out = await raw_request(rr.http_port, f"GET / HTTP/1.1\r\nHost: {H}\r\n\r\n".encode(), 2)
    assert out.startswith(b"HTTP/1.1 503 ")
    line = await rr.wait_log("code=H11")
    assert "dyno= connect= service= status=503 bytes= " in line
    for _, w in conns:
        w.transport.abort()
