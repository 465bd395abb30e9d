"""Dyno side of the router: connections, keepalive pool, quarantine, dyno choice."""

from __future__ import annotations

import asyncio
import random
import time

from .errors import Code
from .stream import Stream
from .table import Dyno

READ_SIZE = 1 << 16

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class ConnectFailed(Exception):
    def __init__(self, code: Code, connect_ms: int) -> None:
        super().__init__(code)
        self.code = code  # H19 (timeout) or H21 (refused)
        self.connect_ms = connect_ms


class BackendConn:
    __slots__ = ("reader", "writer", "key", "reused", "idle_since", "dyno")

    def __init__(self, reader: Stream, writer: Stream, dyno: Dyno):
        self.reader = reader
        self.writer = writer
        self.dyno = dyno
        self.key = dyno.key
        self.reused = False
        self.idle_since = 0.0

    def close(self) -> None:
        try:
            self.writer.transport.abort()
        except Exception:
            pass


async def open_backend(dyno: Dyno, timeout: float) -> BackendConn:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            loop = asyncio.get_running_loop()
            _, stream = await loop.create_connection(
                lambda: Stream(READ_SIZE, loop=loop), dyno.host, dyno.port
            )
    except TimeoutError:
        raise ConnectFailed(Code.H19, int((time.monotonic() - started) * 1000)) from None
    except OSError:
        raise ConnectFailed(Code.H21, int((time.monotonic() - started) * 1000)) from None
    # TCP_NODELAY is already set by the event loop on TCP transports
    return BackendConn(stream, stream, dyno)


class DynoPool:
    """Idle keepalive connections per dyno address, closed quietly after `idle` seconds."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self._idle: dict[tuple[str, int], list[BackendConn]] = {}

    def take(self, key: tuple[str, int]) -> BackendConn | None:
        conns = self._idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            reader = conn.reader
            if (
                now - conn.idle_since < self.idle
                # bytes the dyno sent unasked while idle (or its end): the next response read
                # there would not be the next request's
                and not reader._buf
                and not reader._eof
                and not conn.writer.transport.is_closing()
            ):
                conn.reused = True
                return conn
            conn.close()
        return None

    def give(self, conn: BackendConn) -> None:
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)

    def drop(self, key: tuple[str, int]) -> None:
        for conn in self._idle.pop(key, []):
            conn.close()

    def sweep(self) -> None:
        now = time.monotonic()
        for key in list(self._idle):
            keep = []
            for conn in self._idle[key]:
                if now - conn.idle_since >= self.idle or conn.reader._eof or conn.reader._buf:
                    conn.close()
                else:
                    keep.append(conn)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close_all(self) -> None:
        for key in list(self._idle):
            self.drop(key)


class Quarantine:
    """Dynos this router skips for a while after a failed connect."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._until: dict[tuple[str, int], float] = {}

    def add(self, key: tuple[str, int]) -> None:
        self._until[key] = time.monotonic() + self.duration

    def active(self, key: tuple[str, int]) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._until[key]
            return False
        return True

    def release(self, key: tuple[str, int]) -> None:
        self._until.pop(key, None)


def choose(candidates: list[Dyno], preferred: Dyno | None = None) -> Dyno:
    """Random per request (not per connection), so traffic spreads after dyno changes."""
    if preferred is not None and preferred in candidates:
        return preferred
    return candidates[0] if len(candidates) == 1 else random.choice(candidates)
