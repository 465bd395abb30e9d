"""The HTTP/1.1 connection's framing state machine (proto/h1.py), without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spruce.router.proto.h1 import (
    REQUEST_MOVES,
    RESPONSE_MOVES,
    H1State,
    RequestState,
    ResponseState,
    StateError,
)
from spruce.router.proto.http1 import ProtocolError, parse_request_head


def _req(head: bytes):  # type: ignore[no-untyped-def]
    return parse_request_head(head)


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_keepalive_cycle_returns_to_idle() -> None:
    s = H1State()
    s.start(_req(GET))
    assert (s.request, s.response) == (RequestState.DONE, ResponseState.IDLE)
    head = s.response_head(200, "OK", [("X", "1")], 2)
    assert head == b"HTTP/1.1 200 OK\r\nX: 1\r\nContent-Length: 2\r\n\r\n"
    assert s.response_started and s.body_piece(b"hi") == b"hi"
    assert s.response_end() == b""
    assert s.end_cycle()
    assert (s.request, s.response) == (RequestState.IDLE, ResponseState.IDLE)


def test_content_length_body_in_pieces() -> None:
    s = H1State()
    s.start(_req(POST))
    buf = bytearray()
    assert s.body_from(buf) is None  # nothing yet
    buf += b"ab"
    assert s.body_from(buf) == b"ab" and not s.body_done
    buf += b"cdeGET"
    assert s.body_from(buf) == b"cde" and s.body_done
    assert buf == b"GET"  # the next request's bytes stay
    assert s.body_from(buf) == b""


def test_chunked_body_and_leftover() -> None:
    s = H1State()
    s.start(_req(CHUNKED))
    buf = bytearray(b"3\r\nabc\r\n")
    assert s.body_from(buf) == b"abc"
    buf += b"0\r\n\r\nNEXT"
    assert s.body_from(buf) == b"" and s.body_done and buf == b"NEXT"
    s2 = H1State()
    s2.start(_req(CHUNKED))
    with pytest.raises(ProtocolError):
        s2.body_from(bytearray(b"zz\r\n"))


def test_answer_before_the_body_closes_the_connection() -> None:
    s = H1State()
    s.start(_req(POST))
    head = s.response_head(503, "Service Unavailable", [], 0)
    assert b"Connection: close\r\n" in head
    s.response_end()
    assert not s.end_cycle()
    assert (s.request, s.response) == (RequestState.MUST_CLOSE, ResponseState.MUST_CLOSE)


def test_framing_towards_the_client() -> None:
    s = H1State()
    s.start(_req(GET))
    head = s.response_head(200, "OK", [], None)
    assert head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert s.body_piece(b"abc") == b"3\r\nabc\r\n"
    assert s.response_end() == b"0\r\n\r\n"
    assert s.end_cycle()
    # HTTP/1.0: close-delimited, no keep-alive unless asked
    s.start(_req(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"))
    head = s.response_head(200, "OK", [], None)
    assert b"Transfer-Encoding" not in head and head.endswith(b"Connection: close\r\n\r\n")
    assert s.body_piece(b"abc") == b"abc"
    s.response_end()
    assert not s.end_cycle()
    s = H1State()
    s.start(_req(b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"))
    assert s.response_head(200, "OK", [], 0).endswith(b"Connection: keep-alive\r\n\r\n")
    s.response_end()
    assert s.end_cycle()


def test_last_response_of_a_stopping_router_and_connection_close() -> None:
    s = H1State()
    s.start(_req(GET))
    assert b"Connection: close" in s.response_head(200, "OK", [], 0, last=True)
    s.response_end()
    assert not s.end_cycle()
    s = H1State()
    s.start(_req(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
    s.response_head(204, "No Content", [], None, no_body=True)
    s.response_end()
    assert not s.end_cycle()


def test_switch_is_a_tunnel() -> None:
    s = H1State()
    s.start(_req(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"))
    head = s.response_head(101, "Switching Protocols", [("Upgrade", "x")], None)
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert s.response is ResponseState.SWITCHED
    with pytest.raises(StateError):
        s.response_end()
    assert not s.end_cycle()


def test_continue_once() -> None:
    s = H1State()
    s.start(
        _req(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
    )
    assert s.expect_continue
    assert s.interim_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert s.interim_continue() == b""


def test_moves_outside_the_tables_are_refused() -> None:
    s = H1State()
    with pytest.raises(StateError):
        s.response_end()  # nothing composed yet
    s.start(_req(GET))
    with pytest.raises(StateError):
        s.start(_req(GET))  # a second request before the cycle ended
    s.response_head(200, "OK", [], 0)
    with pytest.raises(StateError):
        s.response_head(200, "OK", [], 0)  # a second head
    s.close()
    with pytest.raises(StateError):
        s.start(_req(GET))  # closed: nothing more is read
    assert s.end_cycle() is False  # (and stays closed)


_ACTIONS = ("start", "start_post", "body", "head", "end", "cycle", "close")


@given(st.lists(st.sampled_from(_ACTIONS), max_size=30))
def test_any_sequence_stays_within_the_tables(actions: list[str]) -> None:
    """Whatever the order of calls, the sides only ever hold states the tables name, and a
    refused move changes nothing."""
    known_request = {s for s, _ in REQUEST_MOVES} | set(REQUEST_MOVES.values())
    known_response = {s for s, _ in RESPONSE_MOVES} | set(RESPONSE_MOVES.values())
    s = H1State()
    buf = bytearray()
    for action in actions:
        before = (s.request, s.response)
        try:
            if action == "start":
                s.start(_req(GET))
            elif action == "start_post":
                s.start(_req(POST))
            elif action == "body":
                buf += b"x"
                s.body_from(buf)
            elif action == "head":
                s.response_head(200, "OK", [], 1)
            elif action == "end":
                s.response_end()
            elif action == "cycle":
                kept = s.end_cycle()
                assert kept == (s.request is RequestState.IDLE)
            else:
                s.close()
        except StateError:
            assert (s.request, s.response) == before
        assert s.request in known_request and s.response in known_response
        if s.request is RequestState.MUST_CLOSE:
            assert not s.keep_alive
