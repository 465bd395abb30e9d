"""The fast lane's bytes-level heads (proto/fast.py) against the ordinary path.

Wherever `fast_request` / `fast_response` answer, the dyno and the client must get the same
message as from the ordinary path (parse, rewrite_*_headers, serialize_*): the same header
fields in the same order, and the same bytes whenever the received lines were canonical
("Name: value"; the fast lane keeps other lines as received, spacing included). And they must
answer for the ordinary heads that make up the hot path.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spruce.router.proto.fast import (
    client_response,
    dyno_head,
    fast_request,
    fast_response,
    forwarded_for,
)
from spruce.router.proto.headers import (
    request_id_for,
    rewrite_request_headers,
    rewrite_response_headers,
)
from spruce.router.proto.http1 import (
    ProtocolError,
    parse_request_head,
    parse_response_head,
    serialize_request_head,
    serialize_response_head,
)

VIA = "1.1 spruce"
FORWARDED = b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\nX-Request-Start: "
RID = "0b0e2a8c-4f8e-4d5b-9a41-55bb3c2d7e10"


def _case(name: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if f else c for c, f in zip(name, flips + [False] * len(name), strict=False)
    )


_names = st.sampled_from(
    [
        "Accept",
        "User-Agent",
        "Cookie",
        "X-Custom",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Content-Length",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "X-Forwarded-Host",
        "X-Request-Start",
        "X-Request-Id",
        "Via",
        "Proxy-Authorization",
        "Te",
        "Upgrade",
        "Expect",
        "Transfer-Encoding",
        "Set-Cookie",
        "Server",
        "Close",  # a header named after a Connection token
    ]
)
_values = st.sampled_from(
    [
        "",
        "x",
        " padded\t",
        "keep-alive",
        "close",
        "Keep-Alive, close",
        "upgrade",
        "0",
        "12",
        "10.0.0.1, 10.0.0.2",
        " 203.0.113.9 ",
        "1.0 fred, 1.1 proxy",
        "abcdefghijklmnopqrstuvwxyz0123",
        "short-id",
        "chunked",
        "trailers",
        "text/html; charset=utf-8",
        'a "quoted" \\ value',
    ]
)
_header = st.tuples(_names, st.lists(st.booleans(), max_size=6), _values)


def _block(headers: list[tuple[str, list[bool], str]]) -> bytes:
    return b"".join(f"{_case(n.lower(), f)}: {v}\r\n".encode() for n, f, v in headers)


def _canonical(data: bytes) -> bool:
    head = data[: data.index(b"\r\n\r\n")]
    return all(
        b": " in line and line == line.strip(b" \t") and b":  " not in line
        for line in head.split(b"\r\n")[1:]
    )


def _same(fast: bytes, slow: bytes, received: bytes, parse) -> None:  # type: ignore[no-untyped-def]
    end = fast.index(b"\r\n\r\n") + 4
    assert fast[end:] == slow[slow.index(b"\r\n\r\n") + 4 :]
    a, b = parse(fast[:end]), parse(slow[: slow.index(b"\r\n\r\n") + 4])
    assert a.headers == b.headers
    assert fast.split(b"\r\n", 1)[0] == slow.split(b"\r\n", 1)[0]
    if _canonical(received):
        assert fast == slow


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["GET", "HEAD", "DELETE", "OPTIONS", "PURGE"]),
    st.sampled_from(["/", "/a?b=c", '/x"y\\z', "*"]),
    st.lists(_header, max_size=8),
    st.sampled_from(["bench.localhost", "Bench.LocalHost:8080", "app.example.org."]),
)
def test_fast_request_matches_the_ordinary_path(method, target, headers, host) -> None:
    data = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n".encode() + _block(headers) + b"\r\n"
    fr = fast_request(data)
    try:
        req = parse_request_head(data)
    except ProtocolError:
        assert fr is None
        return
    if fr is None:
        return
    assert not req.chunked and req.body_length == 0 and req.upgrade is None
    assert not req.expect_continue
    assert fr.keep_alive == req.keep_alive
    assert fr.method == req.method and fr.target == req.target
    assert fr.host.decode() == req.host
    rid = fr.request_id.decode() if fr.request_id else RID
    want_rid = request_id_for(req.headers, req.request_id)
    if fr.request_id:
        assert rid == want_rid
    slow = serialize_request_head(
        req.method,
        req.target,
        rewrite_request_headers(
            req.headers,
            client_ip="127.0.0.1",
            proto="http",
            port=8080,
            request_start_ms=1700000000123,
            request_id=rid,
            via=VIA,
            body_length=req.body_length,
            has_body=False,
            upgrade=None,
            keep_alive_to_dyno=True,
            keep_expect=False,
            listed=req.connection,
        ),
    )
    fast = dyno_head(
        fr, forwarded_for(fr.xff, "127.0.0.1"), FORWARDED, 1700000000123, rid, VIA.encode()
    )
    _same(fast, slow, data, parse_request_head)
    assert list(fr.xff) == (req.xff or [])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["HTTP/1.1 200 OK", "HTTP/1.0 404 Not Found", "HTTP/1.1 302 Found"]),
    st.lists(_header, max_size=8),
    st.sampled_from([b"", b"hello\n", b"x" * 300]),
    st.booleans(),
    st.booleans(),
)
def test_fast_response_matches_the_ordinary_path(status_line, headers, body, cl, client_ka):
    headers = [h for h in headers if h[0] != "Content-Length"]
    block = _block(headers)
    if cl:
        block += b"Content-Length: %d\r\n" % len(body)
    data = status_line.encode() + b"\r\n" + block + b"\r\n" + body
    fres = fast_response(data)
    try:
        resp = parse_response_head(data[: data.index(b"\r\n\r\n") + 4], "GET")
    except ProtocolError:
        assert fres is None
        return
    if fres is None:
        return
    assert resp.body_length == len(body) and not resp.chunked
    assert fres.keep_alive == resp.keep_alive
    assert fres.status == resp.status
    hs = rewrite_response_headers(resp.headers, via=VIA, keep_upgrade=False, listed=resp.connection)
    hs.append(("Content-Length", str(len(body))))
    if not client_ka:
        hs.append(("Connection", "close"))
    slow = serialize_response_head(resp.status, resp.reason, hs) + body
    fast = client_response(fres, data, VIA.encode(), client_ka)
    _same(fast, slow, data, lambda head: parse_response_head(head, "GET"))


def test_the_hot_path_heads_take_the_fast_lane() -> None:
    browser = (
        b"GET /assets/app.js?v=3 HTTP/1.1\r\nHost: app.example.org\r\nConnection: keep-alive\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n"
        b"Accept-Encoding: gzip, deflate, br\r\nCookie: session=abc; theme=dark\r\n"
        b"X-Forwarded-For: 198.51.100.7\r\nX-Request-Id: abcdefghijklmnopqrstuvwxyz\r\n\r\n"
    )
    fr = fast_request(browser)
    assert fr is not None and fr.request_id == b"abcdefghijklmnopqrstuvwxyz"
    assert fr.xff == ("198.51.100.7",) and fr.keep_alive
    assert b"Connection" not in fr.head and b"X-Forwarded-For" not in fr.head
    nginx = (
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n"
    )
    fres = fast_response(nginx)
    assert fres is not None and fres.keep_alive and fres.status == 200
    assert client_response(fres, nginx, b"1.1 spruce", True) == (
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
        b"Via: 1.1 spruce\r\nContent-Length: 6\r\n\r\nhello\n"
    )


def test_what_the_fast_lane_leaves_to_the_ordinary_path() -> None:
    def req(extra: bytes) -> bytes:
        return b"POST / HTTP/1.1\r\nHost: a.example.org\r\n" + extra + b"\r\n"

    assert fast_request(req(b"Content-Length: 5\r\n")) is None  # a body
    assert fast_request(req(b"Transfer-Encoding: chunked\r\n")) is None
    assert fast_request(req(b"Expect: 100-continue\r\n")) is None
    assert fast_request(req(b"Connection: Upgrade\r\nUpgrade: websocket\r\n")) is None
    assert fast_request(req(b"Connection: x-secret\r\nX-Secret: 1\r\n")) is None  # listed
    # a header named like a Connection token the lane accepts ("close" is listed here)
    assert fast_request(req(b"Connection: close\r\nClose: 1\r\n")) is None
    assert fast_request(req(b"Host: b.example.org\r\n")) is None  # two Hosts
    assert fast_request(req(b"X-Request-Id: a" * 1 + b"\r\nX-Request-Id: b\r\n")) is None
    assert fast_request(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n") is None  # HTTP/1.0
    assert fast_request(b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n") is None
    assert fast_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /") is None  # pipelined
    assert fast_request(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n") is None
    assert fast_request(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n") is None

    def resp(head: bytes, body: bytes = b"ok") -> bytes:
        return b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body

    assert fast_response(resp(b"Content-Length: 5\r\n")) is None  # body still to come
    assert fast_response(resp(b"Transfer-Encoding: chunked\r\n")) is None
    assert fast_response(resp(b"")) is None  # close-delimited
    assert fast_response(resp(b"Content-Length: 2\r\nContent-Length: 2\r\n")) is None
    assert fast_response(b"HTTP/1.1 100 Continue\r\n\r\n") is None
    assert fast_response(b"HTTP/1.1 204 No Content\r\n\r\n") is None
    assert fast_response(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") is None  # no reason
    assert fast_response(resp(b"Connection: x-thing\r\nContent-Length: 2\r\n")) is None


def test_answers_are_memoised_by_the_bytes_read() -> None:
    req = b"GET /m HTTP/1.1\r\nHost: a.example.org\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n"
    assert fast_request(req) is fast_request(bytes(req))  # the same answer, not recomputed
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    one = fast_response(head + b"ok")
    assert one is not None and fast_response(head + b"no") is one
    # the body length is still checked per response, against the memoised Content-Length
    assert fast_response(head + b"o") is None and fast_response(head + b"okk") is None
    assert fast_response(head) is None  # head alone: the body is still to come
