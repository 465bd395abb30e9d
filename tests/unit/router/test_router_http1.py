"""The sans-IO HTTP/1.1 code: heads, limits, framing, chunked decoding (incl. properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spruce.router.proto.http1 import (
    ChunkedDecoder,
    ProtocolError,
    encode_chunk,
    find_head_end,
    parse_request_head,
    parse_response_head,
    partial_request,
    serialize_request_head,
)


def test_request_head_basics():
    r = parse_request_head(b"GET /a?b=1 HTTP/1.1\r\nHost: x.localhost\r\nX-A:  v \r\n\r\n")
    assert (r.method, r.target, r.version, r.host) == ("GET", "/a?b=1", "1.1", "x.localhost")
    assert r.headers == [("Host", "x.localhost"), ("X-A", "v")]
    assert r.keep_alive and r.body_length == 0 and not r.chunked


def test_request_framing_and_connection():
    r = parse_request_head(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    )
    assert r.chunked and r.body_length is None
    r = parse_request_head(b"POST / HTTP/1.0\r\nHost: h\r\nContent-Length: 7\r\n\r\n")
    assert r.body_length == 7 and not r.keep_alive
    r = parse_request_head(b"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
    assert r.keep_alive
    r = parse_request_head(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert r.upgrade == "websocket"
    r = parse_request_head(
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"
    )
    assert r.expect_continue


@pytest.mark.parametrize(
    "head,status",
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: gzip\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: foo\r\n\r\n", 417),
        (b"GET / HTTP/3\r\nHost: h\r\n\r\n", 505),
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ],
)
def test_request_refusals(head, status):
    with pytest.raises(ProtocolError) as e:
        parse_request_head(head)
    assert e.value.status == status


@pytest.mark.parametrize(
    "head,code",
    [
        (b"HTTP/1.1 200\r\n\r\n", "H17"),
        (b"HTTP/1.1 200 \r\n\r\n", "H17"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "H17"),
        (b"HTP/1.1 200 OK\r\n\r\n", "H17"),
        (b"HTTP/1.1 200 " + b"O" * 8200 + b"\r\n\r\n", "H25"),
        (b"HTTP/1.1 200 OK\r\nSet-Cookie: " + b"a" * 8190 + b"\r\n\r\n", "H25"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "H25"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "H25"),
    ],
)
def test_response_errors(head, code):
    with pytest.raises(ProtocolError) as e:
        parse_response_head(head, "GET")
    assert e.value.code == code


def test_response_framing():
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET")
    assert r.body_length == 5 and r.keep_alive
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD")
    assert r.body_length == 0
    r = parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n", "GET")
    assert r.body_length is None and not r.chunked and not r.keep_alive
    r = parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET")
    assert not r.keep_alive
    r = parse_response_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", "GET")
    assert r.body_length == 0


def test_chunked_decoder_trailers_and_leftover():
    d = ChunkedDecoder()
    out, left = d.feed(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT")
    assert out == b"abc" and d.done and left == b"NEXT" and d.trailers == [("X-T", "1")]


@pytest.mark.parametrize(
    "bad", [b"g\r\n", b"3\r\nabcd", b"+3\r\n", b"1" * 17 + b"\r\n", b"3" * 5000]
)
def test_chunked_decoder_refuses(bad):
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=12), st.integers(1, 50))
def test_chunked_roundtrip_any_split(parts, step):
    encoded = b"".join(encode_chunk(p) for p in parts) + b"0\r\n\r\n"
    d = ChunkedDecoder()
    out = b""
    for i in range(0, len(encoded), step):
        payload, left = d.feed(encoded[i : i + step])
        out += payload
        assert left == b""
    assert d.done and out == b"".join(parts)


_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=30,
)
_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_token, st.lists(st.tuples(_token, _value), max_size=20))
def test_serialise_parse_roundtrip(method, headers):
    headers = [
        (k, v)
        for k, v in headers
        if k.lower()
        not in ("host", "content-length", "transfer-encoding", "expect", "connection", "upgrade")
    ]
    raw = serialize_request_head(method, "/p", [("Host", "h.localhost"), *headers])
    assert find_head_end(raw) == len(raw)
    r = parse_request_head(raw)
    assert r.method == method and r.headers[1:] == [(k, v.strip(" \t")) for k, v in headers]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_parser_never_raises_anything_but_protocol_error(data):
    head = data + b"\r\n\r\n"
    try:
        r = parse_request_head(head)
    except ProtocolError as e:
        assert 400 <= e.status < 600
        return
    assert r.method and r.version in ("1.1", "1.0")
    try:
        parse_response_head(head, "GET")
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_chunked_decoder_on_garbage(data):
    d = ChunkedDecoder()
    try:
        out, _ = d.feed(data)
        assert len(out) <= len(data)
    except ProtocolError:
        pass


def test_chunked_wins_over_content_length_and_closes() -> None:
    r = parse_request_head(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert r.chunked and r.body_length is None and not r.keep_alive


def test_partial_request_reads_what_an_incomplete_head_tells():
    r = partial_request(b"GET /half HTTP/1.1\r\nX-A: 1\r\nhost:  a.example.org \r\nX-Parti")
    assert r is not None and (r.method, r.target, r.host) == ("GET", "/half", "a.example.org")
    assert partial_request(b"GET /half HTTP/1.1\r\nHost: a.exam") is None  # Host incomplete
    assert partial_request(b"GET /half HTTP/1.1\r\nHost: a\r\nHost: b\r\n") is None
    assert partial_request(b"GET /half\r\nHost: a\r\n") is None
    assert partial_request(b"GET / HTTP/1.1") is None
