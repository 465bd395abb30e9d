"""Heroku Postgres (heroku-postgresql): one database and role per add-on in a shared cluster.

State lives in <home>/addons/postgres/state.json (mode 0600): the cluster's port and
superuser password, and per add-on the plan, role, password and database name.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from spruce.addons import pgconf
from spruce.addons.base import (
    AddonLog,
    InvalidSettingError,
    Plan,
    Provider,
    ProvisionError,
    UnknownAddonError,
    _no_log,
)
from spruce.addons.pgcluster import PostgresCluster, grant_traverse
from spruce.addons.pgops import PostgresDataOps
from spruce.addons.runtime import StateFile

GB = 1024**3
TB = 1024 * GB


def _pg_plan(name: str, storage_gb: float, connections: int, default: bool = False) -> Plan:
    limits: dict[str, Any] = {"storage_bytes": int(storage_gb * GB), "connections": connections}
    if name.startswith("essential"):
        limits["tables"] = 4000
    return Plan(name, name.replace("-", " ").title(), limits, default)


PG_PLANS: tuple[Plan, ...] = (
    _pg_plan("essential-0", 1, 20, default=True),
    _pg_plan("essential-1", 10, 20),
    _pg_plan("essential-2", 32, 40),
    _pg_plan("standard-0", 64, 120),
    _pg_plan("standard-2", 256, 400),
    _pg_plan("standard-3", 512, 500),
    _pg_plan("standard-4", 768, 500),
    _pg_plan("standard-5", 1024, 500),
    _pg_plan("standard-6", 1536, 500),
    _pg_plan("standard-7", 2048, 500),
    _pg_plan("standard-8", 3072, 500),
    _pg_plan("standard-9", 4096, 500),
    _pg_plan("premium-0", 64, 120),
    _pg_plan("premium-2", 256, 400),
    _pg_plan("premium-3", 512, 500),
    _pg_plan("premium-4", 768, 500),
    _pg_plan("premium-5", 1024, 500),
    _pg_plan("premium-6", 1536, 500),
    _pg_plan("premium-7", 2048, 500),
    _pg_plan("premium-8", 3072, 500),
    _pg_plan("premium-9", 4096, 500),
)

ConfigChanged = Callable[[str, dict[str, str]], Awaitable[None] | None]


class PostgresProvider(Provider):
    name = "heroku-postgresql"
    aliases = ("spruce-postgres",)
    human_name = "Heroku Postgres"
    color_prefix = "HEROKU_POSTGRESQL"
    config_var_name = "DATABASE"
    plans = PG_PLANS

    def __init__(
        self,
        home: Path,
        *,
        log: AddonLog = _no_log,
        postgres_bindir: str | None = None,
        host: str = "127.0.0.1",
        on_config_changed: ConfigChanged | None = None,
        ready_timeout: float = 90.0,
        ca: pgconf.CertificateSource | None = None,
    ) -> None:
        self.home = Path(home)
        self.root = self.home / "addons" / "postgres"
        self.root.mkdir(parents=True, exist_ok=True)
        self._state_file = StateFile(self.root / "state.json")
        self._state = self._state_file.load()
        self._state.setdefault("cluster", {})
        self._state.setdefault("addons", {})
        self._log = log
        self.host = host
        self._on_config_changed = on_config_changed
        self.cluster = PostgresCluster(
            self.root,
            self._state["cluster"],
            log,
            bindir=postgres_bindir,
            ready_timeout=ready_timeout,
            ca=ca,
            host=host,
        )
        self._lock = asyncio.Lock()
        self.data = PostgresDataOps(
            self.root, self.cluster, self._entry, self._ensure_cluster, host
        )

    def postgres(self) -> PostgresDataOps:
        return self.data

    # -- state -------------------------------------------------------------------------

    def _save(self) -> None:
        self._state_file.save(self._state)

    def addon_ids(self) -> list[str]:
        return sorted(self._state["addons"])

    def _entry(self, addon_id: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = self._state["addons"].get(addon_id)
        if entry is None:
            raise UnknownAddonError(self.name, addon_id)
        return entry

    def _config_from(self, entry: dict[str, Any]) -> dict[str, str]:
        return {
            "URL": f"postgres://{entry['user']}:{entry['password']}@{self.host}:"
            f"{self.cluster.port}/{entry['database']}"
        }

    def config(self, addon_id: str) -> dict[str, str]:
        return self._config_from(self._entry(addon_id))

    # -- cluster -------------------------------------------------------------------------

    async def _ensure_cluster(self) -> None:
        if self.cluster.running:
            return
        changed = await self.cluster.start()
        if not self._state["cluster"].get("hardened"):
            # add-on roles reach their own database only, not the maintenance ones
            async with self.cluster.admin() as conn:
                await conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
                await conn.execute("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC")
            self._state["cluster"]["hardened"] = True
        for entry in self._state["addons"].values():
            if not entry.get("statistics"):
                # databases made before pg_stat_statements was preloaded get it now
                await self._add_statistics(entry)
                entry["statistics"] = True
        self._save()
        if changed:
            self._log("postgres", "the cluster's port was taken by another program; URLs changed")
            if self._on_config_changed is not None:
                for addon_id, entry in self._state["addons"].items():
                    result = self._on_config_changed(addon_id, self._config_from(entry))
                    if result is not None:
                        await result

    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        wanted = [a for a in addon_ids_to_run if a in self._state["addons"]]
        for addon_id in addon_ids_to_run:
            if addon_id not in self._state["addons"]:
                self._log(addon_id, "no Postgres database for this add-on; not started")
        if wanted:
            await self._ensure_cluster()

    async def stop(self) -> None:
        await self.cluster.stop()

    # -- lifecycle -------------------------------------------------------------------------

    async def provision(
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        plan = self.plan(plan_name)
        if options:
            raise InvalidSettingError(
                f"heroku-postgresql takes no options (got {', '.join(sorted(options))})"
            )
        async with self._lock:
            if addon_id in self._state["addons"]:
                raise ProvisionError(f"add-on {addon_id} already exists")
            await self._ensure_cluster()
            entry = {
                "plan": plan.name,
                "user": "u" + secrets.token_hex(7),
                "database": "d" + secrets.token_hex(7),
                "password": "p" + secrets.token_hex(32),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            if region:
                entry["tablespace"] = await self._region_tablespace(region)
            try:
                await self._create_database(entry, plan)
            except BaseException as e:
                with contextlib.suppress(Exception):
                    await self._drop_database(entry)
                if isinstance(e, psycopg.Error):
                    raise ProvisionError(f"could not create the database: {e}") from None
                raise
            self._state["addons"][addon_id] = entry
            self._save()
            return self._config_from(entry)

    async def _verifier(self, conn: psycopg.AsyncConnection[Any], entry: dict[str, Any]) -> str:
        # hashed on our side: the cleartext password never travels in a SQL statement
        raw = conn.pgconn.encrypt_password(
            entry["password"].encode(), entry["user"].encode(), b"scram-sha-256"
        )
        return raw.decode()

    async def _create_database(self, entry: dict[str, Any], plan: Plan) -> None:
        user, db = sql.Identifier(entry["user"]), sql.Identifier(entry["database"])
        async with self.cluster.admin() as conn:
            verifier = await self._verifier(conn, entry)
            await conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
                    user, sql.Literal(verifier), sql.Literal(plan.limits["connections"])
                )
            )
            create = sql.SQL("CREATE DATABASE {} OWNER {}").format(db, user)
            if entry.get("tablespace"):
                create += sql.SQL(" TABLESPACE {}").format(sql.Identifier(entry["tablespace"]))
            await conn.execute(create)
            await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            await conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db, user))
        await self._add_statistics(entry)
        entry["statistics"] = True

    async def _region_tablespace(self, region: str) -> str:
        """A tablespace under the region's data root: a space's app's database files live
        there (one cluster serves every region on this machine)."""
        name = "region_" + re.sub(r"[^a-z0-9_]", "_", region.lower())
        where = self.home / "regions" / region / "addons" / "postgres"
        async with self.cluster.admin() as conn:
            cur = await conn.execute("SELECT 1 FROM pg_tablespace WHERE spcname = %s", (name,))
            if await cur.fetchone() is not None:
                return name
            where.mkdir(parents=True, exist_ok=True)
            where.chmod(0o700)
            uid, gid = self.cluster.owner()
            if uid is not None and gid is not None:
                os.chown(where, uid, gid)
                grant_traverse(where, uid, gid, self._log)
            location = sql.Literal(str(where))
            await conn.execute(
                sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(sql.Identifier(name), location)
            )
        return name

    async def _add_statistics(self, entry: dict[str, Any]) -> None:
        """pg_stat_statements in the database, and Heroku's `_heroku.pg_stat_statements_reset()`
        (what `pg:outliers --reset` calls on Essential plans): it resets the role's own
        statistics in its own database, nothing else."""
        user = sql.Identifier(entry["user"])
        async with self.cluster.admin(entry["database"]) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("CREATE SCHEMA IF NOT EXISTS _heroku")
            await conn.execute(
                "CREATE OR REPLACE FUNCTION _heroku.pg_stat_statements_reset() RETURNS void"
                " LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$"
                " SELECT pg_stat_statements_reset("
                "(SELECT oid FROM pg_roles WHERE rolname = session_user),"
                " (SELECT oid FROM pg_database WHERE datname = current_database()), 0) $$"
            )
            await conn.execute(
                "REVOKE ALL ON FUNCTION _heroku.pg_stat_statements_reset() FROM PUBLIC"
            )
            await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA _heroku TO {}").format(user))
            await conn.execute(
                sql.SQL(
                    "GRANT EXECUTE ON FUNCTION _heroku.pg_stat_statements_reset() TO {}"
                ).format(user)
            )

    async def _drop_database(self, entry: dict[str, Any]) -> None:
        await self.cluster.release(entry["database"])
        async with self.cluster.admin() as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(entry["database"])
                )
            )
            await conn.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(entry["user"]))
            )

    async def deprovision(self, addon_id: str) -> None:
        async with self._lock:
            entry = self._entry(addon_id)
            await self._ensure_cluster()
            await self._drop_database(entry)
            del self._state["addons"][addon_id]
            self._save()
            shutil.rmtree(self.data.backups_dir(addon_id), ignore_errors=True)

    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        """addons:upgrade: the new plan's connection limit applies to new sessions."""
        plan = self.plan(plan_name)
        async with self._lock:
            entry = self._entry(addon_id)
            await self._ensure_cluster()
            async with self.cluster.admin() as conn:
                await conn.execute(
                    sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                        sql.Identifier(entry["user"]), sql.Literal(plan.limits["connections"])
                    )
                )
            entry["plan"] = plan.name
            self._save()

    async def reset_credentials(self, addon_id: str) -> dict[str, str]:
        async with self._lock:
            entry = self._entry(addon_id)
            await self._ensure_cluster()
            new = dict(entry, password="p" + secrets.token_hex(32))
            async with self.cluster.admin() as conn:
                verifier = await self._verifier(conn, new)
                await conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(entry["user"]), sql.Literal(verifier)
                    )
                )
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (entry["user"],),
                )
            self._state["addons"][addon_id] = new
            self._save()
            return self._config_from(new)

    # -- pg:info, pg:psql ----------------------------------------------------------------

    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        entry = self._entry(addon_id)
        plan = self.plan(entry["plan"])
        limits = plan.limits
        lines: list[tuple[str, str]] = [("Plan", plan.human_name)]
        if not self.cluster.running:
            return lines + [("Status", "Unavailable"), ("Created", entry["created"])]
        async with self.cluster.admin(entry["database"]) as conn:
            # Connections: the app's, not the platform's own pooled admin sessions.
            cur = await conn.execute(
                "SELECT current_setting('server_version'),"
                " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND usename IS DISTINCT FROM current_user),"
                " pg_database_size(current_database()),"
                " (SELECT count(*) FROM pg_stat_user_tables),"
                " (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables)"
            )
            row = await cur.fetchone()
            extensions = await _extensions(conn)  # the same session: one backend per call
        assert row is not None
        version, conns, size, tables, rows = row
        lines += [
            ("Status", "Available"),
            ("Connections", f"{conns}/{limits['connections']}"),
            ("PG Version", str(version)),
            ("Created", entry["created"]),
            (
                "Data Size",
                f"{_human(size)} / {_human(limits['storage_bytes'])} "
                f"({100 * size / limits['storage_bytes']:.2f}%)",
            ),
        ]
        if "tables" in limits:
            lines.append(("Tables", f"{tables}/{limits['tables']}"))
        else:
            lines.append(("Tables", str(tables)))
        lines += [
            ("Rows", str(rows)),
            ("Extensions", ", ".join(extensions)),
            ("Fork/Follow", "Unsupported"),
            ("Rollback", "Unsupported"),
            ("Database", entry["database"]),
        ]
        return lines

    async def installed_extensions(self, addon_id: str) -> list[str]:
        entry = self._entry(addon_id)
        async with self.cluster.admin(entry["database"]) as conn:
            return await _extensions(conn)


async def _extensions(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute("SELECT extname FROM pg_extension ORDER BY extname")
    return [str(r[0]) for r in await cur.fetchall()]


def _human(n: int) -> str:
    for unit, size in (("TB", TB), ("GB", GB), ("MB", 1024**2), ("kB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
