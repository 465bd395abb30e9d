"""HTTP/1.1 client connections: read heads, frame bodies, write responses, tunnel upgrades."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .errors import plain_page, reason
from .exchange import (
    BadRequestBody,
    ClientGone,
    ClientIdle,
    ClientSide,
    Exchange,
    HError,
    send_simple,
)
from .logline import _quote
from .proto.fast import (
    FastRequest,
    FastResponse,
    client_response,
    dyno_head,
    fast_request,
    fast_response,
    forwarded_for,
)
from .proto.headers import new_request_id
from .proto.http1 import (
    MAX_LINE,
    ChunkedDecoder,
    ProtocolError,
    RequestHead,
    check_partial_head,
    encode_chunk,
    find_head_end,
    parse_request_head,
    serialize_response_head,
)
from .proxy import BackendConn, choose
from .state import ConnectionApps, Router
from .stream import Stream
from .table import App, Dyno, normalise_host

WRITE_BUFFER = 1 << 20  # bounded buffering towards slow readers
MAX_HEAD = MAX_LINE * 64


class H1Client(ClientSide):
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
        self._req: RequestHead | None = None
        self._remaining: int | None = 0
        self._decoder: ChunkedDecoder | None = None
        self._body_done = True
        self._chunked_out = False
        self._closed_out = False
        self._continue_sent = False
        self._pending = b""
        self._fast_state: tuple[Any, ...] | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self._loop = reader._loop
        # per-connection parts of the fast lane's dyno head and log line
        self._sni = normalise_host(self.sni) if self.tls and self.sni else None
        self._forwarded = (
            f"X-Forwarded-Proto: {'https' if self.tls else 'http'}\r\n"
            f"X-Forwarded-Port: {local_port}\r\nX-Request-Start: "
        ).encode("latin-1")
        self._line_tail = (
            f" protocol={self.protocol} tls={'true' if self.tls else 'false'}"
            f" tls_version={self.tls_version}"
        )
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
        router = self.router
        router.open_connections += 1
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
                _done(router, state[2])
            if self._resume_task is not None:
                self._resume_task.cancel()

    def _close(self) -> None:
        """End of the connection. A response already written still reaches a slow reader (one
        ending with Connection: close), within the idle window; anything else is cut."""
        transport = self.writer.transport
        if transport.is_closing() or not transport.get_write_buffer_size():
            transport.abort()
            return
        transport.close()
        self._loop.call_later(self.router.timers.idle, transport.abort)

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
        """The router is stopping: an idle connection is closed now; a fast-lane exchange in
        flight goes on on the ordinary path (which answers H24 if the grace period ends first).
        Requests in flight finish and their connection closes after the response."""
        if self._fast_state is not None:
            self._fast_response(None)
        elif self.idle():
            self.writer.transport.abort()  # as at any connection's end (TLS: no close_notify wait)

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
            if not data:
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
        lines = bytes(self.buf).split(b"\r\n")[:-1]  # complete lines only
        if len(lines) < 2:
            return False
        hosts = [ln.split(b":", 1)[1] for ln in lines[1:] if ln[:5].lower() == b"host:"]
        parts = lines[0].split(b" ")
        if len(hosts) != 1 or len(parts) != 3:
            return False
        try:
            req = RequestHead(
                parts[0].decode("ascii"),
                parts[1].decode("latin-1"),
                "1.1",
                [("Host", hosts[0].strip(b" \t").decode("latin-1"))],
                host=hosts[0].strip(b" \t").decode("latin-1"),
            )
        except UnicodeDecodeError:
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

    # the fast lane ---------------------------------------------------------
    # A complete bodiless HTTP/1.1 request for a plain app (no features, a pooled
    # dyno connection at hand) is forwarded from the client's data callback, and a response
    # that arrives whole (head and Content-Length body in one read) is relayed from the
    # dyno's data callback: no task wake-ups, no coroutines, no Exchange, and heads are
    # rewritten as bytes (proto/fast.py). Anything else (partial or interim responses, EOF,
    # a response slower than the router's sweep tick) hands the exchange over to the coroutine path
    # (`Exchange.run(resume=...)`), which knows every H code.

    def _fast(self, data: bytes) -> bool:
        writer = self.writer
        if writer._write_paused or writer._lost:
            return False
        fr = fast_request(data)
        if fr is None:
            return False  # the ordinary path decides (and words any refusal)
        router = self.router
        app, host = router.table.lookup_raw(fr.host)
        if (
            app is None
            or not app.plain
            or router.inflight.get(app.id, 0) >= 200 * app.web_quantity
            or (self._sni is not None and self._sni != host)
            or router.stopping
            or self.conn_apps.refuses(app)
        ):
            return False
        up = app.up
        quarantine = router.quarantine
        if len(up) == 1:
            dyno = up[0]
            if quarantine._until and quarantine.active(dyno.key):
                return False
        else:
            candidates = [d for d in up if not quarantine.active(d.key)]
            if not candidates:
                return False
            dyno = choose(candidates)
        conn = router.pool.take(dyno.key)
        if conn is None:
            return False
        if conn.reader._buf:  # bytes the dyno sent unasked on an idle connection: unusable
            conn.close()
            return False
        # committed: from here the exchange is this request's, whatever happens
        # (dict.get, not Counter's __missing__: this runs per request)
        app_id = app.id
        activity = router.activity
        activity[app_id] = activity.get(app_id, 0) + 1
        inflight = router.inflight
        inflight[app_id] = inflight.get(app_id, 0) + 1
        router.fast_lane += 1
        self.conn_apps.admit(app)  # (H22: `refuses` said it may count)
        received = time.time()
        rid = fr.request_id.decode("ascii") if fr.request_id else new_request_id()
        try:
            head = dyno_head(
                fr,
                forwarded_for(fr.xff, self.client_ip),
                self._forwarded,
                int(received * 1000),
                rid,
                router.table.via_h1,
            )
            conn.writer.transport.write(head)
            self.reader.hold = True
            sent_at = time.monotonic()
            # (a tuple: the common exchange allocates no object of its own)
            self._fast_state = (data, fr, app, host, dyno, conn, head, rid, received, sent_at)
            conn.reader.on_data = self._fast_response
            router.fast_wait(self, sent_at)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self._fast_state = None
            router.fast_waiting.pop(self, None)
            conn.reader.on_data = None
            fx = _FastExchange(data, fr, app, host, dyno, conn, b"", rid, received, 0.0)
            self._resume_task = self._loop.create_task(self._fault(fx, e))
        return True

    def _fast_response(self, data: bytes | None) -> None:
        """The dyno's next bytes (None: EOF, or the router's sweep handing a slow one over)."""
        state = self._fast_state
        if state is None:
            return
        self._fast_state = None
        del self.router.fast_waiting[self]
        conn = state[5]
        conn.reader.on_data = None
        fres = fast_response(data) if data and state[1].method != "HEAD" else None
        if fres is None:
            if data:
                conn.reader.unread(data)
            self._resume_task = self._loop.create_task(self._resume(_FastExchange(*state)))
            return
        assert data is not None
        try:
            self._fast_relay(state, fres, data)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self._resume_task = self._loop.create_task(self._fault(_FastExchange(*state), e))

    def _fast_relay(self, state: tuple[Any, ...], fres: FastResponse, data: bytes) -> None:
        _, fr, app, host, dyno, conn, _, rid, _, sent_at = state
        router = self.router
        if self.reader._lost:  # the client went away meanwhile: H27, as on the slow path
            _done(router, app)
            conn.close()
            ex = self._exchange(_FastExchange(*state))
            ex.line.status = fres.status
            ex._log_code("H27", 499)
            self.abort()
            self.reader.release(router.timers.idle)
            return
        keep_alive = fr.keep_alive
        size = len(data) - fres.body_start
        self.writer.transport.write(client_response(fres, data, router.table.via_h1, keep_alive))
        service_ms = int((time.monotonic() - sent_at) * 1000)
        if fres.keep_alive:
            router.pool.give(conn)
        else:
            conn.close()
        fwd = ", ".join([*fr.xff, self.client_ip]) if fr.xff else self.client_ip
        router.emit(
            app.id,
            f"at=info method={fr.method} path={_quote(fr.target)} host={host} "
            f"request_id={rid} fwd={_quote(fwd)} dyno={dyno.name} connect=0ms "
            f"service={service_ms}ms status={fres.status} bytes={size}{self._line_tail}",
        )
        _done(router, app)
        if not keep_alive:  # Connection: close: flush, then the reader sees the end
            self.keep_alive = False
            self.writer.close()
        self.reader.release(router.timers.idle)

    def _exchange(self, fx: _FastExchange) -> Exchange:
        """The ordinary path's view of a fast-lane exchange (hand-over, faults)."""
        req = parse_request_head(fx.data)
        self._req = req
        self.http10 = False
        self.keep_alive = req.keep_alive
        self.response_started = False
        self._continue_sent = False
        self._decoder = None
        self._remaining = 0
        self._body_done = True
        ex = Exchange(self.router, self, req)
        ex.app = fx.app
        ex.received = fx.received
        ex.request_id = ex.line.request_id = fx.request_id
        ex.line.dyno = fx.dyno.name
        ex.line.connect_ms = 0
        return ex

    async def _fault(self, fx: _FastExchange, e: Exception) -> None:
        fx.conn.close()
        try:
            ex = self._exchange(fx)
            await ex._fail(HError("H99", cause=type(e).__name__))
        except Exception:
            self.keep_alive = False  # nothing sensible left to answer with
        finally:
            _done(self.router, fx.app)
            self._resume_task = None
            if not (self.keep_alive and not self.writer.transport.is_closing()):
                self._close()  # what was written still reaches a slow reader
            self.reader.release(self.router.timers.idle)

    async def _resume(self, fx: _FastExchange) -> None:
        try:
            try:
                ex = self._exchange(fx)
            except Exception as e:
                fx.conn.close()
                await self._fault(fx, e)
                return
            await ex.run(resume=(fx.conn, fx.dyno, fx.head, fx.sent_at))
        finally:
            self._resume_task = None
            if not (self.keep_alive and not self.writer.transport.is_closing()):
                self.keep_alive = False
                self._close()  # what was written still reaches a slow reader
            self.reader.release(self.router.timers.idle)


class _FastExchange:
    """One fast-lane exchange in flight (what a hand-over needs to rebuild an Exchange)."""

    __slots__ = (
        "data",
        "req",
        "app",
        "host",
        "dyno",
        "conn",
        "head",
        "request_id",
        "received",
        "sent_at",
    )

    def __init__(
        self,
        data: bytes,
        req: FastRequest,
        app: App,
        host: str,
        dyno: Dyno,
        conn: BackendConn,
        head: bytes,
        request_id: str,
        received: float,
        sent_at: float,
    ) -> None:
        self.data = data
        self.req = req
        self.app = app
        self.host = host
        self.dyno = dyno
        self.conn = conn
        self.head = head
        self.request_id = request_id
        self.received = received
        self.sent_at = sent_at


def _done(router: Router, app: App) -> None:
    """The fast lane's exchange is no longer in flight."""
    inflight = router.inflight
    n = inflight.get(app.id, 0) - 1
    if n > 0:
        inflight[app.id] = n
    else:
        inflight.pop(app.id, None)


def tls_info(writer: Stream) -> tuple[bool, str, str | None]:
    sslobj = writer.get_extra_info("ssl_object")
    if sslobj is None:
        return (False, "unknown", None)
    version = {"TLSv1.3": "tls1.3", "TLSv1.2": "tls1.2"}.get(sslobj.version() or "", "unknown")
    return (True, version, getattr(sslobj, "spruce_sni", None) or sslobj.server_hostname)


__all__ = ["H1Client", "reason", "tls_info"]
