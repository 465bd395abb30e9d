"""The router's listeners: plain HTTP and HTTPS (ALPN picks HTTP/2 or HTTP/1.1)."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any

from .http1_server import H1Client, tls_info
from .state import Router
from .stream import Stream
from .tls import TLSContexts


def listening_socket(
    host: str, port: int, reuse_port: bool = True, listen: bool = True
) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


class RouterServer:
    """Serves one Router on given sockets in the running loop (a worker, or in-process)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.tls = TLSContexts(router)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.clients: set[H1Client] = set()  # open HTTP/1.1 client connections
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self, http_socks: list[socket.socket], https_socks: list[socket.socket]
    ) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # TCP_NODELAY: asyncio and uvloop set it on every TCP transport already
        for s in http_socks:
            port = s.getsockname()[1]
            self._servers.append(
                await loop.create_server(functools.partial(self._plain_stream, port), sock=s)
            )
        for s in https_socks:
            port = s.getsockname()[1]
            self._servers.append(
                await loop.create_server(
                    functools.partial(self._stream, self._on_tls, True, port),
                    sock=s,
                    ssl=self.tls.base,
                    ssl_handshake_timeout=10.0,
                )
            )
        self._sweeper = asyncio.ensure_future(self._sweep())

    def _stream(self, handler: Any, ssl: bool, port: int) -> Stream:
        stream = Stream(ssl=ssl, loop=self._loop)
        stream.on_connected = lambda st: self._spawn(handler(st, port))
        return stream

    def _plain_stream(self, port: int) -> Stream:
        stream = Stream(loop=self._loop)
        stream.on_connected = lambda st: self._on_plain_connected(st, port)
        return stream

    def _on_plain_connected(self, stream: Stream, port: int) -> None:
        client = H1Client(self.router, stream, stream, (False, "unknown", None), port)
        # a first request arriving before the connection's task runs may take the fast lane
        stream.intercept = client._fast
        self._spawn(self._on_plain(client))

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.router.timers.keepalive_idle / 3))
            self.router.pool.sweep()

    async def _on_plain(self, client: H1Client) -> None:
        stream = client.reader
        self.clients.add(client)
        try:
            await client.serve()
        except asyncio.CancelledError:
            stream.abort()  # router shutting down: end quietly
        finally:
            self.clients.discard(client)

    async def _on_tls(self, stream: Stream, port: int) -> None:
        info = tls_info(stream)
        sslobj = stream.get_extra_info("ssl_object")
        try:
            if sslobj is not None and sslobj.selected_alpn_protocol() == "h2":
                from .http2_server import H2Connection

                await H2Connection(self.router, stream, stream, info).serve()
                return
            await H1Client(self.router, stream, stream, info, port).serve()
        except asyncio.CancelledError:
            stream.abort()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        out = []
        for srv in self._servers:
            for s in srv.sockets:
                name = s.getsockname()
                out.append((str(name[0]), int(name[1])))
        return out

    async def stop(self) -> None:
        for srv in self._servers:
            srv.close()
        if self._sweeper:
            self._sweeper.cancel()
        for t in list(self._tasks):
            t.cancel()
        for srv in self._servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
        self.router.pool.close_all()
