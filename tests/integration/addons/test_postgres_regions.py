"""A PostgreSQL server per region: a space's app's database is served by its region's own
cluster, whose files are under the region's data root; the platform's cluster serves the rest."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio

from spruce.addons.postgres import PostgresProvider

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(module_home: Path):
    p = PostgresProvider(module_home)
    yield p
    await p.stop()


async def connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


async def test_each_region_has_its_own_server_under_its_root(
    module_home: Path, provider: PostgresProvider
) -> None:
    local = await provider.provision("pg-local", "essential-0")
    north = await provider.provision("pg-north", "essential-0", region="north")
    south = await provider.provision("pg-south", "essential-0", region="south")
    ports = {port_of(c["URL"]) for c in (local, north, south)}
    assert len(ports) == 3, ports  # three servers, one port each
    for region, config in (("north", north), ("south", south)):
        root = module_home / "regions" / region / "addons" / "postgres"
        cluster = provider.cluster_of(f"pg-{region}")
        assert cluster.datadir == root / "cluster" and (root / "cluster" / "PG_VERSION").is_file()
        server = cluster.server
        assert server is not None and server.pid is not None
        argv = cmdline(server.pid)  # the process serving the region runs on its data dir
        assert argv[argv.index("-D") + 1] == str(root / "cluster")
        assert f"port={port_of(config['URL'])}" in argv
        async with await connect(config["URL"]) as conn:
            await conn.execute("CREATE TABLE here (region text)")
            await conn.execute("INSERT INTO here VALUES (%s)", (region,))
            cur = await conn.execute("SELECT datname FROM pg_database WHERE datistemplate = false")
            # the region's server holds only its own databases
            names = {r[0] for r in await cur.fetchall()} - {"postgres"}
            assert names == {provider._entry(f"pg-{region}")["database"]}
    assert provider.cluster.datadir == module_home / "addons" / "postgres" / "cluster"
    local_db = provider._entry("pg-local")["database"]
    north_files = [str(p) for p in (module_home / "regions" / "north").rglob("*")]
    assert not any(provider._entry("pg-south")["database"] in f for f in north_files)
    assert local_db not in " ".join(north_files)


async def test_pg_actions_work_against_a_regions_server(
    module_home: Path, provider: PostgresProvider
) -> None:
    config = await provider.provision("pg-ops", "essential-0", region="north")
    async with await connect(config["URL"]) as conn:
        await conn.execute("CREATE TABLE widgets (name text)")
        await conn.execute("INSERT INTO widgets VALUES ('gear')")
    backup = await provider.data.capture_backup("pg-ops")
    root = module_home / "regions" / "north" / "addons" / "postgres"
    assert Path(backup.path).is_relative_to(root / "backups")
    async with await connect(config["URL"]) as conn:
        await conn.execute("DROP TABLE widgets")
    await provider.data.restore_backup("pg-ops", backup.id)
    result = await provider.data.query("pg-ops", "SELECT name FROM widgets", 5)
    assert result.rows == (("gear",),)
    async with await connect(new_url := config["URL"]) as session:
        await session.execute("SELECT 1")
        users = {s["user"] for s in await provider.data.ps("pg-ops")}
        assert new_url.split("//")[1].split(":")[0] in users  # pg:ps sees the region's session
    psql = provider.data.psql("pg-ops")
    assert psql.port == port_of(config["URL"])
    info = dict(await provider.info("pg-ops"))
    assert info["Status"] == "Available" and info["Database"] in config["URL"]
    new = await provider.reset_credentials("pg-ops")
    assert port_of(new["URL"]) == port_of(config["URL"]) and new["URL"] != config["URL"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await connect(config["URL"])
    async with await connect(new["URL"]) as conn:
        cur = await conn.execute("SELECT count(*) FROM widgets")
        assert await cur.fetchone() == (1,)
    await provider.deprovision("pg-ops")
    assert not (root / "backups" / "pg-ops").exists()


async def test_a_regions_crashed_server_is_restarted(module_home: Path) -> None:
    events: list[tuple[str, str]] = []
    p = PostgresProvider(module_home / "crash", log=lambda a, m: events.append((a, m)))
    try:
        config = await p.provision("pg-c", "essential-0", region="east")
        server = p.cluster_of("pg-c").server
        assert server is not None and server.pid is not None
        first = server.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            server.pid != first and any("restarted" in m for _, m in events)
        ):
            await asyncio.sleep(0.1)
        assert server.pid != first and alive(server.pid or 0)
        async with await connect(config["URL"]) as conn:
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    finally:
        await p.stop()


async def test_regions_data_survives_a_restart_and_a_dead_platform() -> None:
    """A platform killed with its region's server running: the next one replaces the
    orphaned server and finds the row written before."""
    home = Path(tempfile.mkdtemp(prefix="spruce-pg-regions-"))
    script = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "import psycopg\n"
        "from spruce.addons.postgres import PostgresProvider\n"
        "async def main():\n"
        "    p = PostgresProvider(Path(sys.argv[1]))\n"
        "    c = await p.provision('pg-r', 'essential-0', region='north')\n"
        "    async with await psycopg.AsyncConnection.connect(c['URL'], autocommit=True) as k:\n"
        "        await k.execute('CREATE TABLE kept AS SELECT 7 AS answer')\n"
        "    print(p.cluster_of('pg-r').server.pid, flush=True)\n"
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
        await p.start(["pg-r"])
        assert not p.cluster.running  # the platform's own cluster was not needed
        server = p.cluster_of("pg-r").server
        assert server is not None and server.pid != orphan
        assert not alive(orphan)  # the orphaned server was ended
        async with await connect(p.config("pg-r")["URL"]) as conn:
            cur = await conn.execute("SELECT answer FROM kept")
            assert await cur.fetchone() == (7,)
    finally:
        await p.stop()
        shutil.rmtree(home, ignore_errors=True)
