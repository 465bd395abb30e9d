"""Real PostgreSQL add-ons: one cluster per module, databases per add-on, restarts, backups."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio

from spruce.addons.base import AddonError, UnknownPlanError
from spruce.addons.pgops import BackupError
from spruce.addons.postgres import PostgresProvider

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]


@pytest.fixture(scope="module")
def home(module_home: Path) -> Path:
    return module_home


@pytest.fixture(scope="module")
def events() -> list[tuple[str, str]]:
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(home: Path, events: list[tuple[str, str]]):
    p = PostgresProvider(home, log=lambda a, m: events.append((a, m)))
    yield p
    await p.stop()


async def connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)


async def test_provision_write_restart_read(home: Path, provider: PostgresProvider) -> None:
    config = await provider.provision("pg-1", "essential-0")
    assert list(config) == ["URL"]
    url = config["URL"]
    assert url.startswith("postgres://u") and "@127.0.0.1:" in url
    async with await connect(url) as conn:
        await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        await conn.execute("INSERT INTO notes (body) VALUES ('kept across restarts')")
        cur = await conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == (20,)
    await provider.stop()
    assert not provider.cluster.running

    again = PostgresProvider(home)
    try:
        await again.start(["pg-1"])
        assert again.config("pg-1") == config  # same port, same credentials
        async with await connect(url) as conn:
            cur = await conn.execute("SELECT body FROM notes")
            assert await cur.fetchall() == [("kept across restarts",)]
    finally:
        await again.stop()
    await provider.start(["pg-1"])
    info = dict(await provider.info("pg-1"))
    assert info["Plan"] == "Essential 0"
    assert info["Status"] == "Available"
    assert info["Connections"] == "0/20"
    assert info["Tables"] == "1/4000"
    assert info["PG Version"].startswith("15")
    assert re.fullmatch(r"\d+(\.\d)? MB / 1 GB \(0\.\d\d%\)", info["Data Size"])


async def test_databases_are_isolated(provider: PostgresProvider) -> None:
    a = await provider.provision("pg-iso-a", None)
    b = await provider.provision("pg-iso-b", "essential-1")
    other_db = b["URL"].rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        await connect(a["URL"].rsplit("/", 1)[0] + "/" + other_db)
    for maintenance_db in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            await connect(a["URL"].rsplit("/", 1)[0] + "/" + maintenance_db)
    await provider.deprovision("pg-iso-a")
    await provider.deprovision("pg-iso-b")


async def test_reset_credentials(provider: PostgresProvider) -> None:
    old = await provider.provision("pg-2", "essential-0")
    session = await connect(old["URL"])
    new = await provider.reset_credentials("pg-2")
    assert new["URL"] != old["URL"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await connect(old["URL"])
    async with await connect(new["URL"]) as conn:
        await conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):  # the old session was terminated
        await session.execute("SELECT 1")
    await session.close()


async def test_backup_capture_drop_restore(provider: PostgresProvider) -> None:
    config = await provider.provision("pg-3", "essential-0")
    async with await connect(config["URL"]) as conn:
        await conn.execute("CREATE TABLE widgets (name text)")
        await conn.execute("INSERT INTO widgets VALUES ('sprocket'), ('gear')")
    backup = await provider.data.capture_backup("pg-3")
    assert backup.id == "b001" and backup.size > 0
    assert Path(backup.path) == provider.data.backup_path("pg-3", "b001")
    assert Path(backup.path).read_bytes()[:5] == b"PGDMP"
    assert [b.id for b in provider.data.list_backups("pg-3")] == ["b001"]
    async with await connect(config["URL"]) as conn:
        await conn.execute("DROP TABLE widgets")
        await conn.execute("CREATE TABLE scratch (x int)")
    await provider.data.restore_backup("pg-3", "b001")
    async with await connect(config["URL"]) as conn:
        cur = await conn.execute("SELECT name FROM widgets ORDER BY name")
        assert await cur.fetchall() == [("gear",), ("sprocket",)]
    second = await provider.data.capture_backup("pg-3")
    assert second.id == "b002"
    # restore from a path works too (e.g. a download from another app)
    await provider.data.restore_backup("pg-3", Path(backup.path))
    with pytest.raises(BackupError, match="b009"):
        await provider.data.restore_backup("pg-3", "b009")
    password = config["URL"].split(":")[2].split("@")[0]
    with pytest.raises(BackupError) as err:
        await provider.data.restore_backup("pg-3", Path(__file__))  # not a dump
    assert password not in str(err.value)
    await provider.deprovision("pg-3")
    assert not provider.data.backups_dir("pg-3").exists()


async def test_ps_kill_locks(provider: PostgresProvider) -> None:
    config = await provider.provision("pg-4", "essential-0")
    other = await provider.provision("pg-4b", "essential-0")
    holder = await psycopg.AsyncConnection.connect(config["URL"])
    await holder.execute("CREATE TABLE t (x int)")
    await holder.commit()
    await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # transaction stays open
    sleeper = await connect(config["URL"])
    sleeper_pid = sleeper.info.backend_pid
    sleep_task = asyncio.create_task(sleeper.execute("SELECT pg_sleep(30)"))
    try:
        for _ in range(100):
            sessions = await provider.data.ps("pg-4")
            if any(s["pid"] == sleeper_pid and "pg_sleep" in s["query"] for s in sessions):
                break
            await asyncio.sleep(0.05)
        assert any(s["pid"] == sleeper_pid and s["state"] == "active" for s in sessions)
        assert {s["pid"] for s in sessions} >= {holder.info.backend_pid, sleeper_pid}
        locks = await provider.data.locks("pg-4")
        assert any(
            lk["pid"] == holder.info.backend_pid
            and lk["relname"] == "t"
            and lk["mode"] == "AccessExclusiveLock"
            for lk in locks
        )
        # a session of another add-on is out of reach
        with pytest.raises(AddonError, match="no session"):
            await provider.data.kill("pg-4b", sleeper_pid)
        assert await provider.data.kill("pg-4", sleeper_pid) is True  # cancel the query
        with pytest.raises(psycopg.errors.QueryCanceled):
            await sleep_task
        await sleeper.execute("SELECT 1")  # cancel keeps the session
        assert await provider.data.kill("pg-4", sleeper_pid, force=True) is True
        with pytest.raises(psycopg.OperationalError):
            await sleeper.execute("SELECT 1")
    finally:
        await sleeper.close()
        await holder.close()
    del other
    await provider.deprovision("pg-4")
    await provider.deprovision("pg-4b")


async def test_psql_params(provider: PostgresProvider) -> None:
    config = await provider.provision("pg-5", "essential-0")
    cmd = provider.data.psql("pg-5")
    password = config["URL"].split(":")[2].split("@")[0]
    assert password not in " ".join(cmd.argv)
    proc = await asyncio.create_subprocess_exec(
        *cmd.argv,
        "-Atc",
        "SELECT current_database()",
        env={**os.environ, **cmd.env},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert out.decode().strip() == config["URL"].rsplit("/", 1)[1]
    await provider.deprovision("pg-5")


async def test_unknown_plan_and_deprovision(provider: PostgresProvider) -> None:
    with pytest.raises(UnknownPlanError, match="essential-0, essential-1"):
        await provider.provision("pg-6", "hobby-dev")
    assert "pg-6" not in provider.addon_ids()
    config = await provider.provision("pg-6", "standard-0")
    async with await connect(config["URL"]) as conn:
        cur = await conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == (120,)
    await provider.change_plan("pg-6", "standard-2")
    async with await connect(config["URL"]) as conn:
        cur = await conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == (400,)
    await provider.deprovision("pg-6")
    assert "pg-6" not in provider.addon_ids()
    with pytest.raises(psycopg.OperationalError):
        await connect(config["URL"])
    admin = provider.cluster.conninfo()
    async with await psycopg.AsyncConnection.connect(**admin) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s",
            (config["URL"].rsplit("/", 1)[1],),
        )
        assert await cur.fetchone() == (0,)


async def test_no_secrets_in_logs(
    home: Path, provider: PostgresProvider, events: list[tuple[str, str]]
) -> None:
    config = await provider.provision("pg-7", "essential-0")
    await provider.reset_credentials("pg-7")
    secrets = [
        provider.config("pg-7")["URL"].split(":")[2].split("@")[0],
        config["URL"].split(":")[2].split("@")[0],
        provider.cluster.state["admin_password"],
    ]
    log = (home / "addons" / "postgres" / "postgres.log").read_text()
    log += "\n".join(m for _, m in events)
    for s in secrets:
        assert s not in log
    await provider.deprovision("pg-7")


async def test_crashed_cluster_is_restarted(
    provider: PostgresProvider, events: list[tuple[str, str]]
) -> None:
    config = await provider.provision("pg-9", "essential-0")
    async with await connect(config["URL"]) as conn:
        await conn.execute("CREATE TABLE t AS SELECT 1 AS one")
    server = provider.cluster.server
    assert server is not None and server.pid is not None
    first = server.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.pid != first and any("restarted" in m for _, m in events):
            break
        await asyncio.sleep(0.1)
    assert any(a == "postgres" and "exited with status -9" in m for a, m in events)
    async with await connect(config["URL"]) as conn:
        cur = await conn.execute("SELECT one FROM t")
        assert await cur.fetchone() == (1,)
    await provider.deprovision("pg-9")


async def test_cluster_orphaned_by_a_dead_platform_is_replaced() -> None:
    home = Path(tempfile.mkdtemp(prefix="spruce-addons-"))
    script = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "import psycopg\n"
        "from spruce.addons.postgres import PostgresProvider\n"
        "async def main():\n"
        "    p = PostgresProvider(Path(sys.argv[1]))\n"
        "    c = await p.provision('pg-8', 'essential-0')\n"
        "    async with await psycopg.AsyncConnection.connect(c['URL'], autocommit=True) as k:\n"
        "        await k.execute('CREATE TABLE kept AS SELECT 42 AS answer')\n"
        "    print(p.cluster.server.pid, flush=True)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    src = str(Path(__file__).resolve().parents[3] / "src")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(home),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": src},
    )
    out, _ = await proc.communicate()
    orphan = int(out.strip())
    os.kill(orphan, 0)
    p = PostgresProvider(home)
    try:
        await p.start(["pg-8"])
        assert p.cluster.server is not None and p.cluster.server.pid != orphan
        async with await connect(p.config("pg-8")["URL"]) as conn:
            cur = await conn.execute("SELECT answer FROM kept")
            assert await cur.fetchone() == (42,)
    finally:
        await p.stop()
        shutil.rmtree(home, ignore_errors=True)
