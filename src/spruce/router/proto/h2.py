"""A sans-IO HTTP/2 server connection (RFC 9113), just what the router needs.

Bytes in (`receive`, returning events), bytes out (`data_to_send`). Streams are requests from
the client; the server never pushes. Header blocks are decoded and validated
(`h2_request.parse_request`); a block equal to an earlier one, decoded against the same HPACK
table, reuses the earlier result, so a client repeating its requests costs a dict lookup.

Events are tuples: (EV_REQUEST, stream_id, H2Request, end_stream), (EV_DATA, stream_id, data),
(EV_END, stream_id), (EV_RESET, stream_id, error_code), (EV_WINDOW, stream_id or 0),
(EV_GOAWAY, error_code). EV_RESET also reports a stream the server reset itself (flow control
or content-length violations); it is sent for streams the caller was told about only.

Connection errors queue a GOAWAY and set `error`: the caller sends what is queued and closes.
Flow control: received DATA is given back with `ack` as the caller consumes it; data sent must
fit `window(stream_id)`.
"""

from __future__ import annotations

import struct
from typing import Any

from .h2_request import H2Request, Malformed, check_trailers, parse_request
from .hpack import Decoder, Encoder, HeaderListTooLarge, HPACKError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types and flags
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB

# settings
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

EV_REQUEST, EV_DATA, EV_END, EV_RESET, EV_WINDOW, EV_GOAWAY = range(1, 7)
# an event: its EV_ kind first, then what the module docstring lists for that kind (tuples,
# not objects: a connection produces several per request)
H2Event = tuple[Any, ...]

MAX_WINDOW = (1 << 31) - 1
DEFAULT_WINDOW = 65535
MAX_FRAME = 16384  # ours: SETTINGS_MAX_FRAME_SIZE is left at its default
_HEAD = struct.Struct(">HBBBI")
_CACHE_BLOCK = 2048  # larger header blocks are not cached
_CACHE_ENTRIES = 256
_RESET_MEMORY = 1024  # streams we reset, remembered to ignore the frames still in flight
# Flood guard: frames that cost the router work without a request completing (a client
# resetting streams it opened: "rapid reset", CVE-2023-44487; PING, SETTINGS and PRIORITY
# floods, CVE-2019-9512/9515) may exceed the streams answered by at most FLOOD_BASE plus
# FLOOD_RATIO per answered stream; past that the connection gets GOAWAY ENHANCE_YOUR_CALM.
FLOOD_BASE = 1000
FLOOD_RATIO = 2


class ConnectionError_(Exception):  # noqa: N801 - not the builtin
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamGone(Exception):
    """The stream is closed (or was never opened): nothing more can be sent on it."""


class _Stream:
    __slots__ = (
        "send_window",
        "recv_window",
        "unacked",
        "remote_closed",
        "local_closed",
        "cl",
        "got",
    )

    def __init__(self, send_window: int, remote_closed: bool, cl: int | None) -> None:
        self.send_window = send_window
        self.recv_window = DEFAULT_WINDOW
        self.unacked = 0  # consumed by the caller, not yet given back
        self.remote_closed = remote_closed
        self.local_closed = False
        self.cl = cl  # declared content-length, checked against the DATA received
        self.got = 0


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 8, n & 0xFF, ftype, flags, stream_id) + payload


class H2Server:
    def __init__(self, max_concurrent: int = 128, max_header_list: int = 1 << 20) -> None:
        self.max_concurrent = max_concurrent
        self.max_header_list = max_header_list
        self.decoder = Decoder(max_list=max_header_list)
        self.encoder = Encoder()
        self.streams: dict[int, _Stream] = {}
        self.highest = 0  # highest stream id the client used
        self.last_stream: int | None = None  # named by our graceful GOAWAY (shutdown)
        self.reset_by_us: dict[int, None] = {}
        self.send_window = DEFAULT_WINDOW  # connection, towards the client
        self.recv_window = DEFAULT_WINDOW  # connection, from the client
        self.recv_unacked = 0
        self.peer_initial_window = DEFAULT_WINDOW
        self.max_frame = MAX_FRAME  # the client's SETTINGS_MAX_FRAME_SIZE
        self.out: list[bytes] = []
        self.error: int | None = None  # set on a connection error (GOAWAY queued)
        self._buf = b""
        self._preface = False
        self._settings_seen = False
        self._block: tuple[int, int, list[bytes], int] | None = None  # HEADERS + CONTINUATIONs
        self._cache: dict[bytes, tuple[int, H2Request]] = {}
        self._suspect = 0  # see FLOOD_BASE
        self._answered = 0

    # output -----------------------------------------------------------------
    def initiate(self) -> None:
        settings = struct.pack(
            ">HIHI",
            S_MAX_CONCURRENT_STREAMS,
            self.max_concurrent,
            S_MAX_HEADER_LIST_SIZE,
            self.max_header_list,
        )
        self.out.append(frame(SETTINGS, 0, 0, settings))
        # the connection's window covers every stream's: one stream whose reader is not
        # reading yet (its dyno still to be chosen) cannot hold up the bodies of the others.
        # Stream windows still bound what is buffered (max_concurrent x 64 KB).
        extra = self.max_concurrent * DEFAULT_WINDOW - DEFAULT_WINDOW
        if extra > 0:
            self.recv_window += extra
            self.out.append(frame(WINDOW_UPDATE, 0, 0, extra.to_bytes(4, "big")))

    def data_to_send(self) -> bytes:
        out = self.out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        self.out = []
        return data

    def window(self, stream_id: int) -> int:
        s = self.streams.get(stream_id)
        if s is None or s.local_closed:
            raise StreamGone()
        return min(self.send_window, s.send_window)

    def is_open(self, stream_id: int) -> bool:
        s = self.streams.get(stream_id)
        return s is not None and not s.local_closed

    def send_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False
    ) -> None:
        s = self.streams.get(stream_id)
        if s is None or s.local_closed:
            raise StreamGone()
        block = self.encoder.encode(headers)
        flags = END_STREAM if end_stream else 0
        limit = self.max_frame
        if len(block) <= limit:
            self.out.append(frame(HEADERS, flags | END_HEADERS, stream_id, block))
        else:
            out = self.out
            out.append(frame(HEADERS, flags, stream_id, block[:limit]))
            for i in range(limit, len(block), limit):
                last = i + limit >= len(block)
                out.append(
                    frame(CONTINUATION, END_HEADERS if last else 0, stream_id, block[i : i + limit])
                )
        if end_stream:
            self._close_local(stream_id, s)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """`data` must fit `window(stream_id)`; it is cut to the client's frame size."""
        s = self.streams.get(stream_id)
        if s is None or s.local_closed:
            raise StreamGone()
        n = len(data)
        if n > self.send_window or n > s.send_window:
            raise ValueError("data beyond the flow control window")
        self.send_window -= n
        s.send_window -= n
        limit = self.max_frame
        if n <= limit:
            self.out.append(frame(DATA, END_STREAM if end_stream else 0, stream_id, data))
        else:
            out = self.out
            for i in range(0, n, limit):
                last = i + limit >= n
                flags = END_STREAM if end_stream and last else 0
                out.append(frame(DATA, flags, stream_id, data[i : i + limit]))
        if end_stream:
            self._close_local(stream_id, s)

    def end_stream(self, stream_id: int) -> None:
        self.send_data(stream_id, b"", end_stream=True)

    def reset_stream(self, stream_id: int, code: int = INTERNAL_ERROR) -> None:
        if self.streams.pop(stream_id, None) is not None:
            self._rst(stream_id, code)

    def ack(self, stream_id: int, n: int) -> None:
        """The caller consumed `n` bytes of the stream's DATA: open the windows again."""
        if n <= 0:
            return
        self.recv_unacked += n
        if self.recv_unacked >= DEFAULT_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, 0, self.recv_unacked.to_bytes(4, "big")))
            self.recv_window += self.recv_unacked
            self.recv_unacked = 0
        s = self.streams.get(stream_id)
        if s is not None and not s.remote_closed:
            s.unacked += n
            if s.unacked >= DEFAULT_WINDOW // 2:
                s.recv_window += s.unacked
                self.out.append(frame(WINDOW_UPDATE, 0, stream_id, s.unacked.to_bytes(4, "big")))
                s.unacked = 0

    def goaway(self, code: int) -> None:
        if self.error is None:
            self.error = code
            last = self.highest if self.last_stream is None else self.last_stream
            self.out.append(frame(GOAWAY, 0, 0, struct.pack(">II", last, code)))

    def shutdown(self) -> int:
        """GOAWAY NO_ERROR naming the last stream taken (the caller refuses later ones);
        a later GOAWAY names no higher stream (RFC 9113 6.8). Returns that stream id."""
        if self.last_stream is None:
            self.last_stream = self.highest
            self.out.append(frame(GOAWAY, 0, 0, struct.pack(">II", self.highest, NO_ERROR)))
        return self.last_stream

    def _close_local(self, stream_id: int, s: _Stream) -> None:
        s.local_closed = True
        self._answered += 1
        if s.remote_closed:
            del self.streams[stream_id]

    def _rst(self, stream_id: int, code: int) -> None:
        self.out.append(frame(RST_STREAM, 0, stream_id, code.to_bytes(4, "big")))
        memory = self.reset_by_us
        memory[stream_id] = None
        if len(memory) > _RESET_MEMORY:
            del memory[next(iter(memory))]

    def _stream_error(self, stream_id: int, code: int, events: list[H2Event]) -> None:
        """Reset a stream the caller knows: it gets EV_RESET."""
        gone = self.streams.pop(stream_id, None)
        if gone is not None:
            events.append((EV_RESET, stream_id, code))
        self._rst(stream_id, code)
        if gone is not None and not gone.local_closed:
            self._suspicious()  # a reset the client provoked ("MadeYouReset") is its own

    # input ------------------------------------------------------------------
    def receive(self, data: bytes) -> list[H2Event]:
        events: list[H2Event] = []
        if self.error is not None:
            return events
        buf = self._buf + data if self._buf else data
        try:
            pos = 0
            if not self._preface:
                if len(buf) < len(PREFACE):
                    if not PREFACE.startswith(buf):
                        raise ConnectionError_(PROTOCOL_ERROR, "bad connection preface")
                    self._buf = buf
                    return events
                if not buf.startswith(PREFACE):
                    raise ConnectionError_(PROTOCOL_ERROR, "bad connection preface")
                self._preface = True
                pos = len(PREFACE)
            end = len(buf)
            unpack = _HEAD.unpack_from
            while end - pos >= 9:
                hi, lo, ftype, flags, sid = unpack(buf, pos)
                length = hi << 8 | lo
                if length > MAX_FRAME:
                    raise ConnectionError_(FRAME_SIZE_ERROR, "frame too large")
                if end - pos - 9 < length:
                    break
                payload = buf[pos + 9 : pos + 9 + length]
                pos += 9 + length
                self._frame(ftype, flags, sid & 0x7FFFFFFF, payload, events)
            self._buf = buf[pos:] if pos < end else b""
        except ConnectionError_ as e:
            self._buf = b""
            self.goaway(e.code)
        return events

    def _suspicious(self) -> None:
        self._suspect += 1
        if self._suspect > FLOOD_BASE + FLOOD_RATIO * self._answered:
            raise ConnectionError_(ENHANCE_YOUR_CALM, "too many resets or control frames")

    def _frame(
        self, ftype: int, flags: int, sid: int, payload: bytes, events: list[H2Event]
    ) -> None:
        if not self._settings_seen:
            if ftype != SETTINGS or flags & ACK:
                raise ConnectionError_(PROTOCOL_ERROR, "preface without SETTINGS")
            self._settings_seen = True
        if self._block is not None:
            if ftype != CONTINUATION:
                raise ConnectionError_(PROTOCOL_ERROR, "header block interrupted")
            bsid, bflags, parts, size = self._block
            if sid != bsid:
                raise ConnectionError_(PROTOCOL_ERROR, "CONTINUATION on another stream")
            parts.append(payload)
            size += 9 + len(payload)  # frames count too: empty ones are no free ride
            if size > self.max_header_list + 65536:
                raise ConnectionError_(ENHANCE_YOUR_CALM, "header block too large")
            if flags & END_HEADERS:
                self._block = None
                self._headers_done(sid, bflags, b"".join(parts), events)
            else:
                self._block = (bsid, bflags, parts, size)
            return
        if ftype == HEADERS:
            self._on_headers(flags, sid, payload, events)
        elif ftype == DATA:
            self._on_data(flags, sid, payload, events)
        elif ftype == WINDOW_UPDATE:
            self._on_window_update(sid, payload, events)
        elif ftype == SETTINGS:
            self._on_settings(flags, sid, payload, events)
        elif ftype == RST_STREAM:
            if sid == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "RST_STREAM on stream 0")
            if len(payload) != 4:
                raise ConnectionError_(FRAME_SIZE_ERROR, "RST_STREAM size")
            if sid > self.highest:
                raise ConnectionError_(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
            gone = self.streams.pop(sid, None)
            if gone is not None:
                events.append((EV_RESET, sid, int.from_bytes(payload, "big")))
                if not gone.local_closed:
                    self._suspicious()  # a request cancelled before its answer
        elif ftype == PING:
            if sid != 0:
                raise ConnectionError_(PROTOCOL_ERROR, "PING on a stream")
            if len(payload) != 8:
                raise ConnectionError_(FRAME_SIZE_ERROR, "PING size")
            if not flags & ACK:
                self._suspicious()
                self.out.append(frame(PING, ACK, 0, payload))
        elif ftype == PRIORITY:
            self._suspicious()
            if sid == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                self._stream_error(sid, FRAME_SIZE_ERROR, events)
            elif int.from_bytes(payload[:4], "big") & 0x7FFFFFFF == sid:
                self._stream_error(sid, PROTOCOL_ERROR, events)
        elif ftype == GOAWAY:
            if sid != 0:
                raise ConnectionError_(PROTOCOL_ERROR, "GOAWAY on a stream")
            if len(payload) < 8:
                raise ConnectionError_(FRAME_SIZE_ERROR, "GOAWAY size")
            events.append((EV_GOAWAY, int.from_bytes(payload[4:8], "big")))
        elif ftype == CONTINUATION:
            raise ConnectionError_(PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        elif ftype == PUSH_PROMISE:
            raise ConnectionError_(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        # other types are extensions: ignored (RFC 9113 5.5)

    def _unpad(self, flags: int, payload: bytes) -> bytes:
        if flags & PADDED:
            if not payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "padded frame without pad length")
            pad = payload[0]
            if pad >= len(payload):
                raise ConnectionError_(PROTOCOL_ERROR, "padding exceeds the frame")
            payload = payload[1 : len(payload) - pad]
        return payload

    def _on_headers(self, flags: int, sid: int, payload: bytes, events: list[H2Event]) -> None:
        if sid == 0 or not sid & 1:
            raise ConnectionError_(PROTOCOL_ERROR, "HEADERS on an invalid stream id")
        payload = self._unpad(flags, payload)
        if flags & PRIORITY_FLAG:
            if len(payload) < 5:
                raise ConnectionError_(FRAME_SIZE_ERROR, "HEADERS priority size")
            if int.from_bytes(payload[:4], "big") & 0x7FFFFFFF == sid:
                flags |= 0x100  # self-dependency: a stream error once the block is decoded
            payload = payload[5:]
        if flags & END_HEADERS:
            self._headers_done(sid, flags, payload, events)
        else:
            self._block = (sid, flags, [payload], len(payload))

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self.decoder.decode(block)
        except HPACKError as e:
            raise ConnectionError_(COMPRESSION_ERROR, str(e)) from None
        except HeaderListTooLarge:
            raise ConnectionError_(ENHANCE_YOUR_CALM, "header list too large") from None

    def _headers_done(self, sid: int, flags: int, block: bytes, events: list[H2Event]) -> None:
        end_stream = bool(flags & END_STREAM)
        if sid > self.highest:  # a new request
            self.highest = sid
            cached = self._cache.get(block)
            gen = self.decoder.gen
            req: H2Request | None = None
            if cached is not None and cached[0] == gen:
                req = cached[1]
            else:
                headers = self._decode(block)  # always: the HPACK table must stay in step
                try:
                    req = parse_request(headers)
                except Malformed:
                    req = None
                if req is not None and gen == self.decoder.gen and len(block) <= _CACHE_BLOCK:
                    if len(self._cache) >= _CACHE_ENTRIES:
                        self._cache.clear()
                    self._cache[block] = (gen, req)
            if req is None or flags & 0x100 or (end_stream and req.content_length not in (None, 0)):
                self._rst(sid, PROTOCOL_ERROR)
                return
            if len(self.streams) >= self.max_concurrent:
                self._rst(sid, REFUSED_STREAM)
                return
            self.streams[sid] = _Stream(self.peer_initial_window, end_stream, req.content_length)
            events.append((EV_REQUEST, sid, req, end_stream))
            return
        headers = self._decode(block)
        s = self.streams.get(sid)
        if s is None:
            if sid in self.reset_by_us:
                return  # in flight when we reset it
            raise ConnectionError_(STREAM_CLOSED, "HEADERS on a closed stream")
        if s.remote_closed:
            self._stream_error(sid, STREAM_CLOSED, events)
            return
        try:
            check_trailers(headers)
            bad = not end_stream or flags & 0x100 or (s.cl is not None and s.got != s.cl)
        except Malformed:
            bad = True
        if bad:
            self._stream_error(sid, PROTOCOL_ERROR, events)
            return
        self._remote_end(sid, s, events)

    def _remote_end(self, sid: int, s: _Stream, events: list[H2Event]) -> None:
        s.remote_closed = True
        events.append((EV_END, sid))
        if s.local_closed:
            del self.streams[sid]

    def _on_data(self, flags: int, sid: int, payload: bytes, events: list[H2Event]) -> None:
        if sid == 0:
            raise ConnectionError_(PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        self.recv_window -= flow
        if self.recv_window < 0:
            raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window exceeded")
        payload = self._unpad(flags, payload)
        if sid > self.highest:
            raise ConnectionError_(PROTOCOL_ERROR, "DATA on an idle stream")
        s = self.streams.get(sid)
        if s is None or s.remote_closed:
            self.ack(0, flow)  # nobody will consume it: the connection window comes back now
            if s is not None:
                self._stream_error(sid, STREAM_CLOSED, events)
            elif sid not in self.reset_by_us:
                raise ConnectionError_(STREAM_CLOSED, "DATA on a closed stream")
            return
        s.recv_window -= flow
        s.got += len(payload)
        if s.recv_window < 0 or (s.cl is not None and s.got > s.cl):
            self.ack(0, flow)
            code = FLOW_CONTROL_ERROR if s.recv_window < 0 else PROTOCOL_ERROR
            self._stream_error(sid, code, events)
            return
        if flow > len(payload):  # padding is consumed right away
            self.ack(sid, flow - len(payload))
        if payload:
            events.append((EV_DATA, sid, payload))
        if flags & END_STREAM:
            if s.cl is not None and s.got != s.cl:
                self._stream_error(sid, PROTOCOL_ERROR, events)
                return
            self._remote_end(sid, s, events)

    def _on_window_update(self, sid: int, payload: bytes, events: list[H2Event]) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "WINDOW_UPDATE size")
        inc = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if sid == 0:
            if inc == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.send_window += inc
            if self.send_window > MAX_WINDOW:
                raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window overflow")
            events.append((EV_WINDOW, 0))
            return
        if sid > self.highest:
            raise ConnectionError_(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
        s = self.streams.get(sid)
        if s is None:
            return  # closed: the update may have crossed our END_STREAM
        if inc == 0:
            self._stream_error(sid, PROTOCOL_ERROR, events)
            return
        s.send_window += inc
        if s.send_window > MAX_WINDOW:
            self._stream_error(sid, FLOW_CONTROL_ERROR, events)
            return
        events.append((EV_WINDOW, sid))

    def _on_settings(self, flags: int, sid: int, payload: bytes, events: list[H2Event]) -> None:
        if sid != 0:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS size")
        self._suspicious()
        for i in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == S_HEADER_TABLE_SIZE:
                self.encoder.set_peer_max(value)
            elif key == S_ENABLE_PUSH:
                if value > 1:
                    raise ConnectionError_(PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1")
            elif key == S_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for s in self.streams.values():
                    s.send_window += delta
                    if s.send_window > MAX_WINDOW:
                        raise ConnectionError_(FLOW_CONTROL_ERROR, "stream window overflow")
            elif key == S_MAX_FRAME_SIZE:
                if not MAX_FRAME <= value <= (1 << 24) - 1:
                    raise ConnectionError_(PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self.max_frame = value
        self.out.append(frame(SETTINGS, ACK, 0))
        events.append((EV_WINDOW, 0))
