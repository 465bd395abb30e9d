"""The regex fast path for heads must agree exactly with the line-by-line parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spruce.router.proto import http1
from spruce.router.proto.http1 import ProtocolError

# bytes that matter to the grammar: token chars, separators, controls, obs-text
_ALPHABET = list(b'aZ0-!~:;/ \t\r\n\x00\x01\x7f\x80\xff"(,')
_piece = st.lists(st.sampled_from(_ALPHABET), max_size=12).map(bytes)
_name = st.one_of(
    st.sampled_from([b"Host", b"Content-Length", b"Connection", b"X-A", b"Set-Cookie"]), _piece
)
_value = st.one_of(
    st.sampled_from([b"h.localhost", b"7", b"close", b" keep-alive ", b"a, b", b""]), _piece
)
_field = st.tuples(_name, st.sampled_from([b":", b": ", b":\t", b" :", b""]), _value).map(
    lambda t: t[0] + t[1] + t[2] + b"\r\n"
)


def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except ProtocolError as e:
        return ("error", e.status, e.code)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        [b"GET / HTTP/1.1", b"POST /a?b HTTP/1.0", b"M-SEARCH * HTTP/1.1", b"GET  / HTTP/1.1"]
    )
    | _piece,
    st.lists(_field, max_size=6),
)
def test_request_fast_path_agrees(line: bytes, fields: list[bytes]) -> None:
    head = line + b"\r\n" + b"".join(fields) + b"\r\n"
    fast = _outcome(http1.parse_request_head, head)
    slow = _outcome(lambda h: http1._finish_request(http1._slow_request(h)), head)
    assert fast == slow


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        [b"HTTP/1.1 200 OK", b"HTTP/1.0 404 Not  Found", b"HTTP/1.1 200", b"HTTP/1.1 099 X"]
    )
    | _piece.map(lambda p: b"HTTP/1.1 200 " + p),
    st.lists(_field, max_size=6),
)
def test_response_fast_path_agrees(line: bytes, fields: list[bytes]) -> None:
    head = line + b"\r\n" + b"".join(fields) + b"\r\n"
    fast = _outcome(http1.parse_response_head, head, "GET")
    slow = _outcome(lambda h: http1._finish_response(http1._slow_response(h), "GET"), head)
    assert fast == slow


def test_ordinary_heads_take_the_fast_path() -> None:
    assert http1._fast_request(b"GET / HTTP/1.1\r\nHost: h\r\nX-A:  v \t\r\n\r\n") is not None
    resp = http1._fast_response(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
    assert resp is not None and resp.headers == [("Content-Length", "6")]
    # unusual forms fall back to the line-by-line parser, which words the error
    assert http1._fast_request(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n") is None
    assert http1._fast_response(b"HTTP/1.1 200 \r\n\r\n") is None
