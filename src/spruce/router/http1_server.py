"""HTTP/1.1 client connections: read heads, frame bodies, write responses, tunnel upgrades."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .client_side import PLAIN, ClientSide, TLSInfo
from .early import EarlyTransport
from .errors import Code, plain_page, reason
from .exchange import (
    BadRequestBody,
    ClientGone,
    ClientIdle,
    Exchange,
    send_simple,
)
from .h1_fast import H1FastLane
from .logline import TLSVersion, line_tail
from .proto.h1 import H1State, RequestState
from .proto.http1 import (
    MAX_LINE,
    ProtocolError,
    RequestHead,
    check_partial_head,
    find_head_end,
    parse_request_head,
    partial_request,
)
from .proxy import BackendConn
from .state import ConnectionApps, Router
from .stream import Stream
from .table import normalise_host

WRITE_BUFFER = 1 << 20  # bounded buffering towards slow readers
MAX_HEAD = MAX_LINE * 64
# (X-Forwarded-Proto/Port prefix, log line tail) by (tls, tls version, port): a few entries
_PARTS: dict[tuple[bool, str, int], tuple[bytes, str]] = {}


class H1Client(ClientSide):
    """One HTTP/1.1 client connection: its IO (reader, writer, the buffer of what was read),
    its framing state (`h1`, sans-IO) and its fast lane (`lane`)."""

    _pending = b""  # a response head held back to go out with the first body bytes
    _closed = False  # close() ran
    # parked: no reading task (see park); `_spawn` starts tasks the server tracks
    _parked = False
    _spawn: Callable[[Any], asyncio.Task[Any]] | None = None
    _on_done: Callable[[H1Client], None] | None = None
    last_active = 0.0
    # accepted by the router itself and not yet watched by the loop (see early.py)
    early: EarlyTransport | None = None

    def __init__(
        self,
        router: Router,
        reader: Stream,
        writer: Stream,
        tls_info: TLSInfo,
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
        self.sni_host = normalise_host(self.sni) if self.tls and self.sni else None
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
        self.forwarded, self.line_tail = parts
        self.conn_apps: ConnectionApps = ConnectionApps(router, moves=True)
        self.h1 = H1State()
        self.lane = H1FastLane(self)
        self._take = self.lane.take
        try:
            writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        except Exception:
            pass

    # the framing state, as ClientSide tells it -----------------------------
    @property
    def keep_alive(self) -> bool:
        return self.h1.keep_alive

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self.h1.keep_alive = value

    @property
    def response_started(self) -> bool:
        return self.h1.response_started

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
        h1 = self.h1
        if h1.body_done:
            return b""
        if h1.expect_continue:
            await self.send_continue()
        idle = self.router.timers.idle
        while True:
            try:
                data = h1.body_from(self.buf)
            except ProtocolError:
                h1.keep_alive = False
                raise BadRequestBody() from None
            if data is not None:
                return data
            if not await self._fill(idle):
                h1.keep_alive = False
                raise ClientGone()

    # writing -------------------------------------------------------------
    async def send_continue(self) -> None:
        interim = self.h1.interim_continue()
        if interim:
            self.writer.write(interim)

    async def send_head(
        self,
        status: int,
        reason_: str,
        headers: list[tuple[str, str]],
        length: int | None,
        no_body: bool = False,
    ) -> None:
        head = self.h1.response_head(
            status, reason_, headers, length, no_body, last=self.router.stopping
        )
        if status == 101:
            self.writer.write(head)
        else:
            # held back to go out with the first body bytes: one write, one syscall
            self._pending = head

    async def send_data(self, data: bytes) -> None:
        if not data:
            return
        w = self.writer
        out = self.h1.body_piece(data)
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
        self.h1.response_end()  # (Content-Length framing: nothing more goes on the wire)
        w = self.writer
        w.write(out)
        if w.must_wait():
            try:
                await w.drain()
            except (ConnectionError, OSError):
                raise ClientGone() from None

    async def end(self) -> None:
        w = self.writer
        out = self._pending + self.h1.response_end()
        self._pending = b""
        if out:
            w.write(out)
        try:
            await w.drain()
        except (ConnectionError, OSError):
            raise ClientGone() from None

    def abort(self) -> None:
        self.h1.keep_alive = False
        if self._pending:  # a head not yet sent still tells the client what happened
            self.writer.write(self._pending)
            self._pending = b""
        self.writer.transport.abort()

    async def tunnel(self, backend: BackendConn, leftover: bytes, idle: float) -> None:
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
        reader.intercept = self._take
        reader.on_wakeup = self._unpark

    def _unpark(self) -> None:
        """Bytes or the end reached a parked connection with no exchange out."""
        if self.lane.busy:
            return  # the exchange's end releases the reader again
        reader = self.reader
        reader.on_wakeup = None
        reader.intercept = None
        self._parked = False
        if reader._buf:
            assert self._spawn is not None
            self.watch()
            self._spawn(self._serve())  # the ordinary loop reads what is buffered
        else:  # the client closed (or was closed): the end, without a task
            self._finish()

    def start_task(self, coro: Any) -> asyncio.Task[Any]:
        """Run a hand-over or fault on a task the server tracks (parked connections have no
        task the server could wait for at shutdown)."""
        self.watch()
        if self._spawn is not None:
            return self._spawn(coro)
        return self._loop.create_task(coro)

    def watch(self) -> None:
        """From now on the loop watches the socket (a connection accepted early, see early.py,
        that needs more than its first request served from the fast lane)."""
        early = self.early
        if early is not None:
            self.early = None
            early.adopt()

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
            if self.lane.task is not None:
                self.lane.task.cancel()

    def _finish(self) -> None:
        router = self.router
        router.open_connections -= 1
        self.conn_apps.release()
        self.close()
        self.lane.cancel()  # cancelled (router stopping) while the lane had an exchange out
        if self._on_done is not None:
            self._on_done(self)
            self._on_done = None

    def close(self) -> None:
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
            and not self.lane.busy
        )

    def shutdown(self) -> None:
        """The router is stopping: an idle connection is closed now (what was written still
        reaches a slow reader, within the grace period); a fast-lane exchange in flight goes on
        on the ordinary path (which answers H24 if the grace period ends first). Requests in
        flight finish and their connection closes after the response."""
        if self.lane.out is not None:
            self.lane.on_response(None)
        elif self.idle():
            self.close()  # as at any connection's end (TLS: no close_notify wait)

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
                self.reader.intercept = None if self.buf else self._take
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
            if not data or self.h1.request is RequestState.MUST_CLOSE:
                # (a fast-lane exchange ended the connection while this read waited: nothing
                # after its request is read as another one)
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
        ex.log_code(Code.H28, 499)
        return True

    async def _refuse(self, status: int, message: str) -> None:
        self.h1.keep_alive = False
        try:
            await send_simple(self, status, plain_page(status, message), "text/plain", close=True)
        except (ClientGone, ConnectionError, OSError):
            pass

    async def _handle(self, req: RequestHead) -> bool:
        if req.method == "CONNECT":
            await self._refuse(405, "CONNECT is not supported")
            return False
        h1 = self.h1
        h1.start(req)
        await Exchange(self.router, self, req).run()
        # kept only when the request was read whole and the response ended, keep-alive
        if h1.end_cycle() and not self.writer.transport.is_closing():
            return True
        h1.close()
        return False


def abort_flushing(flushing: set[Any], transport: Any) -> None:
    """The idle window of a closing connection's flush is over (or a stopping router's grace
    period): cut what is left. (A transport that flushed everything is closed already, and
    asyncio's abort() then fails.)"""
    flushing.discard(transport)
    if transport.get_write_buffer_size():
        transport.abort()


_TLS_VERSIONS = {"TLSv1.3": TLSVersion.TLS13, "TLSv1.2": TLSVersion.TLS12}


def tls_info(writer: Stream) -> TLSInfo:
    sslobj = writer.get_extra_info("ssl_object")
    if sslobj is None:
        return PLAIN
    version = _TLS_VERSIONS.get(sslobj.version() or "", TLSVersion.UNKNOWN)
    return TLSInfo(True, version, getattr(sslobj, "spruce_sni", None) or sslobj.server_hostname)


__all__ = ["H1Client", "abort_flushing", "reason", "tls_info"]
