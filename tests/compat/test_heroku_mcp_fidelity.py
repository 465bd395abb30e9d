"""Heroku's MCP server's data and one-off tools against Spruce, each checked against the
platform's state: deploy_one_off_dyno with `sources` (written with mktemp in the dyno's
/tmp), its exit status, and pg_psql, pg_ps, pg_locks, pg_kill, pg_outliers on a real
Postgres add-on (the tools run Heroku's CLI, which resolves DATABASE_URL through
/actions/addon-attachments/resolve with Accept-Inclusion, then runs psql).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from compat_support import HerokuCLI
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from support import REPO, RunningPlatform, wait_for

HARNESS = Path(__file__).parent / "mcp_harness"
RUN_EXIT = "]: Process exited with status {}"


def server_params(heroku: HerokuCLI) -> StdioServerParameters:
    server = heroku.bin_dir.parent / "@heroku" / "mcp-server" / "bin" / "heroku-mcp-server.mjs"
    env = dict(heroku.env)
    env["PATH"] = f"{HARNESS}{os.pathsep}{env['PATH']}"
    env["MCP_SERVER_REQUEST_TIMEOUT"] = "60000"
    return StdioServerParameters(
        command="node", args=["--import", str(HARNESS / "register.mjs"), str(server)], env=env
    )


def text(result: Any) -> str:
    body = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    assert not getattr(result, "isError", False), body
    return body


class Server:
    """One MCP session for the module (the server and its `heroku repl` start once), held
    on a loop in a thread of its own so that tests call tools synchronously."""

    def __init__(self, params: StdioServerParameters) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stop = asyncio.Event()
        self._ready: concurrent.futures.Future[ClientSession] = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._run(params), self.loop)
        self.session = self._ready.result(120)

    async def _run(self, params: StdioServerParameters) -> None:
        try:
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    self._ready.set_result(s)
                    await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    def call(self, tool: str, args: dict[str, Any]) -> str:
        fut = asyncio.run_coroutine_threadsafe(self.session.call_tool(tool, args), self.loop)
        return text(fut.result(240))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._main.result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def app(
    heroku: HerokuCLI, platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A deployed app (one-offs need a release) with a Postgres database."""
    name = f"mcpf-{uuid.uuid4().hex[:6]}"
    repo = tmp_path_factory.mktemp("mcpf") / name
    shutil.copytree(REPO / "examples" / "apps" / "release-phase", repo)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        heroku.git(*args, cwd=repo)
    heroku("apps:create", name)
    heroku("git:remote", "-a", name, cwd=repo)
    assert "Released v" in heroku.git("push", "heroku", "main", cwd=repo).stderr
    heroku("addons:create", "heroku-postgresql:essential-0", "-a", name)
    return name


@pytest.fixture(scope="module")
def mcp(heroku: HerokuCLI) -> Iterator[Server]:
    server = Server(server_params(heroku))
    yield server
    server.close()


@pytest.fixture(scope="module")
def database_url(platform: RunningPlatform, app: str) -> str:
    return str(platform.client().get(f"/apps/{app}/config-vars").json()["DATABASE_URL"])


def logs(heroku: HerokuCLI, app: str) -> str:
    """The one-offs' (run.N) lines of the app's log."""
    out = heroku("logs", "-a", app, "-n", "1500").stdout
    return "\n".join(line for line in out.splitlines() if "heroku[run." in line)


def test_deploy_one_off_dyno_with_sources(
    mcp: Server, heroku: HerokuCLI, platform: RunningPlatform, app: str
) -> None:
    sources = [
        {"relativePath": "job.py", "contents": "import os\nprint('sum', 2 + 3, os.getcwd())\n"},
        {"relativePath": "data.txt", "contents": "it's data\n"},
    ]
    out = mcp.call(
        "deploy_one_off_dyno",
        {"name": app, "command": "python3 job.py && cat data.txt && id -u", "sources": sources},
    )
    # The sources were written (mktemp -d in the dyno's /tmp, as the dyno's user) and run.
    assert "sum 5 /tmp/" in out, out
    assert "it's data" in out
    assert "Permission denied" not in out
    uid = out.split("it's data")[1].split()[0]
    assert uid.isdigit() and (int(uid) != 0 or os.geteuid() != 0)
    # The platform ran it as a one-off (size basic, as the tool asks) that ended with 0.
    wait_for(lambda: RUN_EXIT.format(0) in logs(heroku, app), 30, what="the one-off's exit")
    assert "TEMP_DIR=$(mktemp -d)" in logs(heroku, app)
    dynos = platform.client().get(f"/apps/{app}/dynos").json()
    assert not [d for d in dynos if d["type"] == "run" and d["state"] == "up"], dynos


def test_deploy_one_off_dyno_exit_status(mcp: Server, heroku: HerokuCLI, app: str) -> None:
    """Heroku's rendezvous sends no `[exit N]` (the server reports 0 for any status there);
    Spruce's session ends with the CLI's own status line, which the tool's text carries."""
    out = mcp.call("deploy_one_off_dyno", {"name": app, "command": "echo failing; exit 3"})
    assert "failing" in out
    assert "heroku-command-exit-status: 3" in out, out
    assert "[exit" not in out
    wait_for(lambda: RUN_EXIT.format(3) in logs(heroku, app), 30, what="status 3")


def test_pg_psql_writes_what_the_database_holds(mcp: Server, app: str, database_url: str) -> None:
    marker = uuid.uuid4().hex[:8]
    out = mcp.call(
        "pg_psql",
        {
            "app": app,
            "command": f"CREATE TABLE IF NOT EXISTS notes (body text); "
            f"INSERT INTO notes VALUES ('{marker}'); SELECT count(*) AS n FROM notes",
        },
    )
    assert "INSERT 0 1" in out or " n " in out, out
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT body FROM notes WHERE body = %s", (marker,)).fetchall()
    assert rows == [(marker,)]
    # The same database by each name Heroku's CLI takes.
    for database in ("DATABASE", f"{app}::DATABASE_URL"):
        out = mcp.call(
            "pg_psql",
            {"app": app, "database": database, "command": f"SELECT '{marker}-again' AS probe"},
        )
        assert f"{marker}-again" in out, (database, out)


class Backend:
    """A connection of our own, held busy in a thread (a long query or a held lock)."""

    def __init__(self, url: str, setup: str, sql: str) -> None:
        self.conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
        if setup:
            self.conn.execute(setup)
        self.pid = int(self.conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(sql,), daemon=True)
        self.thread.start()

    def _run(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except BaseException as e:  # the kill we are testing for
            self.error = e

    def close(self) -> None:
        try:
            self.conn.cancel()
        except Exception:
            pass
        self.thread.join(10)
        self.conn.close()


@pytest.fixture
def sleeper(database_url: str) -> Iterator[Backend]:
    b = Backend(database_url, "", "SELECT pg_sleep(120) /* mcp-sleeper */")
    yield b
    b.close()


def _active(database_url: str, pid: int) -> bool:
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return bool(row.fetchone()[0])  # type: ignore[index]


def test_pg_ps_pg_locks_pg_kill(mcp: Server, app: str, database_url: str, sleeper: Backend) -> None:
    wait_for(lambda: _active(database_url, sleeper.pid), 10, what="sleeper running")
    out = mcp.call("pg_ps", {"app": app})
    assert "mcp-sleeper" in out and str(sleeper.pid) in out, out

    with psycopg.connect(database_url, connect_timeout=10) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS locked_things (x int)")
        setup.commit()
    holder = psycopg.connect(database_url, connect_timeout=10)
    try:
        holder.execute("LOCK TABLE locked_things IN EXCLUSIVE MODE")
        holder_pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        out = mcp.call("pg_locks", {"app": app})
        assert "locked_things" in out and str(holder_pid) in out, out
    finally:
        holder.rollback()
        holder.close()

    out = mcp.call("pg_kill", {"app": app, "pid": sleeper.pid, "force": True})
    assert "pg_terminate_backend" in out and "\n t" in out, out
    wait_for(lambda: not _active(database_url, sleeper.pid), 10, what="backend ended")
    sleeper.thread.join(10)
    assert sleeper.error is not None


def test_pg_outliers_lists_queries_run(mcp: Server, app: str, database_url: str) -> None:
    # The slowest statements of this role lead the list (the tool's default: the top 10).
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        for _ in range(2):
            conn.execute("SELECT pg_sleep(%s) AS outlier_probe", (0.4,))
    out = mcp.call("pg_outliers", {"app": app})
    # pg_stat_statements (normalised: constants become $1) as the database recorded it.
    assert "total_exec_time" in out and "pg_sleep($1) AS outlier_probe" in out, out


def test_pg_info_credentials_and_backups(
    mcp: Server, platform: RunningPlatform, app: str, database_url: str
) -> None:
    """pg_info, pg_credentials and pg_backups through Heroku's server, each against what
    the platform holds (the data API on the API's port: /client/v11, /postgres/v0)."""
    api = platform.client()
    addon = next(
        a
        for a in api.get(f"/apps/{app}/addons").json()
        if a["addon_service"]["name"] == "heroku-postgresql"
    )
    info = mcp.call("pg_info", {"app": app})
    assert addon["name"] in info and "Plan:        Essential 0" in info, info
    version = api.get(f"/addons/{addon['id']}/actions/info").json()
    assert any("PG Version" in str(row) for row in version) or "PG Version" in info

    creds = mcp.call("pg_credentials", {"app": app})
    assert "default" in creds and "active" in creds, creds
    assert f"{app}::DATABASE" in creds or "DATABASE" in creds, creds
    password = database_url.rsplit("@", 1)[0].rsplit(":", 1)[1]
    assert password not in creds

    assert "No backups" in mcp.call("pg_backups", {"app": app})
    backup = api.post(f"/addons/{addon['id']}/actions/backups").json()
    out = mcp.call("pg_backups", {"app": app})
    number = backup["id"].lstrip("b").zfill(3)
    assert f"b{number}" in out and "Completed" in out, out


def test_pg_maintenance_and_pg_upgrade_are_not_herokus_cli_commands(
    heroku: HerokuCLI, app: str
) -> None:
    """Heroku's server runs `pg:maintenance` and `pg:upgrade`, which its CLI 11 does not
    have (its commands are data:maintenances* and pg:upgrade:*): the tools fail against
    Heroku's platform as against Spruce, waiting for Heroku's server. Checked on a server
    of their own with a short command timeout (the REPL waits it out)."""
    params = server_params(heroku)
    assert params.env is not None
    params.env["MCP_SERVER_REQUEST_TIMEOUT"] = "5000"
    server = Server(params)
    try:
        for tool, args in (
            ("pg_maintenance", {"app": app}),
            ("pg_upgrade", {"app": app, "version": "17", "confirm": app}),
        ):
            out = server.call(tool, args)
            assert f'"{tool.replace("_", ":")}" is not a valid command' in out, out
    finally:
        server.close()
