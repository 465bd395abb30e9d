"""HTTP/2 client connections (TLS + ALPN "h2") with the h2 library; dynos get HTTP/1.1."""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from .errors import plain_page
from .exchange import ClientGone, ClientIdle, ClientSide, Exchange, send_simple
from .proto.headers import HOP_BY_HOP
from .proto.http1 import RequestHead
from .state import ConnectionApps, Router
from .stream import Stream

_DROP_OUT = HOP_BY_HOP | {"host"}


class H2Stream(ClientSide):
    protocol = "http2.0"
    via = "2.0"

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.tls, self.tls_version, self.sni = conn.info
        self.client_ip = conn.client_ip
        self.local_port = conn.local_port
        self.conn_apps = conn.conn_apps
        self.body: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ended = False
        self.reset = False
        self.closed = False

    async def read_body(self) -> bytes:
        if self.ended and self.body.empty():
            return b""
        try:
            async with asyncio.timeout(self.conn.router.timers.idle):
                data = await self.body.get()
        except TimeoutError:
            raise ClientIdle() from None
        if data is None:
            if self.reset:
                raise ClientGone()
            self.ended = True
            return b""
        self.conn.ack(self.stream_id, len(data))
        return data

    async def send_continue(self) -> None:
        self.conn.h2.send_headers(self.stream_id, [(b":status", b"100")])
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
        self.response_started = True
        hs: list[tuple[bytes, bytes]] = [(b":status", str(status).encode())]
        for k, v in headers:
            lk = k.lower()
            if lk in _DROP_OUT:
                continue
            hs.append((lk.encode("latin-1"), v.encode("latin-1")))
        if length is not None and not no_body:
            hs.append((b"content-length", str(length).encode()))
        try:
            self.conn.h2.send_headers(self.stream_id, hs, end_stream=no_body)
        except h2.exceptions.H2Error:
            raise ClientGone() from None
        self.closed = no_body
        self.conn.flush()

    async def send_whole(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        conn = self.conn
        if not self.reset and not conn.dead and body:
            try:
                fits = len(body) <= min(
                    conn.h2.local_flow_control_window(self.stream_id),
                    conn.h2.max_outbound_frame_size,
                )
            except h2.exceptions.H2Error:
                raise ClientGone() from None
            if fits:  # HEADERS and one DATA frame ending the stream, one flush
                await self.send_head(status, reason, headers, len(body))
                try:
                    conn.h2.send_data(self.stream_id, body, end_stream=True)
                except h2.exceptions.H2Error:
                    raise ClientGone() from None
                self.closed = True
                conn.flush()
                return
        await super().send_whole(status, reason, headers, body)

    async def send_data(self, data: bytes) -> None:
        conn = self.conn
        view = memoryview(data)
        while view:
            if self.reset or conn.dead:
                raise ClientGone()
            try:
                window = conn.h2.local_flow_control_window(self.stream_id)
            except h2.exceptions.H2Error:
                raise ClientGone() from None
            if window <= 0:
                await conn.wait_window()
                continue
            n = min(window, conn.h2.max_outbound_frame_size, len(view))
            conn.h2.send_data(self.stream_id, view[:n].tobytes())
            view = view[n:]
            conn.flush()
            try:
                await conn.writer.drain()
            except (ConnectionError, OSError):
                raise ClientGone() from None

    async def end(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.h2.end_stream(self.stream_id)
        except h2.exceptions.H2Error:
            raise ClientGone() from None
        self.conn.flush()

    def abort(self) -> None:
        if not self.reset:
            self.reset = True
            try:
                self.conn.h2.reset_stream(self.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                self.conn.flush()
            except h2.exceptions.H2Error:
                pass


class H2Connection:
    def __init__(
        self,
        router: Router,
        reader: Stream,
        writer: Stream,
        info: tuple[bool, str, str | None],
    ) -> None:
        self.router = router
        self.reader = reader
        self.writer = writer
        self.info = info
        peer = writer.get_extra_info("peername") or ("", 0)
        sock = writer.get_extra_info("sockname") or ("", 0)
        self.client_ip = str(peer[0])
        self.local_port = int(sock[1])
        # outbound headers are built here from already-validated HTTP/1.1 heads (token names,
        # lowercased, no control characters, hop-by-hop dropped): h2 need not check them again
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, H2Stream] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._window = asyncio.Event()
        self.dead = False
        self._flush_scheduled = False
        self.conn_apps = ConnectionApps(router, moves=False)
        self.last_stream: int | None = None  # set by shutdown(): GOAWAY sent, later streams refused

    def shutdown(self) -> None:
        """The router is stopping: GOAWAY (without closing h2's state, so streams in flight
        go on); the connection closes once no stream is left."""
        if self.dead or self.writer.is_closing():
            return
        if self.last_stream is None:
            self.last_stream = self.h2.highest_inbound_stream_id
            self.flush_now()
            self.writer.write(GoAwayFrame(0, last_stream_id=self.last_stream).serialize())
        if not self.streams:
            self.flush_now()
            # abort, not close: a TLS close would wait for the client's close_notify
            self.writer.transport.abort()

    def flush(self) -> None:
        """Coalesce: frames of every stream produced in this loop turn go out in one write."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_now)

    def flush_now(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def ack(self, stream_id: int, n: int) -> None:
        try:
            self.h2.acknowledge_received_data(n, stream_id)
            self.flush()
        except h2.exceptions.H2Error:
            pass

    async def wait_window(self) -> None:
        self._window.clear()
        try:
            async with asyncio.timeout(self.router.timers.idle):
                await self._window.wait()
        except TimeoutError:
            raise ClientIdle() from None

    async def serve(self) -> None:
        router = self.router
        router.open_connections += 1
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 128,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
            },
        )
        self.h2.initiate_connection()
        self.flush_now()
        try:
            while True:
                try:
                    async with asyncio.timeout(router.timers.idle if not self.streams else None):
                        data = await self.reader.read(65536)
                except TimeoutError:
                    break
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.flush_now()
                    break
                for ev in events:
                    self._event(ev)
                self.flush()
        except (ConnectionError, OSError):
            pass
        finally:
            self.dead = True
            self._window.set()
            for st in self.streams.values():
                st.reset = True
                st.body.put_nowait(None)
            for t in list(self.tasks):
                if not t.done():
                    try:
                        await asyncio.wait_for(asyncio.shield(t), 0.5)
                    except (TimeoutError, asyncio.CancelledError, Exception):
                        t.cancel()
            router.open_connections -= 1
            self.conn_apps.release()
            self.flush_now()  # what the streams wrote last (an H24 page) goes out before the end
            self.writer.transport.abort()

    def _event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            if self.last_stream is not None and ev.stream_id > self.last_stream:
                try:  # opened after our GOAWAY: the client retries it elsewhere
                    self.h2.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                except h2.exceptions.H2Error:
                    pass
                return
            stream = H2Stream(self, ev.stream_id)
            self.streams[ev.stream_id] = stream
            if ev.stream_ended is not None:
                stream.ended = True
            task = asyncio.ensure_future(self._run(stream, ev.headers, ev.stream_ended is not None))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.body.put_nowait(ev.data)
                # flow control window is given back as the exchange consumes the data
                if ev.flow_controlled_length > len(ev.data):
                    self.ack(ev.stream_id, ev.flow_controlled_length - len(ev.data))
            else:
                self.ack(ev.stream_id, ev.flow_controlled_length)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.body.put_nowait(None)
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.reset = True
                st.body.put_nowait(None)
            self._window.set()
        elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window.set()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.dead = True
            self._window.set()

    async def _run(self, stream: H2Stream, raw: list[tuple[bytes, bytes]], ended: bool) -> None:
        try:
            req = _request_head(raw, ended)
            if req is None:
                await send_simple(stream, 400, plain_page(400, "bad request"), "text/plain")
            elif req.method == "CONNECT":
                await send_simple(
                    stream, 405, plain_page(405, "CONNECT is not supported"), "text/plain"
                )
            else:
                await Exchange(self.router, stream, req).run()
        except (ClientGone, ClientIdle, ConnectionError, OSError):
            stream.abort()
        finally:
            self.streams.pop(stream.stream_id, None)
            self.flush()


def _request_head(raw: list[tuple[bytes, bytes]], ended: bool) -> RequestHead | None:
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    cl: list[str] = []
    for k, v in raw:
        if k.startswith(b":"):
            pseudo[k] = v
            continue
        name = k.decode("latin-1")
        value = v.decode("latin-1")
        if name == "cookie":
            cookies.append(value)
            continue
        if name == "content-length":
            cl.append(value)
        headers.append((name, value))
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    method = pseudo.get(b":method", b"").decode("latin-1")
    authority = pseudo.get(b":authority", b"").decode("latin-1")
    if not authority:
        hosts = [v for k, v in headers if k == "host"]
        authority = hosts[0] if hosts else ""
    path = pseudo.get(b":path", b"").decode("latin-1")
    if not method or not authority or (method != "CONNECT" and not path):
        return None
    if not any(k == "host" for k, _ in headers):
        headers.insert(0, ("host", authority))
    if ended:
        length: int | None = 0
    elif cl and len(set(cl)) == 1 and cl[0].isdigit():
        length = int(cl[0])
    elif cl:
        return None
    else:
        length = None
    return RequestHead(
        method, path, "2", headers, body_length=length, chunked=length is None, host=authority
    )
