"""The PostgreSQL store without pool_pre_ping (issue 23): hot connections are used without a
round trip, and a PostgreSQL restart costs no request an error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from support import PostgresServer

from spruce.store.db import IDLE_PING_SECONDS, Store


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: restarting the session's would break other tests."""
    server = PostgresServer()
    yield server
    server.stop()


def read(store: Store) -> int:
    with store.reading() as conn:
        return int(conn.execute(text("SELECT count(*) FROM apps")).scalar_one())


def test_hot_connections_are_not_pinged_and_a_restart_is_survived(
    own_postgres: PostgresServer,
) -> None:
    store = Store.open(own_postgres.dir, own_postgres.create_database())
    assert store.liveness is not None
    try:
        read(store)
        before = store.liveness.pings
        for _ in range(50):
            assert read(store) == 0
        assert store.liveness.pings == before  # back-to-back reads: no round trip added
        pg = own_postgres  # -l: else the server writes to (and holds open) our pipe
        pg._run(
            "pg_ctl", "-D", str(pg.data), "-l", str(pg.dir / "log"), "-m", "fast", "-w", "restart"
        )
        time.sleep(IDLE_PING_SECONDS)  # no request during the restart: connections idle
        # the pooled connections died with the server: found out before a request uses one
        assert read(store) == 0
        assert store.liveness.pings == before + 1
        for _ in range(5):
            assert read(store) == 0
        assert store.liveness.pings == before + 1
    finally:
        store.dispose()
