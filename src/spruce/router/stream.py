"""A lean byte stream on a raw asyncio Protocol, for both client and dyno connections.

Replaces StreamReader/StreamWriter on the hot path: no per-read `asyncio.timeout` context
(one lazy deadline timer per connection, rescheduled only when it fires early), reads hand
back everything buffered at once, writes go straight to the transport and `drain` only
waits while the transport has paused us. One object serves as both reader and writer.
"""

from __future__ import annotations

import asyncio
from typing import Any

READ_LIMIT = 1 << 16  # buffered before the socket stops being read


class Stream(asyncio.Protocol):
    __slots__ = (
        "transport",
        "_loop",
        "_buf",
        "_eof",
        "_exc",
        "_lost",
        "_waiter",
        "_deadline",
        "_timer",
        "_timer_at",
        "_read_paused",
        "_write_paused",
        "blocked",
        "_drain_waiter",
        "_limit",
        "_ssl",
        "on_connected",
        "hold",
        "intercept",
        "on_data",
        "on_wakeup",
    )

    def __init__(
        self,
        limit: int = READ_LIMIT,
        ssl: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.transport: Any = None
        # (get_running_loop() costs a getpid() syscall: servers pass their loop)
        self._loop = loop or asyncio.get_running_loop()
        self._buf = b""
        self._eof = False
        self._exc: BaseException | None = None
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._read_paused = False
        self._write_paused = False
        # paused by the transport, or lost: drain() has something to do (an attribute, as
        # the fast lanes read it per request)
        self.blocked = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._limit = limit
        self._ssl = ssl
        self.on_connected: Any = None  # callable(stream), for server-side streams
        # fast lane (see http1_server): `intercept(data) -> bool` may consume a client's
        # request in the callback; `hold` keeps the reader asleep meanwhile; `on_data(data or
        # None at EOF)` takes a dyno's next bytes once, in the callback
        self.hold = False
        self.intercept: Any = None
        self.on_data: Any = None
        # a connection without a reading task (see H1Client.park): called whenever bytes
        # or the end are there for a reader and nobody is waiting
        self.on_wakeup: Any = None

    # protocol callbacks ----------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.on_connected is not None:
            self.on_connected(self)

    def data_received(self, data: bytes) -> None:
        cb = self.on_data
        if cb is not None:
            self.on_data = None
            cb(data)
            return
        if self.intercept is not None and not self.hold and not self._buf and self.intercept(data):
            return
        buf = self._buf
        self._buf = buf + data if buf else data
        if len(self._buf) > self._limit and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        cb = self.on_data
        if cb is not None:
            self.on_data = None
            cb(None)
        return not self._ssl  # keep a half-closed plain connection open to answer it

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.blocked = True
        self._eof = True
        if exc is not None:
            self._exc = exc
        self._wake()
        d = self._drain_waiter
        if d is not None:  # drain() raises: the connection is lost
            self._drain_waiter = None
            if not d.done():
                d.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        cb = self.on_data
        if cb is not None:
            self.on_data = None
            cb(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self.blocked = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self.blocked = self._lost
        d = self._drain_waiter
        if d is not None:
            self._drain_waiter = None
            if not d.done():
                d.set_result(None)

    def _wake(self) -> None:
        if self.hold:
            return
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)
        elif self.on_wakeup is not None:
            self.on_wakeup()

    # timer -------------------------------------------------------------------
    def _on_timer(self) -> None:
        self._timer = None
        w = self._waiter
        if w is None or w.done() or self.hold:
            return  # held: release() re-arms
        now = self._loop.time()
        if now < self._deadline:  # the deadline moved on since the timer was set
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._waiter = None
        w.set_exception(TimeoutError())

    def release(self, timeout: float) -> None:
        """End a hold: the waiting reader gets what came meanwhile, or a fresh deadline."""
        self.hold = False
        if self._buf or self._eof:
            self._wake()
            return
        if self._waiter is not None:
            loop = self._loop
            deadline = loop.time() + timeout
            self._deadline = deadline
            if self._timer is None and not self._lost:
                self._timer_at = deadline
                self._timer = loop.call_at(deadline, self._on_timer)

    def unread(self, data: bytes) -> None:
        """Give bytes taken by `on_data` back to the stream's buffer."""
        self._buf = data + self._buf if self._buf else data

    # reading -----------------------------------------------------------------
    def at_eof(self) -> bool:
        return self._eof and not self._buf

    def take_buffered(self) -> bytes:
        data = self._buf
        self._buf = b""
        if self._read_paused and not self._lost:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def read(self, n: int = -1, timeout: float | None = None) -> bytes:
        """Up to `n` buffered bytes (at least one), b"" at EOF; TimeoutError after `timeout`."""
        if not self._buf:
            if self._exc is not None:
                raise ConnectionResetError(str(self._exc))
            if self._eof:
                return b""
            loop = self._loop
            w = loop.create_future()
            self._waiter = w
            if timeout is not None:
                deadline = loop.time() + timeout
                self._deadline = deadline
                if self._timer is None or self._timer_at > deadline:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer_at = deadline
                    self._timer = loop.call_at(deadline, self._on_timer)
            else:
                self._deadline = float("inf")
            try:
                await w
            finally:
                self._waiter = None
            if not self._buf:
                if self._exc is not None:
                    raise ConnectionResetError(str(self._exc))
                return b""
        data = self._buf
        if 0 < n < len(data):
            self._buf = data[n:]
            return data[:n]
        self._buf = b""
        if self._read_paused and not self._lost:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    # writing -----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        self.transport.writelines(data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def must_wait(self) -> bool:
        """Whether drain() has anything to do (paused by the transport, or lost)."""
        return self.blocked

    async def drain(self) -> None:
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if not self._write_paused:
            return
        # one future for every writer waiting (the streams of an HTTP/2 connection): a second
        # drain must not orphan the first's; shielded, so one cancelled writer cancels no other
        d = self._drain_waiter
        if d is None:
            d = self._drain_waiter = self._loop.create_future()
        await asyncio.shield(d)
        if self._lost:
            raise ConnectionResetError("Connection lost")

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
