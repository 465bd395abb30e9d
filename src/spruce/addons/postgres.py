"""Heroku Postgres (heroku-postgresql): one database and role per add-on in a shared cluster.

Apps outside a space share the platform's cluster (<home>/addons/postgres/cluster). A
space's app's database is served by its region's own cluster, whose data directory, TLS
files, log and backups are under the region's data root
(<home>/regions/<region>/addons/postgres): data residency. A region's cluster is made with
its first database and started whenever one of its add-ons is.

State lives in <home>/addons/postgres/state.json (mode 0600): each cluster's port and
superuser password, and per add-on the plan, role, password, database name and region.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
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
from spruce.addons.pgcluster import PostgresCluster
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
        self._state.setdefault("regions", {})  # region name -> that region's cluster state
        self._state.setdefault("addons", {})
        self._log = log
        self.host = host
        self._on_config_changed = on_config_changed
        self._cluster_args: dict[str, Any] = {
            "bindir": postgres_bindir,
            "ready_timeout": ready_timeout,
            "ca": ca,
            "host": host,
        }
        self.cluster = PostgresCluster(self.root, self._state["cluster"], log, **self._cluster_args)
        self._regional: dict[str, PostgresCluster] = {}
        self._lock = asyncio.Lock()
        self.data = PostgresDataOps(self.cluster_of, self._entry, self._ensure_for, host)

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
        port = self.region_cluster(entry.get("region")).port
        return {
            "URL": f"postgres://{entry['user']}:{entry['password']}@{self.host}:"
            f"{port}/{entry['database']}"
        }

    def config(self, addon_id: str) -> dict[str, str]:
        return self._config_from(self._entry(addon_id))

    # -- clusters ------------------------------------------------------------------------

    def region_cluster(self, region: str | None) -> PostgresCluster:
        """The cluster of a region (made on first use), or the platform's for None."""
        if not region:
            return self.cluster
        found = self._regional.get(region)
        if found is None:
            root = self.home / "regions" / region / "addons" / "postgres"
            root.mkdir(parents=True, exist_ok=True)
            state = self._state["regions"].setdefault(region, {})
            found = PostgresCluster(root, state, self._log, **self._cluster_args)
            self._regional[region] = found
        return found

    def cluster_of(self, addon_id: str) -> PostgresCluster:
        """The cluster that serves the add-on's database (the platform's for an unknown id:
        callers look the add-on up first)."""
        return self.region_cluster(self._state["addons"].get(addon_id, {}).get("region"))

    def clusters(self) -> list[PostgresCluster]:
        """Every cluster made so far: the platform's and each region's."""
        for region in self._state["regions"]:
            self.region_cluster(region)
        return [self.cluster, *self._regional.values()]

    async def _ensure_for(self, addon_id: str) -> None:
        await self._ensure_cluster(self._entry(addon_id).get("region"))

    async def _ensure_cluster(self, region: str | None = None) -> None:
        cluster = self.region_cluster(region)
        if cluster.running:
            return
        changed = await cluster.start()
        if not cluster.state.get("hardened"):
            # add-on roles reach their own database only, not the maintenance ones
            async with cluster.admin() as conn:
                await conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
                await conn.execute("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC")
            cluster.state["hardened"] = True
        served = {
            addon_id: entry
            for addon_id, entry in self._state["addons"].items()
            if (entry.get("region") or None) == (region or None)
        }
        for entry in served.values():
            if not entry.get("statistics"):
                # databases made before pg_stat_statements was preloaded get it now
                await self._add_statistics(entry)
                entry["statistics"] = True
        self._save()
        if changed:
            self._log("postgres", "the cluster's port was taken by another program; URLs changed")
            if self._on_config_changed is not None:
                for addon_id, entry in served.items():
                    result = self._on_config_changed(addon_id, self._config_from(entry))
                    if result is not None:
                        await result

    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        regions: set[str] = set()
        for addon_id in addon_ids_to_run:
            entry = self._state["addons"].get(addon_id)
            if entry is None:
                self._log(addon_id, "no Postgres database for this add-on; not started")
            else:
                regions.add(entry.get("region") or "")
        for region in sorted(regions):
            await self._ensure_cluster(region or None)

    async def stop(self) -> None:
        for cluster in self.clusters():
            await cluster.stop()

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
            await self._ensure_cluster(region)
            entry = {
                "plan": plan.name,
                "user": "u" + secrets.token_hex(7),
                "database": "d" + secrets.token_hex(7),
                "password": "p" + secrets.token_hex(32),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            if region:  # served by the region's own cluster, its files on the region's root
                entry["region"] = region
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
        async with self._cluster_for(entry).admin() as conn:
            verifier = await self._verifier(conn, entry)
            await conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
                    user, sql.Literal(verifier), sql.Literal(plan.limits["connections"])
                )
            )
            await conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, user))
            await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            await conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db, user))
        await self._add_statistics(entry)
        entry["statistics"] = True

    async def _add_statistics(self, entry: dict[str, Any]) -> None:
        """pg_stat_statements in the database, and Heroku's `_heroku.pg_stat_statements_reset()`
        (what `pg:outliers --reset` calls on Essential plans): it resets the role's own
        statistics in its own database, nothing else."""
        user = sql.Identifier(entry["user"])
        async with self._cluster_for(entry).admin(entry["database"]) as conn:
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

    def _cluster_for(self, entry: dict[str, Any]) -> PostgresCluster:
        return self.region_cluster(entry.get("region"))

    async def _drop_database(self, entry: dict[str, Any]) -> None:
        cluster = self._cluster_for(entry)
        await cluster.release(entry["database"])
        async with cluster.admin() as conn:
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
            await self._ensure_for(addon_id)
            backups = self.data.backups_dir(addon_id)
            await self._drop_database(entry)
            del self._state["addons"][addon_id]
            self._save()
            shutil.rmtree(backups, ignore_errors=True)

    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        """addons:upgrade: the new plan's connection limit applies to new sessions."""
        plan = self.plan(plan_name)
        async with self._lock:
            entry = self._entry(addon_id)
            await self._ensure_for(addon_id)
            async with self._cluster_for(entry).admin() as conn:
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
            await self._ensure_for(addon_id)
            new = dict(entry, password="p" + secrets.token_hex(32))
            async with self._cluster_for(entry).admin() as conn:
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
        cluster = self._cluster_for(entry)
        if not cluster.running:
            return lines + [("Status", "Unavailable"), ("Created", entry["created"])]
        async with cluster.admin(entry["database"]) as conn:
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
        async with self._cluster_for(entry).admin(entry["database"]) as conn:
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
