"""HTTP/2 requests the router refuses, over a real h2 connection: requests go on to dynos as
HTTP/1.1, so anything that could be read differently there is a malformed request (RFC 9113
8.1.1): the stream is reset with PROTOCOL_ERROR, nothing reaches a dyno, and the connection
carries on serving."""

from __future__ import annotations

import asyncio
import json

import pytest
from hyperframe.frame import DataFrame, HeadersFrame

from spruce.certs.ca import InternalCA

from .conftest import app_entry
from .h2client import H2Client

H = "demo.localhost"
PROTOCOL_ERROR = 1


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = InternalCA(tmp_path_factory.mktemp("ca"))
    issued = ca.issue([H], [])
    cert = {"id": "demo", "hostnames": [H], "cert_pem": issued.cert_pem, "key_pem": issued.key_pem}
    return str(ca.cert_path), cert


@pytest.fixture
async def h2(running_router, backends, pki):
    cafile, cert = pki
    b = backends()
    rr = await running_router(
        {
            "router_name": "spruce",
            "apps": {"a": app_entry("a", [H], [b.dyno()])},
            "certificates": [cert],
            "default_certificate": None,
        }
    )
    c = await H2Client.connect(rr.https_port, cafile)
    yield rr, c
    await c.close()


def block(*extra: tuple[bytes, bytes], path: bytes = b"/echo?refused") -> list[tuple[bytes, bytes]]:
    base = [
        (b":method", b"GET"),
        (b":path", path),
        (b":scheme", b"https"),
        (b":authority", H.encode()),
    ]
    return base + list(extra)


P = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", H.encode())]

REFUSED = {
    "uppercase name": block((b"X-Foo", b"1")),
    "space in name": block((b"x foo", b"1")),
    "non-token name": block((b"x(foo)", b"1")),
    "colon in name": block((b"x:foo", b"1")),
    "empty name": block((b"", b"1")),
    "non-ascii name": block((b"x\xe9", b"1")),
    "CR in value": block((b"x-a", b"a\rb")),
    "LF in value": block((b"x-a", b"a\nX-Injected: 1")),
    "CRLF in value": block((b"x-a", b"a\r\nX-Injected: 1")),
    "NUL in value": block((b"x-a", b"a\x00b")),
    "control in value": block((b"x-a", b"a\x01b")),
    "DEL in value": block((b"x-a", b"a\x7fb")),
    "leading space": block((b"x-a", b" a")),
    "trailing space": block((b"x-a", b"a ")),
    "leading tab": block((b"x-a", b"\ta")),
    "trailing tab": block((b"x-a", b"a\t")),
    "connection": block((b"connection", b"keep-alive")),
    "proxy-connection": block((b"proxy-connection", b"keep-alive")),
    "keep-alive": block((b"keep-alive", b"timeout=5")),
    "transfer-encoding": block((b"transfer-encoding", b"chunked")),
    "upgrade": block((b"upgrade", b"websocket")),
    "te gzip": block((b"te", b"gzip")),
    "te trailers, gzip": block((b"te", b"trailers, gzip")),
    "unknown pseudo": block((b":foo", b"bar")),
    ":status in request": [(b":status", b"200"), *block()],
    ":protocol": [*block()[:4], (b":protocol", b"websocket")],
    "duplicate :path": [*block(), (b":path", b"/x")][:4] + [(b":path", b"/x")],
    "duplicate :method": [(b":method", b"GET"), *block()],
    "pseudo after regular": [*P, (b"x-a", b"1"), (b":path", b"/echo")],
    "missing :method": [(b":path", b"/echo"), (b":scheme", b"https"), (b":authority", H.encode())],
    "missing :scheme": [(b":method", b"GET"), (b":path", b"/echo"), (b":authority", H.encode())],
    "missing :path": P,
    "empty :path": block(path=b""),
    "absolute :path": block(path=b"https://demo.localhost/echo"),
    "space in :path": block(path=b"/echo HTTP/1.1"),
    "asterisk for GET": block(path=b"*"),
    "space in :method": [(b":method", b"GET /x"), *block()[1:]],
    "authority vs host": block((b"host", b"other.localhost")),
    "several hosts": [*block()[:3], (b"host", H.encode()), (b"host", H.encode())],
    "no authority, no host": block()[:3],
    "non-digit content-length": block((b"content-length", b"1x")),
    "negative content-length": block((b"content-length", b"-1")),
    "content-length with END_STREAM": block((b"content-length", b"5")),
}


@pytest.mark.parametrize("name", list(REFUSED))
async def test_malformed_request_is_refused(h2, name):
    rr, c = h2
    sid = c.request(headers=REFUSED[name])
    r = await c.response(sid)
    assert r.reset == PROTOCOL_ERROR and r.status == 0
    # nothing was forwarded, and the connection (and its HPACK state) carries on
    ok = await c.get("/echo?after")
    assert ok.status == 200 and json.loads(ok.body)["target"] == "/echo?after"
    assert not any("refused" in line for _, line in rr.logs)
    assert c.goaway is None


async def test_acceptable_edge_cases(h2):
    rr, c = h2
    # Host instead of :authority, TE: trailers, empty values, OPTIONS *
    r = await c.response(
        c.request(
            headers=[
                *P[:2],
                (b":path", b"/echo"),
                (b"host", H.encode()),
                (b"te", b"trailers"),
                (b"x-e", b""),
            ]
        )
    )
    assert r.status == 200
    sent = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    assert sent["host"] == H and sent["x-e"] == "" and "te" not in sent
    r = await c.response(c.request(headers=block((b"host", H.encode()), path=b"/echo?both")))
    assert r.status == 200
    # :authority and Host naming the same host in different case (RFC 9113 8.3.1, 3986 6.2)
    r = await c.response(
        c.request(headers=block((b"host", H.upper().encode()), path=b"/echo?case"))
    )
    assert r.status == 200
    r = await c.response(c.request(headers=[(b":method", b"OPTIONS"), (b":path", b"*"), *P[1:]]))
    assert r.status == 200
    # an authority HTTP/1.1 would refuse as Host is a 400 (as on HTTP/1.1), not forwarded
    r = await c.response(
        c.request(headers=[*P[:2], (b":authority", b"a b"), (b":path", b"/echo?refused")])
    )
    assert r.status == 400
    assert not any("refused" in line for _, line in rr.logs)


async def test_body_beyond_content_length_is_refused(h2):
    rr, c = h2
    sid = c.request(
        "/echo?refused", method="POST", extra=[("content-length", "5")], end_stream=False
    )
    c.send_raw(DataFrame(sid, data=b"0123456789", flags=["END_STREAM"]).serialize())
    r = await c.response(sid)
    assert r.reset == PROTOCOL_ERROR
    # a shorter body than announced is refused too
    sid = c.request(
        "/echo?refused2", method="POST", extra=[("content-length", "5")], end_stream=False
    )
    c.send_raw(DataFrame(sid, data=b"012", flags=["END_STREAM"]).serialize())
    r = await c.response(sid)
    assert r.reset == PROTOCOL_ERROR
    await asyncio.sleep(0.2)
    # the dyno never saw a complete request: no log line says the request went through
    assert not any("status=200" in line and "refused" in line for _, line in rr.logs)
    ok = await c.get("/echo?after")
    assert ok.status == 200


async def test_malformed_trailers_are_refused(h2):
    rr, c = h2
    sid = c.request("/echo?t", method="POST", end_stream=False)
    await c.send_body(sid, b"abc", end_stream=False)
    enc = c.conn.encoder.encode([(b":path", b"/x")])
    c.send_raw(HeadersFrame(sid, data=enc, flags=["END_STREAM", "END_HEADERS"]).serialize())
    r = await c.response(sid)
    assert r.reset == PROTOCOL_ERROR
    # well-formed trailers end the body; they are not forwarded
    sid = c.request("/echo?t2", method="POST", end_stream=False)
    await c.send_body(sid, b"abc", end_stream=False)
    c.conn.send_headers(sid, [(b"x-trailer", b"1")], end_stream=True)
    c.flush()
    r = await c.response(sid)
    assert r.status == 200 and json.loads(r.body)["body"] == "abc"


async def test_http1_limits_apply_to_http2_requests(h2):
    # the dyno gets HTTP/1.1 lines: an HTTP/2 request gets the limits an HTTP/1.1 client meets
    rr, c = h2
    over = [
        block(*[(b"x-h", b"v")] * 1001),
        block((b"x-big", b"b" * 8200)),
        block((b"n" * 1001, b"v")),
        block(path=b"/echo?refused&" + b"a" * 8200),
        block(*[(b"cookie", b"c=" + b"x" * 3000)] * 3),  # crumbs joined into one long line
    ]
    for headers in over:
        r = await c.response(c.request(headers=headers))
        assert r.status == 400
    within = block((b"x-big", b"b" * 8000), *[(b"x-h", b"v")] * 990, path=b"/echo?within")
    assert (await c.response(c.request(headers=within))).status == 200
    assert not any("refused" in line for _, line in rr.logs)
