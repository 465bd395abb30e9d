"""pg:backups, pg:ps, pg:kill and pg:locks for heroku-postgresql add-ons.

Backups are `pg_dump -Fc` files in <cluster root>/backups/<addon_id>/bNNN.dump (the root is
<home>/addons/postgres, or <home>/regions/<region>/addons/postgres for a space's app) with
a bNNN.json beside each (id, created, size, database). Dumps and restores connect as the
add-on's own role, so they can only ever see and touch that add-on's database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from spruce.addons.base import AddonError, CliCommand
from spruce.addons.runtime import redact
from spruce.services.model import Backup, QueryResult

QUERY_ROW_LIMIT = 1000  # rows handed back by one pg:psql statement (QueryResult.truncated)

if TYPE_CHECKING:
    from spruce.addons.pgcluster import PostgresCluster

BACKUP_ID = re.compile(r"^b(\d{3,})$")
PLATFORM_TOC = re.compile(
    r"\b(EXTENSION - pg_stat_statements|COMMENT - EXTENSION pg_stat_statements"
    r"|SCHEMA - _heroku|\w+ _heroku )"
)


class BackupError(AddonError):
    pass


class PostgresDataOps:
    """pg:* beyond provisioning (services.ports.PostgresOps): backups, ps, locks, kill,
    psql. The provider holds one, sharing its cluster and its add-on records."""

    def __init__(
        self,
        cluster_of: Callable[[str], PostgresCluster],
        entry: Callable[[str], dict[str, Any]],
        ensure_cluster: Callable[[str], Awaitable[None]],
        host: str,
    ) -> None:
        self.cluster_of = cluster_of  # an add-on's cluster: its region's, else the platform's
        self._entry = entry
        self._ensure_cluster = ensure_cluster  # started for the add-on, by its id
        self.host = host

    def psql(self, addon_id: str) -> CliCommand:
        entry = self._entry(addon_id)
        cluster = self.cluster_of(addon_id)
        psql_bin = cluster.bindir / "psql"
        argv = [str(psql_bin) if psql_bin.exists() else "psql"]
        argv += ["-h", self.host, "-p", str(cluster.port)]
        argv += ["-U", entry["user"], "-d", entry["database"]]
        return CliCommand(
            argv,
            {"PGPASSWORD": entry["password"], "PGSSLMODE": "require"},
            self.host,
            cluster.port,
            entry["user"],
            entry["database"],
        )

    # -- backups -------------------------------------------------------------------------

    def backups_dir(self, addon_id: str) -> Path:
        if not addon_id or "/" in addon_id or addon_id.startswith("."):
            raise ValueError(f"invalid add-on id {addon_id!r}")
        # beside the add-on's cluster: a space's app's backups stay in its region
        return self.cluster_of(addon_id).root / "backups" / addon_id

    def list_backups(self, addon_id: str) -> list[Backup]:
        self._entry(addon_id)
        d = self.backups_dir(addon_id)
        out = []
        for meta in sorted(d.glob("b*.json")) if d.exists() else []:
            out.append(Backup(**json.loads(meta.read_text())))
        return out

    def backup_path(self, addon_id: str, backup_id: str) -> Path:
        """The dump file of a backup (`pg:backups:download`)."""
        if not BACKUP_ID.match(backup_id):
            raise BackupError(f"invalid backup id {backup_id!r} (expected e.g. b001)")
        path = self.backups_dir(addon_id) / f"{backup_id}.dump"
        if not path.exists():
            raise BackupError(f"backup {backup_id} not found for add-on {addon_id}")
        return path

    def _client_env(self, entry: dict[str, Any]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "10"}
        env["PGPASSWORD"] = entry["password"]
        env["PGSSLMODE"] = "require"  # add-on roles connect over TLS only
        return env

    def _conn_args(self, entry: dict[str, Any], port: int) -> list[str]:
        return [
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            entry["user"],
            "-d",
            entry["database"],
        ]

    async def _run_client(self, entry: dict[str, Any], what: str, argv: list[str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=self._client_env(entry),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            text = redact(out.decode(errors="replace").strip(), [entry["password"]])
            raise BackupError(f"{what} failed (status {proc.returncode}): {text[-800:]}")

    async def capture_backup(self, addon_id: str) -> Backup:
        """`pg:backups:capture`: a custom-format dump of the add-on's database."""
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        d = self.backups_dir(addon_id)
        d.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in d.glob("b*.dump") if (m := BACKUP_ID.match(p.stem))]
        backup_id = f"b{max(numbers, default=0) + 1:03d}"
        path = d / f"{backup_id}.dump"
        tmp = d / f".{backup_id}.partial"
        argv = [
            str(cluster.bindir / "pg_dump"),
            "-Fc",
            "--exclude-schema=_heroku",
            *self._conn_args(entry, cluster.port),
            "-f",
            str(tmp),
        ]
        try:
            await self._run_client(entry, "pg_dump", argv)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)
        backup = Backup(
            id=backup_id,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            size=path.stat().st_size,
            database=entry["database"],
            addon_id=addon_id,
            path=str(path),
        )
        (d / f"{backup_id}.json").write_text(json.dumps(asdict(backup), indent=2))
        return backup

    async def delete_backup(self, addon_id: str, backup_id: str) -> None:
        path = self.backup_path(addon_id, backup_id)
        path.unlink()
        path.with_suffix(".json").unlink(missing_ok=True)

    async def restore_backup(self, addon_id: str, source: str | Path) -> None:
        """`pg:backups:restore`: from one of this add-on's backup ids or a dump file path.

        Runs in one transaction: a failed restore leaves the database as it was.
        """
        entry = self._entry(addon_id)
        if isinstance(source, str) and BACKUP_ID.match(source):
            path = self.backup_path(addon_id, source)
        else:
            path = Path(source)
            if not path.is_file():
                raise BackupError(f"no backup file at {path}")
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        await cluster.release(entry["database"])
        listing = await self._platform_free_listing(entry, path, cluster)
        argv = [
            str(cluster.bindir / "pg_restore"),
            f"--use-list={listing}",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--exit-on-error",
            *self._conn_args(entry, cluster.port),
            str(path),
        ]
        try:
            await self._run_client(entry, "pg_restore", argv)
        finally:
            listing.unlink(missing_ok=True)

    async def _platform_free_listing(
        self, entry: dict[str, Any], path: Path, cluster: PostgresCluster
    ) -> Path:
        """The dump's table of contents without what the platform keeps in every database
        (pg_stat_statements, the _heroku schema): the role neither owns nor may drop them."""
        proc = await asyncio.create_subprocess_exec(
            str(cluster.bindir / "pg_restore"),
            "--list",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise BackupError(f"not a pg_dump custom-format file: {err.decode()[-400:].strip()}")
        kept = [
            line
            for line in out.decode(errors="replace").splitlines()
            if not PLATFORM_TOC.search(line)
        ]
        listing = cluster.root / "backups" / f".restore-{entry['database']}.list"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("\n".join(kept) + "\n")
        return listing

    # -- pg:ps, pg:kill, pg:locks ----------------------------------------------------------

    async def ps(self, addon_id: str) -> list[dict[str, Any]]:
        """Sessions on the add-on's database (pg_stat_activity), oldest query first; not
        the platform's own admin sessions (pooled, see pgpool), which pg:kill cannot reach."""
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        async with cluster.admin() as conn:
            cur = await conn.execute(
                "SELECT pid, usename, state, application_name, client_addr::text,"
                " extract(epoch FROM now() - query_start)::float8, wait_event IS NOT NULL,"
                " query"
                " FROM pg_stat_activity"
                " WHERE datname = %s AND usename IS DISTINCT FROM current_user"
                " ORDER BY query_start NULLS LAST",
                (entry["database"],),
            )
            rows = await cur.fetchall()
        keys = ("pid", "user", "state", "source", "client_addr", "running_for", "waiting", "query")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def kill(self, addon_id: str, pid: int, force: bool = False) -> bool:
        """`pg:kill`: cancel the session's query, or end the session with force.

        Only sessions on the add-on's own database can be reached.
        """
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        async with cluster.admin() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND datname = %s"
                " AND usename IS DISTINCT FROM current_user",
                (int(pid), entry["database"]),
            )
            if await cur.fetchone() is None:
                raise AddonError(f"no session with pid {pid} on this add-on's database")
            fn = "pg_terminate_backend" if force else "pg_cancel_backend"
            cur = await conn.execute(f"SELECT {fn}(%s)", (int(pid),))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def stats_reset(self, addon_id: str) -> None:
        """`pg:stats-reset`: this database's statement and table statistics, nobody else's."""
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        async with cluster.admin(entry["database"]) as conn:
            await conn.execute(
                "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
                " WHERE datname = current_database()), 0)"
            )
            await conn.execute("SELECT pg_stat_reset()")

    async def locks(self, addon_id: str) -> list[dict[str, Any]]:
        """`pg:locks`: locks other than plain reads held or awaited on the database."""
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        async with cluster.admin(entry["database"]) as conn:
            cur = await conn.execute(
                "SELECT l.pid, c.relname, l.transactionid::text, l.granted, l.mode,"
                " left(a.query, 200), extract(epoch FROM now() - a.query_start)::float8"
                " FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " LEFT JOIN pg_class c ON c.oid = l.relation"
                " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                " AND (l.mode <> 'AccessShareLock' OR NOT l.granted)"
                " AND l.locktype IN ('relation', 'transactionid', 'tuple')"
                " ORDER BY a.query_start",
            )
            rows = await cur.fetchall()
        keys = ("pid", "relname", "transactionid", "granted", "mode", "query_snippet", "age")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- pg:psql without psql ----------------------------------------------------------------

    async def query(self, addon_id: str, statement: str, timeout: float) -> QueryResult:
        """Run SQL as the add-on's own role, in autocommit (as psql -c does), with a
        statement timeout; the role can only reach its own database."""
        entry = self._entry(addon_id)
        await self._ensure_cluster(addon_id)
        cluster = self.cluster_of(addon_id)
        ms = max(1, int(timeout * 1000))
        try:
            conn = await psycopg.AsyncConnection.connect(
                host="127.0.0.1",
                port=cluster.port,
                user=entry["user"],
                password=entry["password"],
                dbname=entry["database"],
                autocommit=True,
                connect_timeout=10,
                options=f"-c statement_timeout={ms}",
            )
        except psycopg.Error as e:
            raise AddonError(redact(str(e).strip(), [entry["password"]])) from None
        try:
            cur = await conn.execute(statement.encode())
            columns: tuple[str, ...] = ()
            rows: list[tuple[Any, ...]] = []
            truncated = False
            if cur.description is not None:
                columns = tuple(c.name for c in cur.description)
                rows = [tuple(r) for r in await cur.fetchmany(QUERY_ROW_LIMIT + 1)]
                truncated = len(rows) > QUERY_ROW_LIMIT
            return QueryResult(
                cur.statusmessage or "", columns, tuple(rows[:QUERY_ROW_LIMIT]), truncated
            )
        except psycopg.Error as e:
            raise AddonError(redact(str(e).strip(), [entry["password"]])) from None
        finally:
            await conn.close()
