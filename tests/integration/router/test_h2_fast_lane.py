"""The HTTP/2 fast lane (callback-driven exchanges on pooled dyno connections) keeps every
behaviour: each misbehaving dyno is met on a warm pool, over one TLS connection, so the
exchange starts on the fast lane and is handed over to the coroutine path mid-way."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import h2.settings
import pytest

from spruce.certs.ca import InternalCA

from .conftest import FAST, app_entry
from .h2client import H2Client

H = "demo.localhost"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = InternalCA(tmp_path_factory.mktemp("ca"))
    issued = ca.issue([H], [])
    cert = {"id": "demo", "hostnames": [H], "cert_pem": issued.cert_pem, "key_pem": issued.key_pem}
    return str(ca.cert_path), cert


def table(cert, *apps) -> dict:
    return {
        "router_name": "spruce",
        "apps": {a["id"]: a for a in apps},
        "certificates": [cert],
        "default_certificate": None,
    }


async def _setup(running_router, backends, pki, *args: str, **kw):
    cafile, cert = pki
    b = backends("web.1", *args)
    rr = await running_router(table(cert, app_entry("a", [H], [b.dyno()], **kw)))
    c = await H2Client.connect(rr.https_port, cafile)
    return rr, c


async def test_fast_lane_serves_simple_requests_with_full_fidelity(running_router, backends, pki):
    rr, c = await _setup(running_router, backends, pki)
    r = await c.get("/name")  # opens the pooled connection (coroutine path)
    assert r.status == 200 and r.body == b"web.1"
    assert rr.router.fast_lane == 0
    for _ in range(3):
        r = await c.get("/echo?x=1", extra=[("cookie", "a=1"), ("cookie", "b=2")])
        assert r.status == 200
    assert rr.router.fast_lane == 3
    sent = json.loads(r.body)
    names = {k.lower(): v for k, v in sent["headers"]}
    assert names["x-forwarded-for"] == "127.0.0.1" and names["x-forwarded-proto"] == "https"
    assert names["x-forwarded-port"] == str(rr.https_port) and names["host"] == H
    assert names["via"] == "2.0 spruce" and len(names["x-request-id"]) == 36
    assert names["cookie"] == "a=1; b=2"
    assert r.header(b"via") == b"2.0 spruce"
    assert r.header(b"content-length") == str(len(r.body)).encode()
    assert r.header(b"x-dyno") == b"web.1" and r.header(b"connection") is None
    line = await rr.wait_log('path="/echo?x=1"')
    assert line.startswith("at=info method=GET ") and " dyno=web.1 connect=0ms " in line
    assert line.endswith(
        f"status=200 bytes={len(r.body)} protocol=http2.0 tls=true tls_version=tls1.3"
    )
    assert not rr.router.inflight and rr.router.activity["a"] == 4
    await c.close()


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
    running_router, backends, pki, path, code, status
):
    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    before = rr.router.fast_lane
    r = await c.get(path)
    assert r.status == status
    assert rr.router.fast_lane == before + 1
    line = await rr.wait_log(f"code={code}")
    assert "dyno=web.1 " in line and f"status={status}" in line and "protocol=http2.0" in line
    # the connection carries on, nothing stays in flight
    assert (await c.get("/name")).status == 200
    assert not rr.router.inflight
    await c.close()


async def test_long_chunked_interim_and_head_responses_after_hand_over(
    running_router, backends, pki
):
    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    r = await c.get("/big?n=3000000")  # beyond every flow control window
    assert r.status == 200 and r.body == b"z" * 3000000
    assert r.header(b"content-length") == b"3000000"
    assert rr.router.fast_lane == 1
    r = await c.get("/chunked")
    assert r.status == 200 and r.body == b"hello world" and r.header(b"content-length") is None
    assert rr.router.fast_lane == 2
    r = await c.get("/interim")
    assert r.status == 200 and r.body == b"after hints"
    assert rr.router.fast_lane == 3
    r = await c.get("/big?n=1234", method="HEAD")
    assert r.status == 200 and r.body == b"" and r.header(b"content-length") == b"1234"
    assert rr.router.fast_lane == 4
    # (this dyno answers HEAD with a body: that connection is not reused)
    assert (await c.get("/name")).body == b"web.1"
    await rr.wait_log('path="/big?n=3000000"')
    assert not rr.router.inflight
    await c.close()


async def test_response_larger_than_the_client_window_is_handed_over(running_router, backends, pki):
    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    c.flush()
    await asyncio.sleep(0.1)
    before = rr.router.fast_lane
    r = await c.get("/big?n=5000")  # one read from the dyno, but 5 windows' worth
    assert r.status == 200 and r.body == b"z" * 5000
    r = await c.get("/big?n=900")  # fits: relayed from the callback
    assert r.status == 200 and r.body == b"z" * 900
    assert rr.router.fast_lane == before + 2
    line = await rr.wait_log('path="/big?n=5000"')
    assert " status=200 bytes=5000 " in line
    await c.close()


async def test_h18_and_h15_after_hand_over(running_router, backends, pki):
    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    r = await c.get("/partial")
    assert r.status == 200 and r.body == b"abc" and r.reset is not None
    await rr.wait_log("code=H18")
    assert (await c.get("/name")).status == 200
    r = await c.get(
        "/stall",
    )
    assert r.status == 200 and r.body == b"ab" and r.reset is not None
    await rr.wait_log("code=H15")
    assert not rr.router.inflight
    await c.close()


async def test_client_reset_while_the_dyno_thinks_is_h27(running_router, backends, pki):
    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    sid = c.request("/sleep?s=0.3")
    await asyncio.sleep(0.05)
    assert rr.router.fast_lane == 1
    c.conn.reset_stream(sid)
    c.flush()
    line = await rr.wait_log("code=H27")
    assert 'path="/sleep?s=0.3"' in line and "status=499" in line and "dyno=web.1" in line
    assert (await c.get("/name")).status == 200  # the connection carries on
    assert not rr.router.inflight
    await c.close()


@pytest.mark.parametrize("features", [[], ["runtime-dyno-metadata"]])
async def test_connection_gone_mid_exchange_is_h27(running_router, backends, pki, features):
    # the same outcome on the fast lane and (any feature set) on the coroutine path
    rr, c = await _setup(running_router, backends, pki, features=features)
    assert (await c.get("/name")).status == 200
    c.request("/sleep?s=0.8")
    await asyncio.sleep(0.1)
    await c.close()
    line = await rr.wait_log('path="/sleep?s=0.8"')
    assert "code=H27" in line and "status=499" in line
    assert rr.router.fast_lane == (0 if features else 1)
    assert not rr.router.inflight
    c = await H2Client.connect(rr.https_port, pki[0])
    assert (await c.get("/name")).status == 200
    await c.close()


async def test_stale_pool_connection_is_replayed_from_the_fast_lane(running_router, backends, pki):
    rr, c = await _setup(running_router, backends, pki, "--drop-reused")
    for _ in range(4):
        r = await c.get("/name")
        assert r.status == 200 and r.body == b"web.1"
    assert rr.router.fast_lane >= 3
    assert not any("code=" in line for _, line in rr.logs)
    await c.close()


async def test_router_fault_on_the_fast_lane_is_h99(running_router, backends, pki, monkeypatch):
    from spruce.router import h2_fast

    rr, c = await _setup(running_router, backends, pki)
    assert (await c.get("/name")).status == 200
    before = rr.router.fast_lane

    def broken(*args):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(h2_fast, "request_head", broken)
    r = await c.get("/name")
    assert r.status == 503
    assert rr.router.fast_lane == before + 1
    line = await rr.wait_log("code=H99")
    assert "dyno=web.1 " in line and "status=503" in line and "protocol=http2.0" in line
    monkeypatch.undo()
    assert (await c.get("/name")).status == 200
    assert not rr.router.inflight
    await c.close()


async def test_many_concurrent_streams_and_connections(running_router, backends, pki):
    cafile, cert = pki
    b1, b2 = backends("web.1"), backends("web.2")
    # 400 requests at once open as many dyno connections: on a loaded machine that takes
    # longer than the short connect and response timers of the other tests (H19, H12)
    timers = dataclasses.replace(FAST, connect=5.0, response=10.0, idle=10.0)
    rr = await running_router(table(cert, app_entry("a", [H], [b1.dyno(), b2.dyno()])), timers)
    clients = [await H2Client.connect(rr.https_port, cafile) for _ in range(4)]
    for _round in range(3):
        sids = [(c, c.request(f"/echo?i={i}")) for c in clients for i in range(100)]
        rs = [await c.response(sid, 10) for c, sid in sids]
        codes = {line.split(" desc")[0] for _, line in rr.logs if "code=" in line}
        assert all(r.status == 200 for r in rs), codes
        assert [json.loads(r.body)["target"] for r in rs[:100]] == [
            f"/echo?i={i}" for i in range(100)
        ]
        assert {json.loads(r.body)["dyno"] for r in rs} == {"web.1", "web.2"}
    assert rr.router.fast_lane > 0
    assert not rr.router.inflight
    # a request body does not take the fast lane, and reaches the dyno whole
    c = clients[0]
    r = await c.post("/echo", b"x" * 150000)
    assert json.loads(r.body)["body"] == "x" * 150000
    for c in clients:
        await c.close()


async def test_fast_lane_sends_and_returns_what_the_coroutine_path_does(
    running_router, backends, pki
):
    # the dyno head comes from a template per header block and response heads are parsed
    # once: both must match the coroutine path's output exactly
    rr, c = await _setup(running_router, backends, pki)
    extra = [
        ("x-forwarded-for", "10.0.0.1, 10.0.0.2"),
        ("via", "1.1 cdn"),
        ("x-request-id", "abcdefghijklmnopqrstuvwxyz"),
        ("x-forwarded-proto", "gopher"),
        ("te", "trailers"),
        ("accept", "*/*"),
    ]
    seen = []
    for _ in range(3):
        r = await c.get("/echo?same", extra=extra)
        assert r.status == 200
        sent = json.loads(r.body)["headers"]
        seen.append(([(k, v) for k, v in sent if k != "X-Request-Start"], r.headers))
    assert rr.router.fast_lane == 2
    assert seen[0] == seen[1] == seen[2]
    names = [k for k, _ in seen[0][0]]
    assert names == [
        "host",
        "accept",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "X-Request-Id",
        "Via",
    ]
    sent_map = dict(seen[0][0])
    assert sent_map["X-Forwarded-For"] == "10.0.0.1, 10.0.0.2, 127.0.0.1"
    assert sent_map["X-Request-Id"] == "abcdefghijklmnopqrstuvwxyz"
    assert sent_map["Via"] == "1.1 cdn, 2.0 spruce" and sent_map["X-Forwarded-Proto"] == "https"
    # an invalid X-Request-Id is replaced, per request
    ids = set()
    for _ in range(2):
        r = await c.get("/echo", extra=[("x-request-id", "short")])
        ids.add(dict(json.loads(r.body)["headers"])["X-Request-Id"])
    assert len(ids) == 2 and "short" not in ids
    await c.close()
