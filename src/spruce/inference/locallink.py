"""A `PlatformLink` without a platform: local subprocesses stand in for one-off dynos.

For tests and for running the inference server alone. Keys are kept as SHA-256 hashes, as
the platform keeps them. An "app" is a directory: its commands run there with `sh -c`, in
their own process group, killed after `ttl_seconds`, like a one-off dyno's. It is not a
sandbox: the platform's link runs real dynos instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .link import (
    CommandResult,
    KeyGrant,
    LinkError,
    McpProcessType,
    PostgresCredentials,
    StdioSession,
    Usage,
)

MAX_OUTPUT = 1024 * 1024  # a tool result larger than this is cut (and says so)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class LocalApp:
    name: str
    id: str
    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    mcp: dict[str, str] = field(default_factory=dict)
    """process type (`mcp*`) -> command"""
    postgres: dict[str, PostgresCredentials] = field(default_factory=dict)
    """attachment name -> read-only credentials"""


class LocalLink:
    def __init__(self) -> None:
        self._keys: dict[str, KeyGrant] = {}
        self._apps: dict[str, LocalApp] = {}
        self._attached: dict[str, set[str]] = {}  # addon id -> app names
        self._namespaces: dict[str, str] = {}
        self.usage: list[Usage] = []
        self.commands: list[tuple[str, str, str, int]] = []  # app, command, size, ttl

    # -- set-up (what the platform's provisioning would do) ---------------------------
    def add_app(self, app: LocalApp) -> None:
        self._apps[app.name] = app

    def add_key(self, key: str, grant: KeyGrant) -> None:
        self._keys[key_hash(key)] = grant
        self.attach(grant.addon_id, grant.app_name)

    def revoke_key(self, key: str) -> None:
        self._keys.pop(key_hash(key), None)

    def attach(self, addon_id: str, app_name: str) -> None:
        self._attached.setdefault(addon_id, set()).add(app_name)

    def _app(self, addon_id: str, app_name: str) -> LocalApp:
        app = self._apps.get(app_name)
        if app is None or app_name not in self._attached.get(addon_id, set()):
            raise LinkError(
                403,
                f"The model resource is not attached to {app_name}: attach it to run dynos there.",
            )
        return app

    # -- PlatformLink ----------------------------------------------------------------
    async def verify_key(self, key: str) -> KeyGrant | None:
        return self._keys.get(key_hash(key))

    async def record_usage(self, usage: Usage) -> None:
        self.usage.append(usage)

    async def run_command(
        self,
        addon_id: str,
        app_name: str,
        command: str,
        *,
        size: str,
        ttl_seconds: int,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        app = self._app(addon_id, app_name)
        self.commands.append((app_name, command, size, ttl_seconds))
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            cwd=app.directory,
            env=self._env(app, env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        # read while waiting, so what a killed command printed is kept
        reads = asyncio.gather(proc.stdout.read(), proc.stderr.read())
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), ttl_seconds)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            await proc.wait()
        out, err = await reads
        await asyncio.sleep(0)  # let the transport see its pipes closed before we return
        return CommandResult(
            exit_status=proc.returncode if proc.returncode is not None else -1,
            stdout=_text(out),
            stderr=_text(err),
            timed_out=timed_out,
        )

    async def mcp_process_types(self, addon_id: str) -> list[McpProcessType]:
        found = []
        for name in sorted(self._attached.get(addon_id, set())):
            app = self._apps.get(name)
            if app is None:
                continue
            for ptype, command in sorted(app.mcp.items()):
                sid = f"{app.id}:{ptype}"
                found.append(
                    McpProcessType(
                        id=sid,
                        app_id=app.id,
                        app_name=app.name,
                        process_type=ptype,
                        command=command,
                        namespace=self._namespace(sid),
                    )
                )
        return found

    async def open_stdio(
        self, addon_id: str, server_id: str, *, size: str, ttl_seconds: int
    ) -> StdioSession:
        for server in await self.mcp_process_types(addon_id):
            if server.id == server_id:
                break
        else:
            raise LinkError(404, f"no MCP server {server_id}")
        app = self._app(addon_id, server.app_name)
        self.commands.append((app.name, server.command, size, ttl_seconds))
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            server.command,
            cwd=app.directory,
            env=self._env(app, None),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stdin is not None
        stdout = proc.stdout
        killer = asyncio.get_running_loop().call_later(ttl_seconds, _kill_group, proc.pid)

        async def closer() -> None:
            killer.cancel()
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                _kill_group(proc.pid)
                await proc.wait()
            except asyncio.CancelledError:
                _kill_group(proc.pid)  # never leave the "dyno" behind
                raise
            # read stdout to its end, so the subprocess transport closes now rather than
            # when it is collected (maybe after its event loop is gone)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stdout.read(), 2)
            await asyncio.sleep(0)

        return StdioSession(proc.stdout, proc.stdin, closer)

    async def postgres_credentials(
        self, addon_id: str, app_name: str, attachment: str
    ) -> PostgresCredentials:
        app = self._app(addon_id, app_name)
        creds = app.postgres.get(attachment)
        if creds is None:
            raise LinkError(404, f"{app_name} has no Postgres attachment named {attachment}")
        return creds

    # -- helpers -----------------------------------------------------------------------
    def _env(self, app: LocalApp, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(app.directory)}
        env.update(app.env)
        env.update(extra or {})
        return env

    def _namespace(self, server_id: str) -> str:
        if server_id not in self._namespaces:
            self._namespaces[server_id] = namespace_for(server_id)
        return self._namespaces[server_id]


def namespace_for(server_id: str) -> str:
    """Two words, stable for a server id (Heroku's look like `acute-partridge`)."""
    digest = hashlib.sha256(server_id.encode()).digest()
    return f"{_ADJECTIVES[digest[0] % len(_ADJECTIVES)]}-{_NOUNS[digest[1] % len(_NOUNS)]}"


_ADJECTIVES = ("acute", "brave", "calm", "deft", "eager", "fair", "glad", "keen", "lucid", "merry")
_NOUNS = ("partridge", "otter", "heron", "lynx", "marten", "plover", "raven", "stoat", "wren")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _text(data: bytes) -> str:
    if len(data) > MAX_OUTPUT:
        return data[:MAX_OUTPUT].decode(errors="replace") + "\n[output truncated]"
    return data.decode(errors="replace")
