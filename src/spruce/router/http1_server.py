"""HTTP/1.1 client connections: read heads, frame bodies, write responses, tunnel upgrades."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .errors import plain_page, reason
from .exchange import (
    BadRequestBody,
    ClientGone,
    ClientIdle,
    Exchange,
    send_simple,
)
from .h1_fast import H1FastLane
from .logline import line_tail
from .proto.http1 import (
    MAX_LINE,
    ChunkedDecoder,
    ProtocolError,
    RequestHead,
    check_partial_head,
    encode_chunk,
    find_head_end,
    parse_request_head,
    partial_request,
    serialize_response_head,
)
from .proxy import BackendConn
from .state import ConnectionApps, Router
from .stream import Stream
from .table import normalise_host

WRITE_BUFFER = 1 << 20  # bounded buffering towards slow readers
MAX_HEAD = MAX_LINE * 64
# (X-Forwarded-Proto/Port prefix, log line tail) by (tls, tls version, port): a few entries
_PARTS: dict[tuple[bool, str, int], tuple[bytes, str]] = {}


class H1Client(H1FastLane):
    # per-request and per-connection state; class-level defaults keep a new connection cheap
    _req: RequestHead | None = None
    _remaining: int | None = 0
    _decoder: ChunkedDecoder | None = None
    _body_done = True
    _chunked_out = False
    _closed_out = False
    _continue_sent = False
    _pending = b""
    _closed = False  # _close() ran
    _fast_state: tuple[Any, ...] | None = None
    _resume_task: asyncio.Task[Any] | None = None
    # parked: no reading task (see park); `_spawn` starts tasks the server tracks
    _parked = False
    _spawn: Callable[[Any], asyncio.Task[Any]] | None = None
    _on_done: Callable[[H1Client], None] | None = None
    last_active = 0.0

    def __init__(
        self,
        router: Router,
        reader: Stream,
        writer: Stream,
        tls_info: tuple[bool, str, str | None],
        local_port: int | None = None,
    ) -> None:
        self.router = router
        self.reader = reader
        self.writer = writer
        self.tls, self.tls_version, self.sni = tls_info
        peer = writer.get_extra_info("peername") or ("", 0)
        self.client_ip = str(peer[0])
        if local_port is None:
            local_port = int((writer.get_extra_info("sockname") or ("", 0))[1])
        self.local_port = local_port
        self.buf = bytearray()
        self._loop = reader._loop
        self._sni = normalise_host(self.sni) if self.tls and self.sni else None
        # per-connection parts of the fast lane's dyno head and log line
        key = (self.tls, self.tls_version, local_port)
        parts = _PARTS.get(key)
        if parts is None:
            parts = _PARTS[key] = (
                (
                    f"X-Forwarded-Proto: {'https' if self.tls else 'http'}\r\n"
                    f"X-Forwarded-Port: {local_port}\r\nX-Request-Start: "
                ).encode("latin-1"),
                line_tail(self.protocol, self.tls, self.tls_version),
            )
        self._forwarded, self._line_tail = parts
        self.conn_apps: ConnectionApps = ConnectionApps(router, moves=True)
        try:
            writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        except Exception:
            pass

    # reading -------------------------------------------------------------
    async def _fill(self, timeout: float) -> bool:
        try:
            data = await self.reader.read(65536, timeout)
        except TimeoutError:
            raise ClientIdle() from None
        except (ConnectionError, OSError):
            raise ClientGone() from None
        if not data:
            return False
        self.buf += data
        return True

    async def read_body(self) -> bytes:
        if self._body_done:
            return b""
        if self._req is not None and self._req.expect_continue and not self._continue_sent:
            await self.send_continue()
        idle = self.router.timers.idle
        while True:
            if self._decoder is not None:
                if self.buf:
                    data = bytes(self.buf)
                    self.buf.clear()
                    try:
                        payload, leftover = self._decoder.feed(data)
                    except ProtocolError:
                        self.keep_alive = False
                        raise BadRequestBody() from None
                    if self._decoder.done:
                        self._body_done = True
                        self.buf += leftover
                    if payload or self._body_done:
                        return payload
            else:
                assert self._remaining is not None
                if self.buf:
                    n = min(self._remaining, len(self.buf), 65536)
                    data = bytes(self.buf[:n])
                    del self.buf[:n]
                    self._remaining -= n
                    if not self._remaining:
                        self._body_done = True
                    return data
            if not await self._fill(idle):
                self.keep_alive = False
                raise ClientGone()

    # writing -------------------------------------------------------------
    async def send_continue(self) -> None:
        if not self._continue_sent:
            self._continue_sent = True
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def send_head(
        self,
        status: int,
        reason_: str,
        headers: list[tuple[str, str]],
        length: int | None,
        no_body: bool = False,
    ) -> None:
        head = self._compose_head(status, reason_, headers, length, no_body)
        if status == 101:
            self.writer.write(head)
        else:
            # held back to go out with the first body bytes: one write, one syscall
            self._pending = head

    def _compose_head(
        self,
        status: int,
        reason_: str,
        headers: list[tuple[str, str]],
        length: int | None,
        no_body: bool = False,
    ) -> bytes:
        self.response_started = True
        if self.router.stopping:
            self.keep_alive = False  # the router is shutting down: this is the last response
        if not self._body_done and status != 101:
            # answering before the body was read: the connection cannot be reused
            self.keep_alive = False
        hs = list(headers)
        self._chunked_out = False
        self._closed_out = False
        if status == 101:
            pass
        elif no_body:
            pass
        elif length is not None:
            hs.append(("Content-Length", str(length)))
        elif self.http10:
            self._closed_out = True
            self.keep_alive = False
        else:
            self._chunked_out = True
            hs.append(("Transfer-Encoding", "chunked"))
        if status != 101:
            if not self.keep_alive:
                hs.append(("Connection", "close"))
            elif self.http10:
                hs.append(("Connection", "keep-alive"))
        return serialize_response_head(status, reason_, hs)

    async def send_data(self, data: bytes) -> None:
        if not data:
            return
        w = self.writer
        out = encode_chunk(data) if self._chunked_out else data
        if self._pending:
            out = self._pending + out
            self._pending = b""
        w.write(out)
        try:
            await w.drain()
        except (ConnectionError, OSError):
            raise ClientGone() from None

    async def send_whole(
        self, status: int, reason_: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        await self.send_head(status, reason_, headers, len(body))
        out = self._pending + body if body else self._pending
        self._pending = b""
        w = self.writer
        w.write(out)
        if w.must_wait():
            try:
                await w.drain()
            except (ConnectionError, OSError):
                raise ClientGone() from None

    async def end(self) -> None:
        w = self.writer
        out = self._pending
        self._pending = b""
        if self._chunked_out:
            out += b"0\r\n\r\n"
        if out:
            w.write(out)
        try:
            await w.drain()
        except (ConnectionError, OSError):
            raise ClientGone() from None

    def abort(self) -> None:
        self.keep_alive = False
        if self._pending:  # a head not yet sent still tells the client what happened
            self.writer.write(self._pending)
            self._pending = b""
        self.writer.transport.abort()

    async def tunnel(self, backend: BackendConn, leftover: bytes, idle: float) -> None:
        self.keep_alive = False
        try:
            await self.writer.drain()
            if leftover:
                self.writer.write(leftover)
            if self.buf:
                backend.writer.write(bytes(self.buf))
                self.buf.clear()
        except (ConnectionError, OSError):
            return
        last = [time.monotonic()]

        async def pipe(src: Stream, dst: Stream) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    last[0] = time.monotonic()
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass

        tasks = [
            asyncio.ensure_future(pipe(self.reader, backend.writer)),
            asyncio.ensure_future(pipe(backend.reader, self.writer)),
        ]
        try:
            while True:
                done, _ = await asyncio.wait(
                    tasks,
                    timeout=max(0.01, last[0] + idle - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done or time.monotonic() - last[0] >= idle:
                    break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.writer.transport.abort()

    # the connection loop ---------------------------------------------------
    async def serve(self) -> None:
        self.router.open_connections += 1
        await self._serve()

    def park(
        self, spawn: Callable[[Any], asyncio.Task[Any]], on_done: Callable[[H1Client], None]
    ) -> None:
        """Serve without a task for as long as every request takes the fast lane (a new plain
        connection whose requests all do never gets one): the reader's callbacks drive it,
        `spawn` starts the ordinary loop once bytes need it, the end is handled in the
        callback too, and `on_done` is told. The server's sweep closes it when idle."""
        self.router.open_connections += 1
        self._parked = True
        self._spawn = spawn
        self._on_done = on_done
        self.last_active = time.monotonic()
        reader = self.reader
        reader.intercept = self._fast
        reader.on_wakeup = self._unpark

    def _unpark(self) -> None:
        """Bytes or the end reached a parked connection with no exchange out."""
        if self._fast_state is not None or self._resume_task is not None:
            return  # the exchange's end releases the reader again
        reader = self.reader
        reader.on_wakeup = None
        reader.intercept = None
        self._parked = False
        if reader._buf:
            assert self._spawn is not None
            self._spawn(self._serve())  # the ordinary loop reads what is buffered
        else:  # the client closed (or was closed): the end, without a task
            self._finish()

    def start_task(self, coro: Any) -> asyncio.Task[Any]:
        """Run a hand-over or fault on a task the server tracks (parked connections have no
        task the server could wait for at shutdown)."""
        if self._spawn is not None:
            return self._spawn(coro)
        return self._loop.create_task(coro)

    async def _serve(self) -> None:
        try:
            while True:
                req = await self._read_head()
                if req is None:
                    return
                if not await self._handle(req):
                    return
        except (ClientGone, ClientIdle, ConnectionError, OSError):
            pass
        finally:
            self._finish()
            if self._resume_task is not None:
                self._resume_task.cancel()

    def _finish(self) -> None:
        router = self.router
        router.open_connections -= 1
        self.conn_apps.release()
        self._close()
        # cancelled (router stopping) while the fast lane had an exchange out
        state = self._fast_state
        if state is not None:
            self._fast_state = None
            router.fast_waiting.pop(self, None)
            conn = state[5]
            conn.reader.on_data = None
            conn.close()
            router.fast_end(state[2])
        if self._on_done is not None:
            self._on_done(self)
            self._on_done = None

    def _close(self) -> None:
        """End of the connection. A response already written still reaches a slow reader (one
        ending with Connection: close), within the idle window; anything else is cut. Once:
        the connection's end (`_finish`) comes after an exchange's close, and must not cut
        what that close is still flushing."""
        if self._closed:
            return
        self._closed = True
        transport = self.writer.transport
        if transport.is_closing() or not transport.get_write_buffer_size():
            transport.abort()
            return
        transport.close()
        flushing = self.router.flushing
        flushing.add(transport)
        self._loop.call_later(self.router.timers.idle, abort_flushing, flushing, transport)

    def idle(self) -> bool:
        """Between requests with nothing of the next one received."""
        reader = self.reader
        return (
            reader.intercept is not None  # in _read_head's read with nothing buffered
            and not reader.hold
            and not reader._buf
            and self._fast_state is None
            and self._resume_task is None
        )

    def shutdown(self) -> None:
        """The router is stopping: an idle connection is closed now (what was written still
        reaches a slow reader, within the grace period); a fast-lane exchange in flight goes on
        on the ordinary path (which answers H24 if the grace period ends first). Requests in
        flight finish and their connection closes after the response."""
        if self._fast_state is not None:
            self._fast_response(None)
        elif self.idle():
            self._close()  # as at any connection's end (TLS: no close_notify wait)

    async def _read_head(self) -> RequestHead | None:
        idle = self.router.timers.idle
        while True:
            end = find_head_end(self.buf)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end]
                break
            try:
                # tolerate empty lines between requests (RFC 9112 2.2)
                while self.buf.startswith(b"\r\n"):
                    del self.buf[:2]
                check_partial_head(self.buf)
                if len(self.buf) > MAX_HEAD:
                    raise ProtocolError("request head too large", 431)
            except ProtocolError as e:
                await self._refuse(e.status, str(e))
                return None
            try:
                # while idle between requests, simple ones are served in the callback
                self.reader.intercept = None if self.buf else self._fast
                try:
                    data = await self.reader.read(65536, idle)  # _fill, inlined
                finally:
                    self.reader.intercept = None
            except TimeoutError:
                if self.buf and not self._idle_mid_head():
                    await self._refuse(408, "request timeout")
                return None
            except (ConnectionError, OSError):
                raise ClientGone() from None
            if not data or not self.keep_alive:
                # (not keep_alive: a fast-lane exchange ended the connection while this read
                # waited; nothing after its request is read as another one)
                return None
            self.buf += data
        try:
            req = parse_request_head(head)
        except ProtocolError as e:
            await self._refuse(e.status, str(e))
            return None
        return req

    def _idle_mid_head(self) -> bool:
        """H28 for a head left incomplete whose request line and Host already name an app:
        logged there (status 499) and the connection is closed with nothing, as for a body
        left incomplete. False when no app can be told (the caller answers 408)."""
        req = partial_request(self.buf)
        if req is None:
            return False
        ex = Exchange(self.router, self, req)
        ex.app = self.router.table.lookup(ex.host)
        if ex.app is None:
            return False
        ex._log_code("H28", 499)
        return True

    async def _refuse(self, status: int, message: str) -> None:
        self.keep_alive = False
        try:
            await send_simple(self, status, plain_page(status, message), "text/plain", close=True)
        except (ClientGone, ConnectionError, OSError):
            pass

    async def _handle(self, req: RequestHead) -> bool:
        if req.method == "CONNECT":
            await self._refuse(405, "CONNECT is not supported")
            return False
        self._req = req
        self.http10 = req.version == "1.0"
        self.keep_alive = req.keep_alive
        self.response_started = False
        self._continue_sent = False
        if req.chunked:
            self._decoder = ChunkedDecoder()
            self._remaining = None
            self._body_done = False
        else:
            self._decoder = None
            self._remaining = req.body_length or 0
            self._body_done = not self._remaining
        await Exchange(self.router, self, req).run()
        if not self._body_done:
            # the body was not consumed (early answer): the stream position is lost
            self.keep_alive = False
        return self.keep_alive and not self.writer.transport.is_closing()


def abort_flushing(flushing: set[Any], transport: Any) -> None:
    """The idle window of a closing connection's flush is over (or a stopping router's grace
    period): cut what is left. (A transport that flushed everything is closed already, and
    asyncio's abort() then fails.)"""
    flushing.discard(transport)
    if transport.get_write_buffer_size():
        transport.abort()


def tls_info(writer: Stream) -> tuple[bool, str, str | None]:
    sslobj = writer.get_extra_info("ssl_object")
    if sslobj is None:
        return (False, "unknown", None)
    version = {"TLSv1.3": "tls1.3", "TLSv1.2": "tls1.2"}.get(sslobj.version() or "", "unknown")
    return (True, version, getattr(sslobj, "spruce_sni", None) or sslobj.server_hostname)


__all__ = ["H1Client", "abort_flushing", "reason", "tls_info"]
