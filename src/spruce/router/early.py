"""Plain HTTP connections accepted by the router itself, served before the loop watches them.

uvloop's server costs every new connection syscalls that HAProxy does not make: getsockname
and getpeername (uvloop's transport, eagerly), TCP_NODELAY, the socket's registration with
epoll (libuv, through io_uring) and its removal before close, and one more loop iteration
(connection_made comes a turn later). HAProxy accepts, reads at once (the request is usually
there already) and registers the socket only when a read would block. So does this module:
`Acceptor` takes connections with accept4 (the peer's address comes with it), reads what the
client sent, and `EarlyTransport` stands in for a transport while the fast lane serves that
first request. A connection whose response goes out whole and then closes (Connection: close)
never touches epoll. Anything else (no bytes yet, a request the fast lane declines, a
keep-alive connection after its first response, a hand-over to the coroutine path, a partial
send) is *adopted*: the socket becomes an ordinary uvloop transport of the same Stream, and
what was written meanwhile goes out first.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

from .stream import Stream

_DONTWAIT = socket.MSG_DONTWAIT
ACCEPT_BATCH = 64  # connections per readiness callback (the loop's other work gets its turn)
_PAUSED_ON_LIMIT = 0.5  # seconds without accepting after EMFILE/ENFILE (as asyncio's servers)
_tasks: set[asyncio.Task[Any]] = set()  # adoptions in flight (a task needs a reference)


class EarlyTransport:
    """A client connection's transport until the loop watches the socket (see the module)."""

    __slots__ = (
        "_loop",
        "_sock",
        "_peer",
        "_stream",
        "_out",
        "_closing",
        "_close_when_adopted",
        "_abort_when_adopted",
        "_limits",
        "_real",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        peer: Any,
        stream: Stream,
    ) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._peer = peer
        self._stream = stream
        self._out: list[bytes] = []  # written while adopting, or after a partial send
        self._closing = False
        self._close_when_adopted = False
        self._abort_when_adopted = False
        self._limits: tuple[int | None, int | None] | None = None
        self._real: Any = None  # the uvloop transport once adopted

    # adoption ------------------------------------------------------------------
    @property
    def adopting(self) -> bool:
        return self._sock is None and self._real is None and not self._closing

    def adopt(self) -> None:
        """Hand the socket to the loop: the Stream gets an ordinary transport (a turn later)."""
        sock = self._sock
        if sock is None:
            return  # adopted already, or closed
        self._sock = None
        stream = self._stream
        stream.on_connected = self._adopted
        loop = self._loop
        task = loop.create_task(self._adopt(sock))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    async def _adopt(self, sock: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol, sock)
        except OSError as e:
            self._stream.on_connected = None
            sock.close()
            self._closing = True
            self._stream.connection_lost(e)

    def _protocol(self) -> Stream:
        return self._stream

    def _adopted(self, stream: Stream) -> None:
        """Stream.connection_made with the loop's transport: what waited goes out first."""
        stream.on_connected = None
        real = self._real = stream.transport
        if self._limits is not None:
            real.set_write_buffer_limits(*self._limits)
        if self._out:
            real.writelines(self._out)
            self._out = []
        if self._abort_when_adopted:
            real.abort()
        elif self._close_when_adopted:
            real.close()

    # the transport's interface (what Stream, H1Client and the fast lane use) -----
    def write(self, data: bytes) -> None:
        real = self._real
        if real is not None:
            real.write(data)
            return
        if self._closing or not data:
            return
        sock = self._sock
        if sock is None or self._out:  # adopting: in order, after what waits
            self._out.append(bytes(data))
            return
        try:
            sent = sock.send(data, _DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError as e:  # the client is gone (EPIPE, ECONNRESET)
            self._lose(e)
            return
        if sent < len(data):
            self._out.append(bytes(data[sent:]))
            self.adopt()

    def writelines(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def write_eof(self) -> None:
        real = self._real
        if real is not None:
            real.write_eof()
            return
        sock = self._sock
        if sock is not None and not self._out:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        real = self._real
        return bool(real.is_closing()) if real is not None else self._closing

    def get_write_buffer_size(self) -> int:
        real = self._real
        if real is not None:
            return int(real.get_write_buffer_size())
        return sum(len(d) for d in self._out)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        real = self._real
        if real is not None:
            real.set_write_buffer_limits(high, low)
        else:
            self._limits = (high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        real = self._real
        if real is not None:
            return real.get_extra_info(name, default)
        if name == "peername":
            return self._peer
        sock = self._sock
        if sock is None:
            return default
        if name == "sockname":
            return sock.getsockname()
        if name == "socket":
            return sock
        return default

    def pause_reading(self) -> None:
        if self._real is not None:
            self._real.pause_reading()

    def resume_reading(self) -> None:
        if self._real is not None:
            self._real.resume_reading()

    def is_reading(self) -> bool:
        return bool(self._real.is_reading()) if self._real is not None else False

    def close(self) -> None:
        real = self._real
        if real is not None:
            real.close()
            return
        if self._closing:
            return
        if self._sock is None:  # adopting: closed once what waits went out
            self._close_when_adopted = True
            return
        self._end()

    def abort(self) -> None:
        real = self._real
        if real is not None:
            real.abort()
            return
        if self._closing:
            return
        if self._sock is None:
            self._abort_when_adopted = True
            return
        self._end()

    def _end(self, exc: Exception | None = None) -> None:
        sock = self._sock
        self._sock = None
        self._closing = True
        self._out = []
        if sock is not None:
            sock.close()
        # (a turn later, as the loop's transports tell their protocol)
        self._loop.call_soon(self._stream.connection_lost, exc)

    def _lose(self, exc: Exception) -> None:
        self._end(exc)


class Acceptor:
    """Accepts on one listening socket from the loop's readiness callback; each connection
    goes to `on_connection(sock, peer, first_bytes)` (None: nothing to read yet, b"": the
    client closed). Stands in for an asyncio.Server in RouterServer (close, wait_closed,
    sockets)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_connection: Callable[[socket.socket, Any, bytes | None], None],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._on_connection = on_connection
        self._family = sock.family
        self._closed = False
        sock.setblocking(False)
        loop.add_reader(self._fd, self._ready)

    @property
    def sockets(self) -> list[socket.socket]:
        return [] if self._closed else [self._sock]

    def _ready(self) -> None:
        accept = self._sock._accept  # type: ignore[attr-defined]
        family = self._family
        on_connection = self._on_connection
        for _ in range(ACCEPT_BATCH):
            try:
                fd, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause()
                    return
                raise
            conn = socket.socket(family, socket.SOCK_STREAM, 0, fd)
            try:
                data: bytes | None = conn.recv(65536, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:  # reset already
                conn.close()
                continue
            on_connection(conn, peer, data)

    def _pause(self) -> None:
        self._loop.remove_reader(self._fd)
        self._loop.call_later(_PAUSED_ON_LIMIT, self._resume)

    def _resume(self) -> None:
        if not self._closed:
            self._loop.add_reader(self._fd, self._ready)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._sock.close()

    async def wait_closed(self) -> None:
        return None
