"""HTTP/2 client connections (TLS + ALPN "h2"); dynos get HTTP/1.1.

The protocol is `proto.h2.H2Server` (sans-IO); this module is its IO: one connection is one
`Stream` whose bytes are handled in the data callback (all frames they produce leave in one
write per loop turn), each request stream is an `H2Stream` (the exchange's `ClientSide`).
Simple requests take the fast lane (`h2_fast`): forwarded and answered from the callbacks;
the others run `Exchange` in a task, as does any fast-lane exchange that needs handing over.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from . import h2_fast
from .client_side import TLSInfo
from .errors import plain_page
from .exchange import ClientGone, ClientIdle, ClientSide, Exchange, HandOver, send_simple
from .logline import Wire, line_tail
from .proto.h2 import (
    CANCEL,
    EV_DATA,
    EV_END,
    EV_GOAWAY,
    EV_REQUEST,
    EV_RESET,
    EV_WINDOW,
    INTERNAL_ERROR,
    NO_ERROR,
    REFUSED_STREAM,
    H2Server,
    StreamGone,
)
from .proto.h2_request import H2Request
from .proto.headers import HOP_BY_HOP
from .state import ConnectionApps, Router
from .stream import Stream
from .table import normalise_host

_DROP_OUT = HOP_BY_HOP | {"host"}
WRITE_BUFFER = 1 << 20  # bounded buffering towards slow readers
FLUSH_AT = 16384  # a response body this large is written at once, not coalesced


def response_headers(
    status: int, headers: list[tuple[str, str]], length: int | None
) -> list[tuple[bytes, bytes]]:
    """HTTP/2 response headers from the router's (validated HTTP/1.1) ones."""
    hs: list[tuple[bytes, bytes]] = [(b":status", str(status).encode())]
    for k, v in headers:
        lk = k.lower()
        if lk in _DROP_OUT:
            continue
        hs.append((lk.encode("latin-1"), v.encode("latin-1")))
    if length is not None:
        hs.append((b"content-length", str(length).encode()))
    return hs


class H2Stream(ClientSide):
    protocol = Wire.HTTP2
    via = "2.0"

    def __init__(self, conn: H2Connection, stream_id: int, req: H2Request, ended: bool) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.req = req
        self.tls, self.tls_version, self.sni = conn.info
        self.client_ip = conn.client_ip
        self.local_port = conn.local_port
        self.conn_apps = conn.conn_apps
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.bodiless = ended  # HEADERS ended the stream: no body at all
        self.ended = ended  # the client's side of the stream is complete
        self.reset = False
        self.closed = False  # our side is complete
        self.fast: HandOver | None = None  # the fast lane's exchange while it is out
        self.started = False  # anything of the response was sent

    # events from the connection --------------------------------------------
    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def end_remote(self) -> None:
        self.ended = True
        self._wake()

    def on_reset(self) -> None:
        self.reset = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def unread_bytes(self) -> int:
        n = sum(len(c) for c in self._chunks)
        self._chunks.clear()
        return n

    # ClientSide ---------------------------------------------------------------
    @property
    def response_started(self) -> bool:
        return self.started

    async def read_body(self) -> bytes:
        conn = self.conn
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                conn.proto.ack(self.stream_id, len(data))
                conn.flush()
                return data
            if self.reset or conn.dead:
                raise ClientGone()
            if self.ended:
                return b""
            w = asyncio.get_running_loop().create_future()
            self._waiter = w
            try:
                async with asyncio.timeout(conn.router.timers.idle):
                    await w
            except TimeoutError:
                raise ClientIdle() from None
            finally:
                self._waiter = None

    async def send_continue(self) -> None:
        self._send_headers([(b":status", b"100")], False)

    def _send_headers(self, hs: list[tuple[bytes, bytes]], end: bool) -> None:
        if self.reset or self.conn.dead:
            raise ClientGone()
        try:
            self.conn.proto.send_headers(self.stream_id, hs, end)
        except StreamGone:
            raise ClientGone() from None
        self.conn.flush()

    async def send_head(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        length: int | None,
        no_body: bool = False,
    ) -> None:
        if self.reset:
            raise ClientGone()
        self.started = True
        self._send_headers(response_headers(status, headers, None if no_body else length), no_body)
        self.closed = no_body

    async def send_whole(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        conn = self.conn
        if not self.reset and not conn.dead and body:
            while conn.writer.must_wait():  # no more than about the write buffer's worth out
                await conn.drain()
            try:
                fits = len(body) <= conn.proto.window(self.stream_id)
            except StreamGone:
                raise ClientGone() from None
            if fits:  # HEADERS and DATA ending the stream, one flush
                await self.send_head(status, reason, headers, len(body))
                try:
                    conn.proto.send_data(self.stream_id, body, end_stream=True)
                except StreamGone:
                    raise ClientGone() from None
                self.closed = True
                if len(body) >= FLUSH_AT:
                    conn.flush_now()  # written now, so the next must_wait() knows of it
                else:
                    conn.flush()
                return
        await super().send_whole(status, reason, headers, body)

    async def send_data(self, data: bytes) -> None:
        conn = self.conn
        proto = conn.proto
        view = memoryview(data)
        while view:
            if self.reset or conn.dead:
                raise ClientGone()
            if conn.writer.must_wait():  # every stream waiting is woken at once: check again
                await conn.drain()
                continue
            try:
                window = proto.window(self.stream_id)
            except StreamGone:
                raise ClientGone() from None
            if window <= 0:
                await conn.wait_window()
                continue
            n = min(window, len(view), 1 << 16)
            proto.send_data(self.stream_id, view[:n].tobytes())
            view = view[n:]
            conn.flush_now()  # written now, so that the next must_wait() knows of it

    async def end(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.reset or self.conn.dead:
            raise ClientGone()
        try:
            self.conn.proto.end_stream(self.stream_id)
        except StreamGone:
            raise ClientGone() from None
        self.conn.flush()

    def abort(self) -> None:
        if not self.reset:
            self.reset = True
            self.conn.proto.reset_stream(self.stream_id, INTERNAL_ERROR)
            self.conn.flush()


class H2Connection:
    def __init__(
        self,
        router: Router,
        reader: Stream,
        writer: Stream,
        info: TLSInfo,
    ) -> None:
        self.router = router
        self.reader = reader
        self.writer = writer
        self.info = info
        peer = writer.get_extra_info("peername") or ("", 0)
        sock = writer.get_extra_info("sockname") or ("", 0)
        self.client_ip = str(peer[0])
        self.local_port = int(sock[1])
        self.sni_host = normalise_host(info.sni) if info.tls and info.sni else None
        # the end of the fast lane's log line, fixed per connection
        self.line_tail = line_tail(H2Stream.protocol, info.tls, info.version)
        self.proto = H2Server(max_concurrent=128, max_header_list=1 << 20)
        self.conn_apps = ConnectionApps(router, moves=False)
        self.last_stream: int | None = None  # set by shutdown(): GOAWAY sent, later refused
        self.streams: dict[int, H2Stream] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.fast: dict[H2Stream, float] = {}  # fast-lane exchanges out: when sent, in order
        self._fast_timer: asyncio.TimerHandle | None = None
        self._window = asyncio.Event()
        self._drained: asyncio.Future[None] | None = None
        self.dead = False
        self._flush_scheduled = False
        self._unpause: asyncio.Task[None] | None = None  # reading paused until this drain
        self._loop = asyncio.get_running_loop()
        self._last_rx = self._loop.time()
        try:
            writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        except Exception:
            pass

    # output -------------------------------------------------------------------
    def flush(self) -> None:
        """Coalesce: frames of every stream produced in this loop turn go out in one write."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush_now)

    def flush_now(self) -> None:
        self._flush_scheduled = False
        data = self.proto.data_to_send()
        w = self.writer
        if data and not w.is_closing():
            w.write(data)
            if w.must_wait() and self._unpause is None and not self.dead:
                # the client is not reading what we send: read nothing more from it (no new
                # streams, no frames asking for an answer) until it has taken most of it
                w.transport.pause_reading()
                self._unpause = self._loop.create_task(self._resume_reading())

    async def _resume_reading(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            return
        self._unpause = None
        if not self.writer.is_closing():
            self.writer.transport.resume_reading()

    async def drain(self) -> None:
        """Wait while the client leaves more than the write buffer unread; a client that
        takes nothing of it for `idle` is gone (ClientIdle), a slow one is waited for."""
        w = self.writer
        left = w.transport.get_write_buffer_size()
        while True:
            try:
                async with asyncio.timeout(self.router.timers.idle):
                    await w.drain()
                break
            except TimeoutError:
                now = w.transport.get_write_buffer_size()
                if now >= left:
                    raise ClientIdle() from None
                left = now
            except (ConnectionError, OSError):
                raise ClientGone() from None
        if self.dead:
            raise ClientGone()

    async def wait_window(self) -> None:
        self._window.clear()
        try:
            async with asyncio.timeout(self.router.timers.idle):
                await self._window.wait()
        except TimeoutError:
            raise ClientIdle() from None

    # the connection -----------------------------------------------------------
    async def serve(self) -> None:
        router = self.router
        reader = self.reader
        router.open_connections += 1
        self.proto.initiate()
        self.flush_now()
        idle = router.timers.idle
        cancelled = False
        try:
            # every byte from here on is handled in the data callback
            reader.intercept = self._on_data
            early = reader.take_buffered()
            if early:
                self._on_data(early)
            timeout = idle
            unsent = 0
            while not self.dead:
                try:
                    data = await reader.read(65536, timeout)
                except TimeoutError:
                    # a client taking our output is not idle (while it is behind, its own
                    # frames are not read): the connection must not close on what it reads
                    left = self.writer.transport.get_write_buffer_size()
                    if left and (left < unsent or not unsent):
                        self._last_rx = self._loop.time()
                    unsent = left
                    quiet = self._loop.time() - self._last_rx
                    if self.streams or quiet < idle:
                        timeout = idle if self.streams else idle - quiet
                        continue
                    break
                if not data:
                    break
                self._on_data(data)  # only bytes that raced the intercept
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            reader.intercept = None
            self.dead = True
            self._window.set()
            for st in list(self.streams.values()):
                st.on_reset()
            try:
                if not cancelled:
                    # exchanges still out finish by themselves (H27 when they answer, the
                    # response timer otherwise); a router stopping cancels them below
                    await self._wait_drained()
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if cancelled:
                    self._cancel_all()
                if self._fast_timer is not None:
                    self._fast_timer.cancel()
                    self._fast_timer = None
                if self._unpause is not None:
                    self._unpause.cancel()
                router.open_connections -= 1
                self.conn_apps.release()
                self.flush_now()  # what the streams wrote last (an H24 page) goes out first
                self.writer.transport.abort()

    def shutdown(self) -> None:
        """The router is stopping: GOAWAY naming the last stream taken (streams in flight go
        on, later ones are refused), fast-lane exchanges handed to the coroutine path (which
        answers H24 when the grace ends); the connection closes once no stream is left.
        Called again and again by the server until then."""
        if self.dead or self.writer.is_closing():
            return
        if self.last_stream is None:
            self.last_stream = self.proto.shutdown()
            for st in list(self.fast):
                h2_fast.expire(self, st)
            self.flush_now()
        if not self.streams:
            self.flush_now()
            # abort, not close: a TLS close would wait for the client's close_notify
            self.writer.transport.abort()

    def arm_fast_timer(self) -> None:
        """One timer per connection watches the response deadline of its fast-lane streams
        (they were sent in order, so the oldest is due first)."""
        if self._fast_timer is None and self.fast:
            first = next(iter(self.fast.values()))
            delay = first + self.router.timers.response - time.monotonic()
            self._fast_timer = self._loop.call_later(max(0.0, delay), self._on_fast_timer)

    def _on_fast_timer(self) -> None:
        self._fast_timer = None
        deadline = time.monotonic() - self.router.timers.response
        for st, sent_at in list(self.fast.items()):
            if sent_at > deadline:
                break
            h2_fast.expire(self, st)
        self.arm_fast_timer()

    async def _wait_drained(self) -> None:
        while self.tasks or self.fast:
            self._drained = self._loop.create_future()
            await self._drained

    def maybe_drained(self) -> None:
        d = self._drained
        if d is not None and not self.tasks and not self.fast and not d.done():
            self._drained = None
            d.set_result(None)

    def _cancel_all(self) -> None:
        for st in list(self.fast):
            h2_fast.cancel(self, st)
        for t in list(self.tasks):
            t.cancel()

    def _on_data(self, data: bytes) -> bool:
        self._last_rx = self._loop.time()
        proto = self.proto
        for ev in proto.receive(data):
            kind = ev[0]
            if kind == EV_REQUEST:
                self._request(ev[1], ev[2], ev[3])
                continue
            st = self.streams.get(ev[1]) if kind != EV_GOAWAY else None
            if kind == EV_DATA:
                if st is not None:
                    st.feed(ev[2])
                else:
                    proto.ack(ev[1], len(ev[2]))
            elif kind == EV_END:
                if st is not None:
                    st.end_remote()
            elif kind == EV_RESET:
                if st is not None:
                    st.on_reset()
                self._window.set()
            elif kind == EV_WINDOW:
                self._window.set()
            # EV_GOAWAY: the client opens no more streams; those open carry on
        if proto.error is not None:
            self.dead = True
            self.flush_now()
            self.writer.close()
            for st in list(self.streams.values()):
                st.on_reset()
            self._window.set()
            return True
        self.flush()
        return True

    def _request(self, stream_id: int, req: H2Request, ended: bool) -> None:
        late = self.last_stream is not None and stream_id > self.last_stream
        if late or len(self.streams) >= self.proto.max_concurrent:
            # opened after our GOAWAY: the client retries it elsewhere. Or beyond the
            # streams whose exchanges still run, counting those the client reset (they go
            # on until their dyno answers): a client opening and resetting streams must not
            # start more exchanges than it may have streams open
            self.proto.reset_stream(stream_id, REFUSED_STREAM)
            self.flush()
            return
        st = H2Stream(self, stream_id, req, ended)
        self.streams[stream_id] = st
        if ended and not self.dead and h2_fast.try_fast(self, st):
            return
        self.spawn(self._run(st))

    def spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.maybe_drained()

    def stream_done(self, st: H2Stream) -> None:
        """The exchange on `st` is over: forget it, give back the window of unread DATA."""
        sid = st.stream_id
        if self.streams.get(sid) is st:
            del self.streams[sid]
        proto = self.proto
        if st._chunks:
            proto.ack(0, st.unread_bytes())
        if sid in proto.streams:
            # complete response, request still coming: stop it without error (RFC 9113
            # 8.1); an exchange that ended without a complete response cancels the stream
            proto.reset_stream(sid, NO_ERROR if st.closed else CANCEL)
        self.flush()

    async def _run(self, stream: H2Stream) -> None:
        req = stream.req
        try:
            if req.method == "CONNECT":
                await send_simple(
                    stream, 405, plain_page(405, "CONNECT is not supported"), "text/plain"
                )
            elif req.bad is not None:
                await send_simple(stream, 400, plain_page(400, "bad request"), "text/plain")
            else:
                await Exchange(self.router, stream, req.head(stream.bodiless)).run()
        except (ClientGone, ClientIdle, ConnectionError, OSError):
            stream.abort()
        finally:
            self.stream_done(stream)

    @property
    def via(self) -> str:
        """The router's Via value towards this HTTP/2 client."""
        return self.router.table.via_h2

    async def resume(self, stream: H2Stream, ex: Exchange) -> None:
        """A fast-lane exchange handed over to the coroutine path."""
        try:
            await ex.run()
        except (ClientGone, ClientIdle, ConnectionError, OSError):
            stream.abort()
        finally:
            self.stream_done(stream)
