"""Forwarding: headers both ways, framing, keepalive pool and stale retry, affinity, Expect,
HTTP/1.0 clients, WebSockets."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import wsproto
import wsproto.events

from .conftest import app_entry, one_response, raw_request

H = "demo.localhost"


def table(*apps, secret: str = "") -> dict:
    return {"router_name": "spruce", "affinity_secret": secret, "apps": {a["id"]: a for a in apps}}


async def test_request_and_response_headers(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    req = (
        f"GET /echo HTTP/1.1\r\nHost: {H}\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n"
        "X-Forwarded-Host: evil\r\nX-Request-Start: 1\r\nX-Request-Id: short\r\n"
        "Keep-Alive: timeout=5\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nTE: trailers\r\n"
        "Via: 1.0 upstream\r\n\r\n"
    ).encode()
    out = await raw_request(rr.http_port, req)
    head, body = out.split(b"\r\n\r\n", 1)
    sent = {}
    for k, v in json.loads(body)["headers"]:
        sent.setdefault(k.lower(), []).append(v)
    assert sent["x-forwarded-for"] == ["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"]
    assert sent["x-forwarded-proto"] == ["http"]
    assert sent["x-forwarded-port"] == [str(rr.http_port)]
    assert "x-forwarded-host" not in sent
    assert "keep-alive" not in sent and "x-secret" not in sent and "te" not in sent
    assert sent["via"] == ["1.0 upstream, 1.1 spruce"]
    assert re.fullmatch(r"[0-9a-f-]{36}", sent["x-request-id"][0])
    assert abs(int(sent["x-request-start"][0]) - int(__import__("time").time() * 1000)) < 10000
    assert b"\r\nVia: 1.1 spruce" in head and b"Connection: close" in head
    line = await rr.wait_log('path="/echo"')
    assert (
        f'request_id={sent["x-request-id"][0]} fwd="10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"'
        in line
    )
    good_id = "abcdefghij-ABCDEFGHIJ+/=0123"
    async with httpx.AsyncClient() as c:
        r = await c.get(
            f"http://127.0.0.1:{rr.http_port}/echo", headers={"Host": H, "X-Request-Id": good_id}
        )
    assert ["X-Request-Id", good_id] in r.json()["headers"]


async def test_keepalive_pool_reuse_and_per_request_dyno_choice(running_router, backends):
    b1, b2 = backends("web.1"), backends("web.2")
    rr = await running_router(table(app_entry("a", [H], [b1.dyno(), b2.dyno()])))
    seen = set()
    async with httpx.AsyncClient() as c:
        for _ in range(30):
            r = await c.get(f"http://127.0.0.1:{rr.http_port}/name", headers={"Host": H})
            seen.add(r.text)
    # one client connection, yet both dynos serve it: choice is per request
    assert seen == {"web.1", "web.2"}
    assert 1 <= rr.router.pool.count() <= 2


async def test_idle_pooled_connections_close_quietly(running_router, backends):
    import dataclasses

    from .conftest import FAST

    b = backends()
    rr = await running_router(
        table(app_entry("a", [H], [b.dyno()])), dataclasses.replace(FAST, keepalive_idle=0.3)
    )
    async with httpx.AsyncClient() as c:
        await c.get(f"http://127.0.0.1:{rr.http_port}/name", headers={"Host": H})
    assert rr.router.pool.count() == 1
    for _ in range(100):
        if rr.router.pool.count() == 0:
            break
        await asyncio.sleep(0.02)
    assert rr.router.pool.count() == 0
    assert len(rr.logs) == 1 and "code=" not in rr.logs[0][1]


async def test_stale_pooled_connection_is_retried(running_router, backends):
    # the app server closes idle connections after 0.2 s, long before the pool's 5 s
    b = backends("web.1", "--idle-close", "0.2")
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    async with httpx.AsyncClient() as c:
        for _ in range(5):
            r = await c.get(f"http://127.0.0.1:{rr.http_port}/name", headers={"Host": H})
            assert r.status_code == 200
            await asyncio.sleep(0.35)
    assert not any("code=" in line for _, line in rr.logs)


async def test_reused_connection_closed_by_dyno_is_replayed_when_safe(running_router, backends):
    # the dyno reads a request on a reused connection and closes it unanswered: the race
    # between an app server's idle close and the router's reuse
    b = backends("web.1", "--drop-reused")
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    async with httpx.AsyncClient() as c:
        url = f"http://127.0.0.1:{rr.http_port}/name"
        for _ in range(4):
            r = await c.get(url, headers={"Host": H})
            assert r.status_code == 200 and r.text == "web.1"
        assert not any("code=" in line for _, line in rr.logs)
        # a POST with a body is not replayed: H13
        r = await c.post(url, headers={"Host": H}, content=b"data")
        assert r.status_code == 503
    await rr.wait_log("code=H13")


async def test_a_dyno_lost_under_a_pooled_request_is_retried_on_another(running_router, backends):
    # web.1's machine dies as a pooled connection carries it a request: the replay finds its
    # port closed, and the request goes to web.2 (nothing reached an app), not H21.
    lost = backends("web.1", "--die-on-reused")
    other = backends("web.2")
    rr = await running_router(table(app_entry("a", [H], [lost.dyno(), other.dyno()])))
    async with httpx.AsyncClient() as c:
        url = f"http://127.0.0.1:{rr.http_port}/name"
        served = [(await c.get(url, headers={"Host": H})) for _ in range(30)]
    assert [r.status_code for r in served] == [200] * 30, [x for _, x in rr.logs if "code=" in x]
    assert served[-1].text == "web.2" and lost.proc.wait(5) == 0  # web.1 did die
    assert not any("code=" in line for _, line in rr.logs)


async def test_a_dyno_lost_under_a_fresh_connection_is_retried_on_another(running_router, backends):
    # No pooled connections: web.1 dies with a request on a new connection. Nothing listens
    # there any more, so the GET goes to web.2; an app that still listens would get H13.
    lost, other = backends("web.1", "--die-at", "2"), backends("web.2")
    entry = app_entry("a", [H], [lost.dyno(), other.dyno()],
                      features=["http-disable-keepalive-to-dyno"])  # fmt: skip
    rr = await running_router(table(entry))
    async with httpx.AsyncClient() as c:
        url = f"http://127.0.0.1:{rr.http_port}/name"
        served = [(await c.get(url, headers={"Host": H})) for _ in range(30)]
    assert [r.status_code for r in served] == [200] * 30, [x for _, x in rr.logs if "code=" in x]
    assert lost.proc.wait(5) == 0  # web.1 did die
    assert not any("code=" in line for _, line in rr.logs)


async def test_disable_keepalive_feature(running_router, backends):
    b = backends()
    rr = await running_router(
        table(app_entry("a", [H], [b.dyno()], features=["http-disable-keepalive-to-dyno"]))
    )
    async with httpx.AsyncClient() as c:
        r = await c.get(f"http://127.0.0.1:{rr.http_port}/echo", headers={"Host": H})
    assert ["Connection", "close"] in r.json()["headers"]
    assert rr.router.pool.count() == 0


async def test_affinity_cookie(running_router, backends):
    b1, b2, b3 = backends("web.1"), backends("web.2"), backends("web.3")
    secret = "ab" * 32
    app = app_entry("a", [H], [b1.dyno(), b2.dyno()], features=["http-session-affinity"])
    other = app_entry("o", ["other.localhost"], [b3.dyno()], features=["http-session-affinity"])
    rr = await running_router(table(app, other, secret=secret))
    url = f"http://127.0.0.1:{rr.http_port}/name"
    async with httpx.AsyncClient() as c:
        r = await c.get(url, headers={"Host": H})
        cookie = r.headers["set-cookie"]
        assert re.fullmatch(
            r"heroku-session-affinity=[0-9a-f]{40}; Path=/; Max-Age=86400; HttpOnly", cookie
        )
        assert "web" not in cookie and secret not in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        pinned = r.text
        for _ in range(10):
            r = await c.get(url, headers={"Host": H, "Cookie": f"heroku-session-affinity={value}"})
            assert r.text == pinned and "set-cookie" not in r.headers
        # forged or foreign values are ignored (and replaced)
        r = await c.get(url, headers={"Host": H, "Cookie": "heroku-session-affinity=" + "0" * 40})
        assert "set-cookie" in r.headers
        r = await c.get(
            f"http://127.0.0.1:{rr.http_port}/name",
            headers={"Host": "other.localhost", "Cookie": f"heroku-session-affinity={value}"},
        )
        assert r.text == "web.3" and "set-cookie" in r.headers
        # the pinned dyno goes away: the cookie moves
        remaining = b2 if pinned == "web.1" else b1
        rr.router.upsert_app(
            app_entry("a", [H], [remaining.dyno()], features=["http-session-affinity"])
        )
        r = await c.get(url, headers={"Host": H, "Cookie": f"heroku-session-affinity={value}"})
        assert r.text == remaining.name and "set-cookie" in r.headers
        assert r.headers["set-cookie"].split(";")[0].split("=", 1)[1] != value


async def test_framing_chunked_head_http10_pipelining(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    # chunked response to an HTTP/1.1 client stays chunked (re-encoded)
    out = await raw_request(
        rr.http_port, f"GET /chunked HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode()
    )
    assert b"Transfer-Encoding: chunked" in out and out.endswith(b"0\r\n\r\n") and b"hello" in out
    # HTTP/1.0: close-delimited, no chunking
    out = await raw_request(rr.http_port, f"GET /chunked HTTP/1.0\r\nHost: {H}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200 OK") and b"chunked" not in out
    assert out.endswith(b"\r\n\r\nhello world") and b"Connection: close" in out
    # HTTP/1.0 without Host is refused
    out = await raw_request(rr.http_port, b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    # HEAD keeps the dyno's Content-Length, sends no body
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    writer.write(f"HEAD /big?n=1234 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"Content-Length: 1234" in head
    # pipelined requests on one connection, chunked request body
    writer.write(
        f"POST /echo HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode()
    )
    s1, _, body1 = await one_response(reader)
    s2, _, body2 = await one_response(reader)
    assert s1 == 200 and json.loads(body1)["body"] == "abcde"
    assert s2 == 200 and body2 == b"web.1"
    writer.close()


async def test_expect_continue_both_ways(running_router, backends):
    b = backends()
    rr = await running_router(
        table(
            app_entry("a", [H], [b.dyno()]),
            app_entry("e", ["e2e.localhost"], [b.dyno()], features=["http-end-to-end-continue"]),
        )
    )
    for host in (H, "e2e.localhost"):
        reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
        path = "/echo" if host == H else "/continue"
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".encode()
        )
        interim = await reader.readuntil(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        status, _, body = await one_response(reader)
        assert status == 200
        if host == H:
            sent = json.loads(body)
            assert sent["body"] == "hello" and not any(
                k.lower() == "expect" for k, _ in sent["headers"]
            )
        else:
            assert body == b"got:hello"
        writer.close()
    out = await raw_request(
        rr.http_port,
        f"POST /echo HTTP/1.1\r\nHost: {H}\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx".encode(),
    )
    assert out.startswith(b"HTTP/1.1 417 ")


async def test_interim_responses_not_relayed(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    out = await raw_request(
        rr.http_port, f"GET /interim HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n".encode()
    )
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"after hints")


async def test_websocket_tunnel(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])))
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    writer.write(ws.send(wsproto.events.Request(host=H, target="/ws")))
    events = []
    while not events:
        ws.receive_data(await reader.read(65536))
        events = list(ws.events())
    assert isinstance(events[0], wsproto.events.AcceptConnection)
    got = []
    for text in ("one", "two"):
        writer.write(ws.send(wsproto.events.TextMessage(data=text)))
        while True:
            ws.receive_data(await reader.read(65536))
            evs = [e for e in ws.events() if isinstance(e, wsproto.events.TextMessage)]
            if evs:
                got.append(evs[0].data)
                break
    assert got == ["one", "two"]
    writer.close()
    line = await rr.wait_log("status=101")
    assert 'path="/ws"' in line and re.search(r"service=\d+ms status=101 bytes=0 ", line)
