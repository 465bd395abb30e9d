"""Engines and sessions for the state store: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


def database_url(home: Path) -> str:
    """`SPRUCE_DATABASE_URL` if set, else a SQLite file in the home."""
    url = os.environ.get("SPRUCE_DATABASE_URL")
    return normalise_url(url) if url else f"sqlite:///{Path(home) / 'spruce.db'}"


def normalise_url(url: str) -> str:
    """Accept Heroku-style postgres:// URLs and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


POOL_SIZE, POOL_OVERFLOW = 10, 5
IDLE_PING_SECONDS = 1.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is used."""


class IdlePing:
    """Liveness of pooled connections, paid only by connections that sat idle.

    SQLAlchemy's pool_pre_ping pays a round trip on every checkout (a quarter of a
    millisecond, a tenth of a cheap read). A connection used again within IDLE_PING_SECONDS
    cannot have missed a server restart of longer than that, which is every restart: when
    the server comes back, every connection made before has been idle at least that long,
    so it is pinged, found dead and replaced before a request sees it. A connection broken
    without a restart (a failover faster than that) fails one statement, and SQLAlchemy
    then drops every connection of the pool."""

    def __init__(self, engine: Engine, idle: float = IDLE_PING_SECONDS) -> None:
        self.idle = idle
        self.pings = 0
        self._dialect = engine.dialect
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def _checkout(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < self.idle:
            return  # new, or just used
        self.pings += 1
        try:
            self._dialect.do_ping(dbapi_conn)
        except Exception:
            # the pool discards this connection and checks out another (a new one)
            raise DisconnectionError("the connection was closed by the server") from None


def make_engine(url: str) -> tuple[Engine, IdlePing | None]:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine, None
    # As many pooled connections as the API's threads (api/http.py) and then some: with
    # SQLAlchemy's 5, the overflow ones were opened and closed again under load, a new
    # PostgreSQL backend each time.
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    return engine, IdlePing(engine)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). Alembic is imported here,
    not at the top: it costs a third of a second that only opening a store needs."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_query_cell: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "spruce_query_cell", default=None
)


def _count_query(*_: Any) -> None:
    cell = _query_cell.get()
    if cell is not None:
        cell[0] += 1


class Store:
    """The engine plus a session factory; services take one `Store`."""

    _inline = False

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine, self.liveness = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def memory(cls) -> Store:
        """A private in-memory SQLite store with the schema applied (tests of the rules)."""
        store = cls.__new__(cls)
        store.url = "sqlite://"
        store.liveness = None
        store.engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        event.listen(store.engine, "connect", _sqlite_pragmas)
        store._inline = True  # its one connection cannot be shared between threads
        store._sessions = sessionmaker(store.engine, expire_on_commit=False)
        migrate(store.engine)
        return store

    @classmethod
    def open(cls, home: Path, url: str | None = None) -> Store:
        store = cls(url or database_url(home))
        migrate(store.engine)
        return store

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    async def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store-bound call in a worker thread, so the event loop never waits on the
        store. The in-memory store of the rules' tests runs it inline: its single
        connection cannot be shared between threads."""
        if self._inline:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads only, without an ORM session: the hot reads (an app, a
        listing, config vars) cost a quarter of what a session's unit of work adds. On
        PostgreSQL in autocommit: psycopg's BEGIN and the pool's ROLLBACK are two round
        trips a read does not need (at READ COMMITTED each statement has its own snapshot
        either way)."""
        with self.engine.connect() as conn:
            if self.liveness is not None:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def count_queries(self) -> None:
        """From now on, `queries(cell)` counts the statements run inside it (diagnostics)."""
        event.listen(self.engine, "before_cursor_execute", _count_query)

    @staticmethod
    @contextmanager
    def queries(cell: list[int]) -> Iterator[None]:
        token = _query_cell.set(cell)
        try:
            yield
        finally:
            _query_cell.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()
