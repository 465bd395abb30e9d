"""The router's listeners: plain HTTP and HTTPS (ALPN picks HTTP/2 or HTTP/1.1)."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from .client_side import PLAIN
from .early import Acceptor, EarlyTransport
from .failures import FORCED_ANSWER
from .http1_server import H1Client, abort_flushing, tls_info
from .state import Router
from .stream import Stream
from .tls import TLSContexts

if TYPE_CHECKING:
    from .http2_server import H2Connection

# plain HTTP accepted by the router itself (early.py); SPRUCE_ROUTER_EARLY=0: by uvloop's server
EARLY_ACCEPT = os.environ.get("SPRUCE_ROUTER_EARLY", "1") != "0"


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
        self._servers: list[asyncio.Server | Acceptor] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.clients: set[H1Client] = set()  # open HTTP/1.1 client connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self.h2_connections: set[H2Connection] = set()
        self._stopping: asyncio.Future[None] | None = None

    async def start(
        self, http_socks: list[socket.socket], https_socks: list[socket.socket]
    ) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # TCP_NODELAY: asyncio and uvloop set it on every TCP transport already
        for s in http_socks:
            port = s.getsockname()[1]
            if EARLY_ACCEPT:
                accepted = functools.partial(self._on_plain_accepted, port)
                self._servers.append(Acceptor(loop, s, accepted))
                continue
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
        client = H1Client(self.router, stream, stream, PLAIN, port)
        self.clients.add(client)
        # no task until a request needs one (most never do: see H1Client.park)
        client.park(self._spawn, self.clients.discard)

    def _on_plain_accepted(
        self, port: int, sock: socket.socket, peer: Any, data: bytes | None
    ) -> None:
        """A plain connection from the Acceptor: its first request goes to the fast lane
        before the loop watches the socket (early.py)."""
        if data == b"":
            sock.close()  # closed before saying anything
            return
        loop = self._loop
        assert loop is not None
        stream = Stream(loop=loop)
        early = stream.transport = EarlyTransport(loop, sock, peer, stream)
        client = H1Client(self.router, stream, stream, PLAIN, port)
        client.early = early
        self.clients.add(client)
        client.park(self._spawn, self.clients.discard)
        if data is None:
            client.watch()  # nothing to read yet: the loop waits for it
        else:
            stream.data_received(data)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sweep(self) -> None:
        router = self.router
        pool_every = max(0.05, router.timers.keepalive_idle / 3)
        pool_at = time.monotonic() + pool_every
        while True:
            idle = router.timers.idle
            await asyncio.sleep(max(0.05, min(1.0, idle / 4, pool_every)))
            now = time.monotonic()
            if now >= pool_at:
                router.pool.sweep()
                pool_at = now + pool_every
            # parked connections have no reader task to time them out
            limit = now - idle
            for client in [c for c in self.clients if c._parked and c.last_active <= limit]:
                if client.idle():
                    # closed as the ordinary path closes (what a slow reader has not taken yet
                    # still gets an idle window); its callbacks see the end
                    client.close()

    async def _on_tls(self, stream: Stream, port: int) -> None:
        info = tls_info(stream)
        sslobj = stream.get_extra_info("ssl_object")
        try:
            if sslobj is not None and sslobj.selected_alpn_protocol() == "h2":
                from .http2_server import H2Connection

                conn = H2Connection(self.router, stream, stream, info)
                self.h2_connections.add(conn)
                try:
                    await conn.serve()
                finally:
                    self.h2_connections.discard(conn)
                return
            client = H1Client(self.router, stream, stream, info, port)
            self.clients.add(client)
            try:
                await client.serve()
            finally:
                self.clients.discard(client)
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

    def _shutdown_connections(self) -> None:
        """Idle connections close (HTTP/2: GOAWAY, then closed once no stream is left)."""
        for client in list(self.clients):
            client.shutdown()
        for conn in list(self.h2_connections):
            conn.shutdown()

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: no new connections; idle ones are closed at once (HTTP/2: GOAWAY);
        requests in flight have `grace` seconds (timers.shutdown_grace) to finish, then each
        exchange still running ends with H24 (the 503 page, or the connection cut if the
        response had begun; an open tunnel logs H24 with status=101)."""
        if self._stopping is not None:
            await asyncio.shield(self._stopping)  # a second caller waits for the first
            return
        loop = asyncio.get_running_loop()
        self._stopping = loop.create_future()
        try:
            await self._stop(self.router.timers.shutdown_grace if grace is None else grace)
        finally:
            self._stopping.set_result(None)

    async def _stop(self, grace: float) -> None:
        router = self.router
        loop = asyncio.get_running_loop()
        router.stopping = True
        for srv in self._servers:
            srv.close()
        if self._sweeper:
            self._sweeper.cancel()
        deadline = loop.time() + grace
        while True:
            # connections that became idle since (their last response said Connection: close)
            self._shutdown_connections()
            pending = [t for t in self._tasks if not t.done()]
            # responses written but not yet read by slow clients get the grace period too
            flushing = any(t.get_write_buffer_size() for t in router.flushing)
            left = deadline - loop.time()
            if not (pending or flushing) or left <= 0:
                break
            if pending:
                await asyncio.wait(pending, timeout=min(0.05, left))
            else:
                await asyncio.sleep(min(0.05, left))
        # the grace period is over: what still runs gets H24 (Exchange, on cancellation)
        router.forced = True
        running = [t for t in router.exchanges if not t.done()]
        for t in running:
            t.cancel()
        if running:
            await asyncio.wait(running, timeout=FORCED_ANSWER + 0.5)
        self._shutdown_connections()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=0.5)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for srv in self._servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
        for transport in list(router.flushing):  # what the grace period did not see through
            abort_flushing(router.flushing, transport)
        for client in list(self.clients):  # a task cancelled before it ever ran, if any
            client.writer.transport.abort()
        for conn in list(self.h2_connections):
            conn.writer.transport.abort()
        router.pool.close_all()
