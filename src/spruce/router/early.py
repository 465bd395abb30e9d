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
from fcntl import ioctl
from termios import FIONREAD
from typing import Any

from .stream import Stream

_DONTWAIT = socket.MSG_DONTWAIT
_INT = bytes(4)  # FIONREAD's answer buffer: unchanged when nothing waits to be read
ACCEPT_BATCH = 64  # connections per readiness callback (the loop's other work gets its turn)
_PAUSED_ON_LIMIT = 0.5  # seconds without accepting after EMFILE/ENFILE (as asyncio's servers)
DEFER_ACCEPT = 1
_tasks: set[asyncio.Task[Any]] = set()  # adoptions in flight (a task needs a reference)


class EarlyTransport:
    """A client connection's transport until the loop watches the socket (see the module)."""

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
        self._loop_transport: Any = None  # the uvloop transport once adopted

    # adoption ------------------------------------------------------------------
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
        real = self._loop_transport = stream.transport
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
        real = self._loop_transport
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
        real = self._loop_transport
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
        real = self._loop_transport
        return bool(real.is_closing()) if real is not None else self._closing

    def get_write_buffer_size(self) -> int:
        real = self._loop_transport
        if real is not None:
            return int(real.get_write_buffer_size())
        return sum(len(d) for d in self._out)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        real = self._loop_transport
        if real is not None:
            real.set_write_buffer_limits(high, low)
        else:
            self._limits = (high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        real = self._loop_transport
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
        if self._loop_transport is not None:
            self._loop_transport.pause_reading()

    def resume_reading(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.resume_reading()

    def is_reading(self) -> bool:
        return (
            bool(self._loop_transport.is_reading()) if self._loop_transport is not None else False
        )

    def close(self) -> None:
        real = self._loop_transport
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
        real = self._loop_transport
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
            # bytes the client sent after its request (never read: the exchange ended the
            # connection) would make close() a reset, which can cost the client the response
            # (the loop's transports had read them already): taken and dropped first. (FIONREAD
            # asks without raising: an EAGAIN from recv is an exception, thousands of
            # instructions)
            try:
                for _ in range(4):
                    waiting = ioctl(sock.fileno(), FIONREAD, _INT)
                    if waiting == _INT or not sock.recv(65536, _DONTWAIT):
                        break
            except OSError:
                pass
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
        self._waiting: list[tuple[socket.socket, Any]] = []  # nothing read yet: one more try
        self.accepted = 0  # connections accepted (benchmarks, tests)
        self.unread = 0  # of which handed to the loop with nothing read
        sock.setblocking(False)
        if DEFER_ACCEPT:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT)
        loop.add_reader(self._fd, self._ready)

    @property
    def sockets(self) -> list[socket.socket]:
        return [] if self._closed else [self._sock]

    def _ready(self) -> None:
        accept = self._sock._accept  # type: ignore[attr-defined]
        family = self._family
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
            self.accepted += 1
            self._first_read(socket.socket(family, socket.SOCK_STREAM, 0, fd), peer, False)

    def _first_read(self, conn: socket.socket, peer: Any, retried: bool) -> None:
        try:
            data = conn.recv(65536, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            if not retried:
                # the client's request usually follows its handshake within microseconds: one
                # more try once this loop turn's other callbacks ran, before epoll is needed
                self._waiting.append((conn, peer))
                if len(self._waiting) == 1:
                    self._loop.call_soon(self._retry)
                return
            self.unread += 1
            self._on_connection(conn, peer, None)
            return
        except OSError:  # reset already
            conn.close()
            return
        self._on_connection(conn, peer, data)

    def _retry(self) -> None:
        waiting = self._waiting
        self._waiting = []
        for conn, peer in waiting:
            if self._closed:
                conn.close()
            else:
                self._first_read(conn, peer, True)

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
