"""The framing state of one HTTP/1.1 client connection, sans-IO, in h11's manner.

Two sides move through their own states: the request the client sends (`RequestState`) and
the response the router writes (`ResponseState`). Every allowed move is in the two tables
below, keyed by (state, event); anything else is a `StateError` (a router fault, never a
client's). The connection-level rules sit in `end_cycle`: a cycle whose request was not
read whole, or whose response did not end, or whose client asked for close, leaves both
sides at MUST_CLOSE; otherwise both go back to IDLE for the next request.

`H1State` also owns the body framing either way: the request body out of the connection's
buffer (Content-Length or chunked) and the response framing towards the client (Content-Length,
chunked, or close-delimited for HTTP/1.0).
"""

from __future__ import annotations

from enum import StrEnum

from .http1 import (
    LAST_CHUNK,
    ChunkedDecoder,
    Headers,
    RequestHead,
    encode_chunk,
    serialize_response_head,
)

BODY_PIECE = 65536  # the most of a Content-Length body handed out at once


class RequestState(StrEnum):
    IDLE = "idle"  # waiting for a request head
    BODY = "body"  # the head was read, its body is being read
    DONE = "done"  # the request was read whole
    MUST_CLOSE = "must-close"  # nothing more is read on this connection


class ResponseState(StrEnum):
    IDLE = "idle"  # nothing of a response composed yet
    BODY = "body"  # the head was composed, the body is going out
    DONE = "done"  # the response is complete
    SWITCHED = "switched"  # a 101 was sent: the connection is a tunnel now
    MUST_CLOSE = "must-close"  # nothing more is written after what was


class Event(StrEnum):
    REQUEST = "request"  # a request head was read
    REQUEST_END = "request-end"  # its body ended (at once for a bodiless request)
    RESPONSE = "response"  # a final response head was composed
    SWITCH = "switch"  # a 101 head was composed
    RESPONSE_END = "response-end"  # the response's last byte was composed
    NEXT = "next"  # the cycle is over and the connection is kept
    CLOSE = "close"  # the cycle is over and the connection is not kept


_RQ, _RS = RequestState, ResponseState
REQUEST_MOVES: dict[tuple[RequestState, Event], RequestState] = {
    (_RQ.IDLE, Event.REQUEST): _RQ.BODY,
    (_RQ.BODY, Event.REQUEST_END): _RQ.DONE,
    (_RQ.DONE, Event.NEXT): _RQ.IDLE,
    (_RQ.IDLE, Event.CLOSE): _RQ.MUST_CLOSE,
    (_RQ.BODY, Event.CLOSE): _RQ.MUST_CLOSE,
    (_RQ.DONE, Event.CLOSE): _RQ.MUST_CLOSE,
    (_RQ.MUST_CLOSE, Event.CLOSE): _RQ.MUST_CLOSE,
}
RESPONSE_MOVES: dict[tuple[ResponseState, Event], ResponseState] = {
    (_RS.IDLE, Event.RESPONSE): _RS.BODY,
    (_RS.IDLE, Event.SWITCH): _RS.SWITCHED,
    (_RS.BODY, Event.RESPONSE_END): _RS.DONE,
    (_RS.DONE, Event.NEXT): _RS.IDLE,
    (_RS.IDLE, Event.CLOSE): _RS.MUST_CLOSE,
    (_RS.BODY, Event.CLOSE): _RS.MUST_CLOSE,
    (_RS.DONE, Event.CLOSE): _RS.MUST_CLOSE,
    (_RS.SWITCHED, Event.CLOSE): _RS.MUST_CLOSE,
    (_RS.MUST_CLOSE, Event.CLOSE): _RS.MUST_CLOSE,
}

# (enum members through their class cost a descriptor call each: the hot paths use these)
_RQ_IDLE, _RQ_BODY, _RQ_DONE = _RQ.IDLE, _RQ.BODY, _RQ.DONE
_RS_IDLE, _RS_DONE = _RS.IDLE, _RS.DONE
_REQUEST, _REQUEST_END, _RESPONSE, _SWITCH = (
    Event.REQUEST,
    Event.REQUEST_END,
    Event.RESPONSE,
    Event.SWITCH,
)
_RESPONSE_END, _NEXT, _CLOSE = Event.RESPONSE_END, Event.NEXT, Event.CLOSE
_REQUEST_EVENTS = frozenset(e for _, e in REQUEST_MOVES)
_RESPONSE_EVENTS = frozenset(e for _, e in RESPONSE_MOVES)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class StateError(Exception):
    """A move the tables do not allow: a router fault."""


class H1State:
    """One client connection's request/response cycle and its body framing.

    (Class-level defaults, no __init__: every connection has one, and most only ever read
    them; mypyc turns them into the compiled class's defaults.)"""

    request: RequestState = _RQ_IDLE
    response: ResponseState = _RS_IDLE
    keep_alive = True  # the connection may carry another request after this one
    http10 = False
    expect_continue = False
    continue_sent = False
    _remaining = 0
    _decoder: ChunkedDecoder | None = None
    _chunked_out = False

    def _move(self, event: Event) -> None:
        """Apply `event` to the side(s) it belongs to, as the tables allow."""
        request: RequestState | None = self.request
        response: ResponseState | None = self.response
        if event in _REQUEST_EVENTS:
            request = REQUEST_MOVES.get((self.request, event))
        if event in _RESPONSE_EVENTS:
            response = RESPONSE_MOVES.get((self.response, event))
        if request is None or response is None:
            raise StateError(f"{event} with request {self.request}, response {self.response}")
        self.request = request
        self.response = response

    # the request -----------------------------------------------------------
    def start(self, req: RequestHead) -> None:
        """A request head was read: its body (if any) comes next."""
        self._move(_REQUEST)
        self.http10 = req.version == "1.0"
        self.keep_alive = req.keep_alive
        self.expect_continue = req.expect_continue
        self.continue_sent = False
        if req.chunked:
            self._decoder = ChunkedDecoder()
        else:
            self._decoder = None
            self._remaining = req.body_length or 0
            if not self._remaining:
                self._move(_REQUEST_END)

    @property
    def body_done(self) -> bool:
        return self.request is not _RQ_BODY

    def body_from(self, buf: bytearray) -> bytes | None:
        """The next piece of the request body, taken off the front of `buf`: b"" once the
        body has ended, None when `buf` holds nothing of it yet. ProtocolError: broken
        chunked framing."""
        if self.request is not _RQ_BODY:
            return b""
        if not buf:
            return None
        decoder = self._decoder
        if decoder is not None:
            data = bytes(buf)
            buf.clear()
            payload, leftover = decoder.feed(data)
            if decoder.done:
                self._move(_REQUEST_END)
                buf += leftover  # (a pipelined request: read by the next cycle, if any)
                return payload
            return payload or None
        n = min(self._remaining, len(buf), BODY_PIECE)
        data = bytes(buf[:n])
        del buf[:n]
        self._remaining -= n
        if not self._remaining:
            self._move(_REQUEST_END)
        return data

    def interim_continue(self) -> bytes:
        """`100 Continue` the first time the body is wanted after `Expect: 100-continue`."""
        if self.continue_sent:
            return b""
        self.continue_sent = True
        return CONTINUE

    # the response ----------------------------------------------------------
    @property
    def response_started(self) -> bool:
        return self.response is not _RS_IDLE

    def response_head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        length: int | None,
        no_body: bool = False,
        last: bool = False,
    ) -> bytes:
        """The head towards the client, with its framing headers. `length` None: not known
        yet (chunked, or close-delimited for HTTP/1.0); `last`: the router is stopping, this
        is the connection's last response."""
        unread = self.request is _RQ_BODY
        self._move(_SWITCH if status == 101 else _RESPONSE)
        hs = list(headers)
        self._chunked_out = False
        if status == 101:
            self.keep_alive = False  # what follows is the tunnel's
            return serialize_response_head(status, reason, hs)
        if last or unread:  # (unread: answered before the body was read, the rest is unread)
            self.keep_alive = False
        if no_body:
            pass
        elif length is not None:
            hs.append(("Content-Length", str(length)))
        elif self.http10:
            self.keep_alive = False  # close-delimited
        else:
            self._chunked_out = True
            hs.append(("Transfer-Encoding", "chunked"))
        if not self.keep_alive:
            hs.append(("Connection", "close"))
        elif self.http10:
            hs.append(("Connection", "keep-alive"))
        return serialize_response_head(status, reason, hs)

    def body_piece(self, data: bytes) -> bytes:
        """A piece of the response body as framed on the wire."""
        return encode_chunk(data) if self._chunked_out else data

    def response_end(self) -> bytes:
        """The response is complete: what still goes on the wire (the last chunk)."""
        self._move(_RESPONSE_END)
        return LAST_CHUNK if self._chunked_out else b""

    # the cycle -------------------------------------------------------------
    def end_cycle(self) -> bool:
        """The exchange is over: True when the connection reads the next request (both
        sides back at IDLE), False when it must close."""
        if self.keep_alive and self.request is _RQ_DONE and self.response is _RS_DONE:
            self._move(_NEXT)
            return True
        self.close()
        return False

    def close(self) -> None:
        """Nothing more is read or written on this connection (after what was)."""
        self.keep_alive = False
        self._move(_CLOSE)
