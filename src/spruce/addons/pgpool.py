"""Pooled admin sessions to the add-ons' databases.

A fresh admin session costs a PostgreSQL backend start, a TLS handshake and a SCRAM
exchange: most of a `pg:info`. The cluster keeps a few idle ones per database and hands
them out again. Bounded: at most `per_database` idle sessions per database, `max_idle` in
all, each closed after `idle_seconds` unused. A database's sessions are released (closed)
before it is dropped or restored into, and all of them when the cluster stops.

A session is only put back after a clean use (no error, no open transaction) and is
checked before reuse: one the server closed (pg_terminate_backend, a restart) is readable
while idle, so it is dropped rather than handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

Connect = Callable[[str], Awaitable[psycopg.AsyncConnection[Any]]]


@dataclass
class _Idle:
    conn: psycopg.AsyncConnection[Any]
    since: float


def _usable(conn: psycopg.AsyncConnection[Any]) -> bool:
    """An idle session the server has not closed: nothing to read on its socket."""
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def _discard(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close without awaiting (the session may belong to a loop that is gone)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


class AdminPool:
    def __init__(
        self,
        connect: Connect,
        *,
        per_database: int = 2,
        max_idle: int = 16,
        idle_seconds: float = 60.0,
    ) -> None:
        self._connect = connect
        self.per_database = per_database
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self._idle: dict[str, list[_Idle]] = {}
        # Bumped by release(): a session taken before it is not put back after.
        self._generation: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None

    def idle_count(self, dbname: str | None = None) -> int:
        if dbname is not None:
            return len(self._idle.get(dbname, ()))
        return sum(len(v) for v in self._idle.values())

    @contextlib.asynccontextmanager
    async def session(self, dbname: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        self._same_loop()
        generation = self._generation.get(dbname, 0)
        conn = self._take(dbname) or await self._connect(dbname)
        clean = False
        try:
            yield conn
            clean = True
        finally:
            if clean and generation == self._generation.get(dbname, 0) and _usable(conn):
                self._put(dbname, conn)
            else:
                await conn.close()

    async def release(self, dbname: str) -> None:
        """Close the database's idle sessions; those in use are closed when returned."""
        self._generation[dbname] = self._generation.get(dbname, 0) + 1
        for idle in self._idle.pop(dbname, []):
            await idle.conn.close()

    async def close(self) -> None:
        for dbname in list(self._idle):
            await self.release(dbname)
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    # -- internals ---------------------------------------------------------------------
    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions made on another event loop cannot be awaited on this one.
            for entries in self._idle.values():
                for idle in entries:
                    _discard(idle.conn)
            self._idle.clear()
            self._reaper = None
            self._loop = loop

    def _take(self, dbname: str) -> psycopg.AsyncConnection[Any] | None:
        entries = self._idle.get(dbname)
        while entries:
            idle = entries.pop()
            if _usable(idle.conn):
                return idle.conn
            _discard(idle.conn)
        return None

    def _put(self, dbname: str, conn: psycopg.AsyncConnection[Any]) -> None:
        entries = self._idle.setdefault(dbname, [])
        if len(entries) >= self.per_database:
            _discard(conn)
            return
        if self.idle_count() >= self.max_idle:
            self._evict_oldest()
        entries.append(_Idle(conn, time.monotonic()))
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    def _evict_oldest(self) -> None:
        oldest: tuple[str, _Idle] | None = None
        for dbname, entries in self._idle.items():
            for idle in entries:
                if oldest is None or idle.since < oldest[1].since:
                    oldest = (dbname, idle)
        if oldest is not None:
            self._idle[oldest[0]].remove(oldest[1])
            _discard(oldest[1].conn)

    async def _reap(self) -> None:
        while any(self._idle.values()):
            await asyncio.sleep(max(0.05, self.idle_seconds / 4))
            cutoff = time.monotonic() - self.idle_seconds
            for dbname, entries in list(self._idle.items()):
                for idle in [i for i in entries if i.since < cutoff]:
                    entries.remove(idle)
                    await idle.conn.close()
                if not entries:
                    self._idle.pop(dbname, None)
