"""Key-Value Store (heroku-redis): one supervised redis-server per add-on.

Each add-on gets <home>/addons/redis/<addon_id>/ holding redis.conf (mode 0600: it holds the
password), its TLS key pair, the append-only files and redis.log. Ports, password and settings
live in <home>/addons/redis/state.json so a platform restart brings the same URL back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import secrets
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from cryptography import x509
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from spruce.addons.base import (
    AddonLog,
    CliCommand,
    InvalidSettingError,
    Plan,
    Provider,
    ProvisionError,
    UnknownAddonError,
    _no_log,
)
from spruce.addons.runtime import (
    StateFile,
    SupervisedServer,
    find_redis_server,
    kill_stale,
    port_is_free,
    wait_until,
    write_private,
)
from spruce.certs.ca import InternalCA
from spruce.netutil import free_port

MB = 1024 * 1024
GB = 1024 * MB


def _kvs_plan(name: str, memory: int, connections: int, default: bool = False) -> Plan:
    human = name.replace("-", " ").title()
    return Plan(name, human, {"memory_bytes": memory, "connections": connections}, default)


KVS_PLANS: tuple[Plan, ...] = (
    _kvs_plan("mini", 25 * MB, 20, default=True),
    _kvs_plan("premium-0", 50 * MB, 40),
    _kvs_plan("premium-1", 100 * MB, 80),
    _kvs_plan("premium-2", 250 * MB, 200),
    _kvs_plan("premium-3", 500 * MB, 400),
    _kvs_plan("premium-4", 750 * MB, 700),
    _kvs_plan("premium-5", 1 * GB, 1000),
    _kvs_plan("premium-7", 7 * GB, 10000),
    _kvs_plan("premium-9", 10 * GB, 25000),
    _kvs_plan("premium-10", 25 * GB, 40000),
    _kvs_plan("premium-12", 50 * GB, 65000),
    _kvs_plan("premium-14", 100 * GB, 65000),
)

MAXMEMORY_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "volatile-lru",
    "allkeys-lfu",
    "volatile-lfu",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
)
ADMIN_USER = "spruce-admin"
DEFAULT_TIMEOUT = 300  # seconds an idle client may stay connected, as Heroku's default
KEYSPACE_FLAGS = set("KEg$lshzxetmdnA")

ConfigChanged = Callable[[str, dict[str, str]], Awaitable[None] | None]


def validate_policy(policy: str) -> str:
    if policy not in MAXMEMORY_POLICIES:
        raise InvalidSettingError(
            f"invalid maxmemory policy {policy!r}; valid: {', '.join(MAXMEMORY_POLICIES)}"
        )
    return policy


def validate_timeout(seconds: Any) -> int:
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        raise InvalidSettingError(
            f"timeout must be a whole number of seconds, not {seconds!r}"
        ) from None
    if value < 0 or value > 2**31 - 1:
        raise InvalidSettingError("timeout must be between 0 (never) and 2147483647 seconds")
    return value


def validate_keyspace_flags(flags: str) -> str:
    bad = sorted(set(flags) - KEYSPACE_FLAGS)
    if bad:
        raise InvalidSettingError(
            f"invalid keyspace notification flags {''.join(bad)!r}; "
            f"valid flags: {''.join(sorted(KEYSPACE_FLAGS))}"
        )
    if flags and not set(flags) & set("KE"):
        raise InvalidSettingError("keyspace notification flags need K and/or E to take effect")
    return flags


def render_config(addon_dir: Path, entry: dict[str, Any], plan: Plan) -> str:
    """redis.conf for one add-on (sans-IO so it can be unit tested)."""
    s = entry["settings"]
    lines = [
        "daemonize no",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {entry['port']}",
        f"tls-port {entry['tls_port']}",
        f"tls-cert-file {addon_dir / 'server.pem'}",
        f"tls-key-file {addon_dir / 'server.key'}",
        f"tls-ca-cert-file {addon_dir / 'ca.pem'}",
        "tls-auth-clients no",
        # the app's user may run every command but the server's administration (CONFIG,
        # SHUTDOWN, DEBUG, ACL changes...), as on Heroku; the platform has its own user
        "user default on #" + _sha256(entry["password"]) + " ~* &* +@all -@admin",
        f"user {ADMIN_USER} on #" + _sha256(entry["admin_password"]) + " ~* &* +@all",
        f"dir {addon_dir}",
        f"logfile {addon_dir / 'redis.log'}",
        f"pidfile {addon_dir / 'redis.pid'}",
        "appendonly yes",
        "appendfsync everysec",
        f"maxmemory {plan.limits['memory_bytes']}",
        f"maxclients {plan.limits['connections']}",
        f"maxmemory-policy {s['maxmemory_policy']}",
        f"timeout {s['timeout']}",
        f'notify-keyspace-events "{s["notify_keyspace_events"]}"',
    ]
    return "\n".join(lines) + "\n"


class RedisProvider(Provider):
    name = "heroku-redis"
    aliases = ("spruce-kvs",)
    human_name = "Heroku Key-Value Store"
    color_prefix = "HEROKU_REDIS"
    config_var_name = "REDIS"
    plans = KVS_PLANS

    def __init__(
        self,
        home: Path,
        *,
        log: AddonLog = _no_log,
        ca: InternalCA | None = None,
        redis_server: str | None = None,
        host: str = "127.0.0.1",
        on_config_changed: ConfigChanged | None = None,
        ready_timeout: float = 60.0,
        restart_backoff: float = 0.5,
    ) -> None:
        self.home = Path(home)
        self.root = self.home / "addons" / "redis"
        self._state = StateFile(self.root / "state.json")
        self._log = log
        self._ca = ca
        self._redis_server = redis_server
        self.host = host
        self._on_config_changed = on_config_changed
        self._ready_timeout = ready_timeout
        self._backoff = restart_backoff
        self._servers: dict[str, SupervisedServer] = {}
        self._lock = asyncio.Lock()

    # -- state -------------------------------------------------------------------------

    @property
    def config_keys(self) -> tuple[str, ...]:
        return ("URL", "TLS_URL", "PLAIN_URL")

    def addon_ids(self) -> list[str]:
        return sorted(self._state.load())

    def _entry(self, addon_id: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = self._state.load().get(addon_id)
        if entry is None:
            raise UnknownAddonError(self.name, addon_id)
        return entry

    def _put(self, addon_id: str, entry: dict[str, Any] | None) -> None:
        data = self._state.load()
        if entry is None:
            data.pop(addon_id, None)
        else:
            data[addon_id] = entry
        self._state.save(data)

    def addon_dir(self, addon_id: str) -> Path:
        if not addon_id or "/" in addon_id or addon_id.startswith("."):
            raise ValueError(f"invalid add-on id {addon_id!r}")
        region = self._state.load().get(addon_id, {}).get("region")
        if region:  # an add-on of a space's app: under its region's data root
            return self.home / "regions" / region / "addons" / "redis" / addon_id
        return self.root / addon_id

    def _config_from(self, entry: dict[str, Any]) -> dict[str, str]:
        pw = entry["password"]
        # Heroku writes `rediss://:pass@`; redis-cli 7 then sends `AUTH "" pass` and fails,
        # so the user is named: `default` is the same account for every client.
        tls = f"rediss://default:{pw}@{self.host}:{entry['tls_port']}"
        return {
            "URL": tls,
            "TLS_URL": tls,
            "PLAIN_URL": f"redis://default:{pw}@{self.host}:{entry['port']}",
        }

    def config(self, addon_id: str) -> dict[str, str]:
        return self._config_from(self._entry(addon_id))

    @property
    def ca_cert_path(self) -> Path:
        return self._get_ca().cert_path

    def _get_ca(self) -> InternalCA:
        if self._ca is None:
            self._ca = InternalCA(self.root / "ca", name="Spruce Key-Value Store CA")
        return self._ca

    # -- servers -------------------------------------------------------------------------

    def _write_files(self, addon_id: str, entry: dict[str, Any]) -> None:
        d = self.addon_dir(addon_id)
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        if _needs_certificate(d / "server.pem"):
            ca = self._get_ca()
            ca.issue_to_files(d / "server.pem", d / "server.key", ["localhost"], ["127.0.0.1"])
            shutil.copyfile(ca.cert_path, d / "ca.pem")
        write_private(d / "redis.conf", render_config(d, entry, self.plan(entry["plan"])))

    def _admin(self, entry: dict[str, Any]) -> aioredis.Redis:
        return aioredis.Redis(
            host="127.0.0.1",
            port=entry["port"],
            username=ADMIN_USER,
            password=entry["admin_password"],
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),  # readiness polling has its own loop
            decode_responses=True,
        )

    async def _ping(self, addon_id: str) -> bool:
        client = self._admin(self._entry(addon_id))
        try:
            return bool(await client.ping())
        except (RedisConnectionError, BusyLoadingError, OSError):
            return False
        finally:
            await client.aclose()

    async def _free_ports(self, addon_id: str, entry: dict[str, Any]) -> bool:
        """Make the add-on's ports usable; returns True when they had to change."""
        pidfile = self.addon_dir(addon_id) / "redis.pid"
        if pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                await asyncio.to_thread(kill_stale, int(pidfile.read_text().strip()), "redis")
        if port_is_free(entry["port"]) and port_is_free(entry["tls_port"]):
            return False
        entry["port"], entry["tls_port"] = _two_ports()
        return True

    async def _run(self, addon_id: str) -> None:
        entry = self._entry(addon_id)
        changed = await self._free_ports(addon_id, entry)
        if changed:
            self._put(addon_id, entry)
        self._write_files(addon_id, entry)
        binary = find_redis_server(self._redis_server)
        d = self.addon_dir(addon_id)
        server: SupervisedServer

        async def ready() -> None:
            await wait_until(
                lambda: self._ping(addon_id),
                self._ready_timeout,
                f"redis-server for {addon_id}",
                alive=lambda: not server.exited(),
            )

        server = SupervisedServer(
            addon_id,
            "redis-server",
            lambda: [binary, str(d / "redis.conf")],
            ready,
            self._log,
            cwd=d,
            restart_backoff=self._backoff,
        )
        try:
            await server.start()
        except RuntimeError as e:
            raise ProvisionError(f"{e}; see {d / 'redis.log'}") from None
        self._servers[addon_id] = server
        if changed:
            self._log(addon_id, "redis ports were taken by another program; URLs changed")
            if self._on_config_changed is not None:
                result = self._on_config_changed(addon_id, self._config_from(entry))
                if result is not None:
                    await result

    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        known = self._state.load()
        for addon_id in addon_ids_to_run:
            if addon_id not in known:
                self._log(addon_id, "no Key-Value Store data for this add-on; not started")
                continue
            if addon_id in self._servers:
                continue
            try:
                await self._run(addon_id)
            except Exception as e:  # one broken add-on must not keep the others down
                self._log(addon_id, f"redis-server did not start: {e}")

    async def stop(self) -> None:
        servers, self._servers = self._servers, {}
        await asyncio.gather(*(s.stop() for s in servers.values()))

    def server(self, addon_id: str) -> SupervisedServer | None:
        """The running server (for status and tests)."""
        return self._servers.get(addon_id)

    # -- lifecycle -------------------------------------------------------------------------

    async def provision(
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        plan = self.plan(plan_name)
        settings = {
            "maxmemory_policy": "noeviction",
            "timeout": DEFAULT_TIMEOUT,
            "notify_keyspace_events": "",
        }
        for key, value in (options or {}).items():
            k = key.replace("-", "_")
            if k == "maxmemory_policy":
                settings[k] = validate_policy(value)
            elif k == "timeout":
                settings[k] = validate_timeout(value)
            elif k == "notify_keyspace_events":
                settings[k] = validate_keyspace_flags(value)
            else:
                raise InvalidSettingError(
                    f"unknown option {key!r}; valid: maxmemory_policy, timeout, "
                    "notify_keyspace_events"
                )
        find_redis_server(self._redis_server)  # fail before creating anything
        async with self._lock:
            if addon_id in self._state.load():
                raise ProvisionError(f"add-on {addon_id} already exists")
            port, tls_port = _two_ports()
            entry = {
                "plan": plan.name,
                "port": port,
                "tls_port": tls_port,
                "password": "p" + secrets.token_hex(32),
                "admin_password": secrets.token_hex(32),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "settings": settings,
            }
            if region:
                entry["region"] = region
            self._put(addon_id, entry)
            try:
                await self._run(addon_id)
            except BaseException:
                await self._remove(addon_id)
                raise
            return self._config_from(self._entry(addon_id))

    async def _remove(self, addon_id: str) -> None:
        server = self._servers.pop(addon_id, None)
        if server is not None:
            await server.stop()
        self._put(addon_id, None)
        shutil.rmtree(self.addon_dir(addon_id), ignore_errors=True)

    async def deprovision(self, addon_id: str) -> None:
        async with self._lock:
            self._entry(addon_id)
            await self._remove(addon_id)

    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        """addons:upgrade: new memory and connection limits, applied live."""
        plan = self.plan(plan_name)
        async with self._lock:
            entry = self._entry(addon_id)
            entry["plan"] = plan.name
            self._put(addon_id, entry)
            self._write_files(addon_id, entry)  # a restart after a crash keeps the new plan
            await self._config_set(
                addon_id,
                maxmemory=str(plan.limits["memory_bytes"]),
                maxclients=str(plan.limits["connections"]),
            )

    async def reset_credentials(self, addon_id: str) -> dict[str, str]:
        async with self._lock:
            entry = self._entry(addon_id)
            password = "p" + secrets.token_hex(32)
            if addon_id in self._servers:
                client = self._admin(entry)
                try:
                    await client.acl_setuser(
                        "default",
                        enabled=True,
                        reset_passwords=True,
                        hashed_passwords=["+" + _sha256(password)],
                    )
                    # sessions opened with the old password end, as on Heroku
                    await client.client_kill_filter(user="default")
                finally:
                    await client.aclose()
            entry["password"] = password
            self._put(addon_id, entry)
            self._write_files(addon_id, entry)
            return self._config_from(entry)

    # -- settings (redis:maxmemory, redis:timeout, redis:keyspace-notifications) -----------

    async def _config_set(self, addon_id: str, **values: str) -> None:
        if addon_id not in self._servers:
            return  # applied from state at the next start
        client = self._admin(self._entry(addon_id))
        try:
            for k, v in values.items():
                await client.config_set(k.replace("_", "-"), v)
        finally:
            await client.aclose()

    async def _set_setting(self, addon_id: str, key: str, value: Any, redis_key: str) -> None:
        async with self._lock:
            entry = self._entry(addon_id)
            entry["settings"][key] = value
            self._put(addon_id, entry)
            self._write_files(addon_id, entry)
            await self._config_set(addon_id, **{redis_key: str(value)})

    async def set_maxmemory_policy(self, addon_id: str, policy: str) -> None:
        await self._set_setting(
            addon_id, "maxmemory_policy", validate_policy(policy), "maxmemory_policy"
        )

    async def set_timeout(self, addon_id: str, seconds: int) -> None:
        await self._set_setting(addon_id, "timeout", validate_timeout(seconds), "timeout")

    async def set_keyspace_notifications(self, addon_id: str, flags: str) -> None:
        await self._set_setting(
            addon_id,
            "notify_keyspace_events",
            validate_keyspace_flags(flags),
            "notify_keyspace_events",
        )

    async def config_get(self, addon_id: str, *names: str) -> dict[str, str]:
        """CONFIG GET through the platform's user (the app's user may not run CONFIG)."""
        client = self._admin(self._entry(addon_id))
        try:
            out: dict[str, str] = {}
            for name in names:
                got = await client.config_get(name)
                out.update({str(k): str(v) for k, v in got.items()})
            return out
        finally:
            await client.aclose()

    def settings(self, addon_id: str) -> dict[str, Any]:
        return dict(self._entry(addon_id)["settings"])

    def key_value_store(self) -> RedisProvider:
        return self

    def cli(self, addon_id: str) -> CliCommand:
        """`redis:cli`: redis-cli over TLS, verifying against the add-on's CA."""
        entry = self._entry(addon_id)
        d = self.addon_dir(addon_id)
        argv = ["redis-cli", "-h", self.host, "-p", str(entry["tls_port"]), "--tls"]
        argv += ["--cacert", str(d / "ca.pem")]
        return CliCommand(argv, {"REDISCLI_AUTH": entry["password"]}, self.host, entry["tls_port"])

    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        entry = self._entry(addon_id)
        plan = self.plan(entry["plan"])
        s = entry["settings"]
        lines = [
            ("Plan", plan.human_name),
            ("Status", "available" if addon_id in self._servers else "stopped"),
            ("Created", entry["created"]),
        ]
        server_info: dict[str, Any] = {}
        if addon_id in self._servers:
            client = self._admin(entry)
            try:
                server_info = await client.info()
            except RedisError:
                lines[1] = ("Status", "unavailable")
            finally:
                await client.aclose()
        lines.append(("Version", str(server_info.get("redis_version", "unknown"))))
        lines.append(("Timeout", str(s["timeout"])))
        lines.append(("Maxmemory", s["maxmemory_policy"]))
        lines.append(("Keyspace Notifications", s["notify_keyspace_events"] or "disabled"))
        used = server_info.get("used_memory_human", "0B")
        lines.append(("Memory", f"{used} / {_human_bytes(plan.limits['memory_bytes'])}"))
        clients = server_info.get("connected_clients", 0)
        lines.append(("Clients", f"{clients} / {plan.limits['connections']}"))
        lines.append(("Data", str(self.addon_dir(addon_id))))
        return lines


def _needs_certificate(path: Path, margin: dt.timedelta = dt.timedelta(days=30)) -> bool:
    """True when the server certificate is missing or expires within `margin`."""
    if not path.exists():
        return True
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc - margin < dt.datetime.now(dt.UTC)


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _two_ports() -> tuple[int, int]:
    a = free_port()
    b = free_port()
    while b == a:
        b = free_port()
    return a, b


def _human_bytes(n: int) -> str:
    if n >= GB and n % GB == 0:
        return f"{n // GB} GB"
    return f"{n // MB} MB"
