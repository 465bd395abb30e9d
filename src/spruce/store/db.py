"""Engines and sessions for the state store: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).parent / "migrations"


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


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


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

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def memory(cls) -> Store:
        """A private in-memory SQLite store with the schema applied (tests of the rules)."""
        store = cls.__new__(cls)
        store.url = "sqlite://"
        store.engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        event.listen(store.engine, "connect", _sqlite_pragmas)
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
