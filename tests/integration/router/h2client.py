"""A small asyncio HTTP/2 test client over TLS (h2 as the client state machine), able to send
what a well-behaved client would not (outbound validation off) and raw frames."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    reset: int | None = None  # RST_STREAM error code
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(cfg)
        self.responses: dict[int, Response] = {}
        self.goaway: int | None = None
        self.closed = asyncio.Event()
        self.auto_ack = True
        self.window_opened = asyncio.Event()
        self.raw_received = bytearray()
        self.reading = asyncio.Event()  # cleared: the client stops reading (a slow reader)
        self.reading.set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, port: int, cafile: str, sni: str = "demo.localhost", rcvbuf: int | None = None
    ) -> H2Client:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["h2"])
        sock = None
        if rcvbuf is not None:  # a small receive buffer: a slow reader stalls the router sooner
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(
            None if sock else "127.0.0.1",
            None if sock else port,
            ssl=ctx,
            server_hostname=sni,
            sock=sock,
            limit=1 << 16,
        )
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        c = cls(reader, writer)
        c.conn.initiate_connection()
        c.flush()
        c._task = asyncio.ensure_future(c._pump())
        return c

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def open_windows(self, size: int = (1 << 31) - 1) -> None:
        """Let the server send `size` bytes on every stream and on the connection."""
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: size})
        self.conn.increment_flow_control_window(size - self.conn.inbound_flow_control_window)
        self.flush()

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def _pump(self) -> None:
        try:
            while True:
                await self.reading.wait()
                data = await self.reader.read(65536)
                if not data:
                    break
                self.raw_received += data
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break
                for ev in events:
                    self._event(ev)
                self.flush()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for r in self.responses.values():
                r.done.set()

    def _event(self, ev: h2.events.Event) -> None:
        sid = getattr(ev, "stream_id", None)
        r = self.responses.get(sid) if sid is not None else None
        if isinstance(ev, h2.events.ResponseReceived) and r is not None:
            r.headers = list(ev.headers)
            r.status = int(dict(ev.headers)[b":status"])
        elif isinstance(ev, h2.events.DataReceived):
            if r is not None:
                r.body += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and r is not None:
            r.done.set()
        elif isinstance(ev, h2.events.StreamReset) and r is not None:
            r.reset = int(ev.error_code)
            r.done.set()
        elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self.window_opened.set()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = int(ev.error_code)

    def request(
        self,
        path: str = "/name",
        host: str = "demo.localhost",
        method: str = "GET",
        extra: list[tuple[str, str]] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        end_stream: bool = True,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        if headers is None:
            hs = [(":method", method), (":path", path), (":scheme", "https"), (":authority", host)]
            hs += extra or []
            headers = [(k.encode(), v.encode()) for k, v in hs]
        self.responses[sid] = Response()
        self.conn.send_headers(sid, headers, end_stream=end_stream and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end_stream)
        self.flush()
        return sid

    async def send_body(self, sid: int, body: bytes, end_stream: bool = True) -> None:
        """Send `body` as the flow control windows allow."""
        view = memoryview(body)
        while view:
            n = min(
                self.conn.local_flow_control_window(sid),
                self.conn.max_outbound_frame_size,
                len(view),
            )
            if n <= 0:
                self.window_opened.clear()
                await asyncio.wait_for(self.window_opened.wait(), 5)
                continue
            self.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
            self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    async def post(self, path: str, body: bytes, **kw: object) -> Response:
        sid = self.request(path, method="POST", end_stream=False, **kw)  # type: ignore[arg-type]
        await self.send_body(sid, body)
        return await self.response(sid, 10)

    async def response(self, sid: int, timeout: float = 5.0) -> Response:
        r = self.responses[sid]
        await asyncio.wait_for(r.done.wait(), timeout)
        return r

    async def get(self, path: str = "/name", **kw: object) -> Response:
        return await self.response(self.request(path, **kw))  # type: ignore[arg-type]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.writer.close()
