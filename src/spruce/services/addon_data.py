"""The data actions on add-ons (redis:*, pg:*): info, credentials, settings, backups, ps.

Which add-on offers which action is the provider's capability (`key_value_store()`,
`postgres()`), checked here once; the adapters never ask a provider what it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .addons import Addons
from .errors import InvalidParams, NotFound
from .model import AddonError, Backup, CliCommand, InvalidSettingError, QueryResult
from .ports import KeyValueStoreOps, PostgresOps
from .views import AddonInfo, AddonView, DataConnection, UserView


def _connection(cmd: CliCommand) -> DataConnection:
    return DataConnection(
        tuple(cmd.argv), dict(cmd.env), cmd.host, cmd.port, cmd.user, cmd.database
    )


class AddonData:
    def __init__(self, addons: Addons) -> None:
        self.addons = addons

    def _kvs(self, addon: AddonView) -> KeyValueStoreOps:
        ops = self.addons.catalog.provider(addon.service.name).key_value_store()
        if ops is None:
            raise InvalidParams(f"{addon.name} is not a Key-Value Store.")
        return ops

    def _pg(self, addon: AddonView) -> PostgresOps:
        ops = self.addons.catalog.provider(addon.service.name).postgres()
        if ops is None:
            raise InvalidParams(f"{addon.name} is not a Postgres database.")
        return ops

    async def info(self, addon: AddonView) -> AddonInfo:
        try:
            pairs = await self.addons.catalog.provider(addon.service.name).info(addon.id)
        except AddonError as e:
            raise InvalidParams(str(e)) from None
        url = self.addons.config_values(addon.id).get("URL", "")
        return AddonInfo(addon.name, addon.plan.name, tuple(pairs), url)

    def settings(self, addon: AddonView) -> dict[str, Any]:
        """The Key-Value Store's settings (maxmemory_policy, timeout, notify_keyspace_events)."""
        return self._kvs(addon).settings(addon.id)

    async def stats_reset(self, addon: AddonView) -> None:
        """`pg:stats-reset`: the database's pg_stat_statements and table statistics."""
        await self._pg(addon).stats_reset(addon.id)

    async def reset_credentials(self, actor: UserView, addon: AddonView) -> AddonView:
        values = await self.addons.catalog.provider(addon.service.name).reset_credentials(addon.id)
        return self.addons.apply_config(
            actor, addon.id, values, "Update {name} by credential rotation"
        )

    def connection(self, addon: AddonView) -> DataConnection:
        provider = self.addons.catalog.provider(addon.service.name)
        kvs, pg = provider.key_value_store(), provider.postgres()
        if kvs is not None:
            return _connection(kvs.cli(addon.id))
        if pg is not None:
            return _connection(pg.psql(addon.id))
        raise InvalidParams(f"{addon.name} has no client connection.")

    # -- Key-Value Store ---------------------------------------------------------------
    async def redis_settings(self, addon: AddonView, changes: dict[str, Any]) -> dict[str, Any]:
        ops = self._kvs(addon)
        try:
            if changes.get("maxmemory_policy") is not None:
                await ops.set_maxmemory_policy(addon.id, str(changes["maxmemory_policy"]))
            if changes.get("timeout") is not None:
                t = changes["timeout"]
                if isinstance(t, bool) or not isinstance(t, int | str) or not str(t).isdigit():
                    raise InvalidParams("timeout must be a whole number of seconds.")
                await ops.set_timeout(addon.id, int(t))
            if changes.get("notify_keyspace_events") is not None:
                await ops.set_keyspace_notifications(
                    addon.id, str(changes["notify_keyspace_events"])
                )
        except InvalidSettingError as e:
            raise InvalidParams(str(e)) from None
        return ops.settings(addon.id)

    # -- Postgres --------------------------------------------------------------------------
    def backups(self, addon: AddonView) -> list[Backup]:
        return self._pg(addon).list_backups(addon.id)

    async def capture_backup(self, addon: AddonView) -> Backup:
        try:
            return await self._pg(addon).capture_backup(addon.id)
        except AddonError as e:
            raise InvalidParams(str(e)) from None

    async def restore_backup(self, actor: UserView, addon: AddonView, source: object) -> None:
        """Restore `b001` of this database, or `OTHER_ADDON::b001` of another one."""
        if not isinstance(source, str) or not source:
            raise InvalidParams("backup (a backup id such as b001, or ADDON::b001) is required.")
        ops = self._pg(addon)
        src: str | Path = source
        if "::" in source:
            other_name, _, backup_id = source.partition("::")
            other = self.addons.get(actor, other_name)
            src = self.backup_file(other, backup_id)
        try:
            await ops.restore_backup(addon.id, src)
        except AddonError as e:
            raise InvalidParams(str(e)) from None

    async def delete_backup(self, addon: AddonView, backup_id: str) -> None:
        self.backup_file(addon, backup_id)
        await self._pg(addon).delete_backup(addon.id, backup_id)

    def backup_file(self, addon: AddonView, backup_id: str) -> Path:
        try:
            path = self._pg(addon).backup_path(addon.id, backup_id)
        except AddonError as e:
            raise NotFound(str(e)) from None
        if not Path(path).exists():
            raise NotFound(f"Couldn't find that backup ({backup_id}).")
        return Path(path)

    async def ps(self, addon: AddonView) -> list[dict[str, Any]]:
        return await self._pg(addon).ps(addon.id)

    async def locks(self, addon: AddonView) -> list[dict[str, Any]]:
        return await self._pg(addon).locks(addon.id)

    async def kill(self, addon: AddonView, pid: object, force: bool = False) -> int:
        if isinstance(pid, bool) or not isinstance(pid, int | str) or not str(pid).isdigit():
            raise InvalidParams("pid must be a process id.")
        try:
            killed = await self._pg(addon).kill(addon.id, int(pid), force)
        except AddonError:
            killed = False  # no such session on this add-on's database
        if not killed:
            raise NotFound(f"No query with pid {pid} in {addon.name}.")
        return int(pid)

    async def query(
        self, addon: AddonView, statement: object, timeout: float = 60.0
    ) -> QueryResult:
        """pg:psql -c: one statement (or several, ;-separated) as the add-on's own role."""
        if not isinstance(statement, str) or not statement.strip():
            raise InvalidParams("A SQL command is required.")
        try:
            return await self._pg(addon).query(addon.id, statement, timeout)
        except AddonError as e:
            raise InvalidParams(f"{addon.name}: {e}") from None

    def credentials(self, addon: AddonView) -> list[dict[str, Any]]:
        """pg:credentials: the add-on has one credential, `default` (its own role); no
        secrets here, those are in the attached apps' config vars."""
        conn = _connection(self._pg(addon).psql(addon.id))
        return [
            {
                "name": "default",
                "state": "active",
                "user": conn.user,
                "database": conn.database,
                "attachments": [],
            }
        ]

    async def outliers(
        self, addon: AddonView, num: object = 10, reset: bool = False, truncate: bool = False
    ) -> QueryResult:
        """pg:outliers: the statements that took the most time (pg_stat_statements)."""
        if isinstance(num, bool) or not isinstance(num, int | float) or num < 1:
            raise InvalidParams("num must be a positive number.")
        if reset:
            await self.stats_reset(addon)
            return QueryResult("pg_stat_statements reset", (), ())
        query = "left(query, 40)" if truncate else "query"
        statement = (
            f"SELECT interval '1 millisecond' * total_exec_time AS total_exec_time,"
            f" to_char((total_exec_time / sum(total_exec_time) OVER ()) * 100, 'FM90D0')"
            f" || '%' AS prop_exec_time, calls, {query} AS query"
            f" FROM pg_stat_statements"
            f" WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" ORDER BY total_exec_time DESC LIMIT {int(num)}"
        )
        try:
            return await self._pg(addon).query(addon.id, statement, 30.0)
        except AddonError as e:
            if "pg_stat_statements" in str(e):
                raise InvalidParams(
                    f"pg:outliers needs the pg_stat_statements extension, which {addon.name} "
                    f"does not have: {e}"
                ) from None
            raise InvalidParams(f"{addon.name}: {e}") from None
