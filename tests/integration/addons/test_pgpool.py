"""Pooled admin sessions (spruce.addons.pgpool) on a real PostgreSQL cluster: reused per
database, never across databases, bounded, dropped when stale, released before a drop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from spruce.addons.pgpool import AdminPool
from spruce.addons.postgres import PostgresProvider

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(module_home: Path):
    p = PostgresProvider(module_home)
    yield p
    await p.stop()


def dbname(config: dict[str, str]) -> str:
    return config["URL"].rsplit("/", 1)[1]


async def backend(p: PostgresProvider, db: str) -> tuple[int, str]:
    async with p.cluster.admin(db) as conn:
        cur = await conn.execute("SELECT pg_backend_pid(), current_database()")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


async def admin_sessions(p: PostgresProvider, db: str) -> int:
    """Admin backends on `db`, counted from a session outside the pool."""
    async with await psycopg.AsyncConnection.connect(**p.cluster.conninfo()) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = current_user",
            (db,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def settled(p: PostgresProvider, db: str, n: int) -> bool:
    """The count of admin backends on `db` reaches n (a closed one takes a moment to exit)."""
    for _ in range(50):
        if await admin_sessions(p, db) == n:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_reused_per_database_never_across(provider: PostgresProvider) -> None:
    a = dbname(await provider.provision("pool-a", "essential-0"))
    b = dbname(await provider.provision("pool-b", "essential-0"))
    pid_a, db = await backend(provider, a)
    assert db == a
    assert await backend(provider, a) == (pid_a, a)  # the same backend, no new session
    pid_b, db = await backend(provider, b)
    assert db == b and pid_b != pid_a  # another database: its own session
    assert await backend(provider, a) == (pid_a, a)
    # the pooled sessions are the platform's: not the app's connections, not in pg:ps
    info = dict(await provider.info("pool-a"))
    assert info["Connections"] == "0/20"
    assert await provider.data.ps("pool-a") == []
    await provider.deprovision("pool-a")
    await provider.deprovision("pool-b")


async def test_deprovision_with_a_pooled_session(provider: PostgresProvider) -> None:
    config = await provider.provision("pool-c", "essential-0")
    db = dbname(config)
    await provider.info("pool-c")
    assert provider.cluster.pool.idle_count(db) == 1
    assert await settled(provider, db, 1)
    await provider.deprovision("pool-c")
    assert provider.cluster.pool.idle_count(db) == 0
    async with await psycopg.AsyncConnection.connect(**provider.cluster.conninfo()) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (db,))
        assert await cur.fetchone() == (0,)


async def test_a_session_in_use_during_release_is_not_kept(provider: PostgresProvider) -> None:
    db = dbname(await provider.provision("pool-d", "essential-0"))
    async with provider.cluster.admin(db) as conn:
        await provider.cluster.release(db)  # as a restore does, while a pg:info runs
        await conn.execute("SELECT 1")
    assert provider.cluster.pool.idle_count(db) == 0
    await provider.deprovision("pool-d")


async def test_a_session_the_server_ended_is_not_handed_out(provider: PostgresProvider) -> None:
    db = dbname(await provider.provision("pool-e", "essential-0"))
    pid, _ = await backend(provider, db)
    async with await psycopg.AsyncConnection.connect(
        **provider.cluster.conninfo(), autocommit=True
    ) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert await settled(provider, db, 0)  # its FATAL reached the idle socket
    new_pid, _ = await backend(provider, db)
    assert new_pid != pid
    await provider.deprovision("pool-e")


async def test_bounded_and_closed_when_idle(provider: PostgresProvider) -> None:
    dbs = [dbname(await provider.provision(f"pool-f{i}", "essential-0")) for i in range(3)]
    for db in dbs:  # only this test's pool on these databases
        await provider.cluster.release(db)

    async def connect(db: str) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            **provider.cluster.conninfo(db), autocommit=True
        )

    pool = AdminPool(connect, per_database=2, max_idle=3, idle_seconds=0.3)
    managers = [pool.session(dbs[0]) for _ in range(4)]
    for m in managers:  # four at once: four sessions, two kept
        await m.__aenter__()
    for m in managers:
        await m.__aexit__(None, None, None)
    assert pool.idle_count(dbs[0]) == 2
    assert await settled(provider, dbs[0], 2)
    for db in dbs[1:]:
        async with pool.session(db):
            pass
    assert pool.idle_count() == 3  # max_idle: the oldest went
    assert pool.idle_count(dbs[0]) == 1
    for _ in range(40):
        if pool.idle_count() == 0:
            break
        await asyncio.sleep(0.1)
    assert pool.idle_count() == 0
    for db in dbs:
        assert await settled(provider, db, 0)
    await pool.close()
    for i in range(3):
        await provider.deprovision(f"pool-f{i}")


async def test_an_error_closes_the_session(provider: PostgresProvider) -> None:
    db = dbname(await provider.provision("pool-g", "essential-0"))
    with pytest.raises(psycopg.errors.UndefinedTable):
        async with provider.cluster.admin(db) as conn:
            await conn.execute("SELECT * FROM no_such_table")
    assert provider.cluster.pool.idle_count(db) == 0
    await provider.deprovision("pool-g")
