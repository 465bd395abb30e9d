"""Heroku Exec's SSH gateway: the SSH server Heroku's CLI reaches for `ps:exec`, `ps:copy`,
`ps:forward` and `ps:socks` on Cedar dynos.

Heroku's CLI (ssh2) connects to `tunnel_host` on port 80 (fixed in its code), checks the
host key against the one the exec manager handed out, and logs in as a one-time user name
with the fresh RSA key it registered (`grant`). A grant is bound to one launch of one dyno
and lapses when unused for `ttl` seconds or when the dyno restarts. What a session may do:

- a shell or a command, with or without a pseudo-terminal, run inside the dyno's sandbox
  (nsenter into its namespaces, as its uid, in its cgroup) with the dyno's environment;
- the `sftp` subsystem (`ps:copy`): OpenSSH's sftp-server run the same way, so files are
  read as the dyno's user in the dyno's own filesystem;
- direct TCP connections (`ps:forward`, `ps:socks`), opened from the dyno's network
  namespace; 0.0.0.0 and localhost mean the dyno's own address.

Nothing else (no remote forwarding, agent or X11). Sessions run in spruce.dynos.exec_session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from spruce.dynos.exec_session import DynoEntry, ExecSession, TcpRelay, open_tcp
from spruce.services.features import EXEC_FEATURE

if TYPE_CHECKING:
    from spruce.dynos.manager import DynoManager

log = logging.getLogger(__name__)

EXEC_PORT = 80
"""Heroku's CLI connects to port 80 of the tunnel host, whatever the exec manager says."""
GRANT_TTL = 600.0
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/sftp-server",
)
LOCAL_NAMES = frozenset({"0.0.0.0", "localhost", "127.0.0.1", "::", "::1", ""})


@dataclass
class Grant:
    app_id: str
    dyno_name: str
    launch_id: str
    key: asyncssh.SSHKey
    expires_at: float


def sftp_server_path() -> str | None:
    for p in SFTP_SERVERS:
        if Path(p).exists():
            return p
    return shutil.which("sftp-server")


class ExecGateway:
    """The SSH server (an ExecGateway of spruce.services.ports) over the local dynos."""

    def __init__(
        self,
        manager: DynoManager,
        host: str,
        key_path: Path,
        port: int = EXEC_PORT,
        ttl: float = GRANT_TTL,
    ) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.ttl = ttl
        self.key_path = key_path
        self._key = self._host_key(key_path)
        self._grants: dict[str, Grant] = {}
        self._server: asyncssh.SSHAcceptor | None = None
        self.sftp_server = sftp_server_path()

    @staticmethod
    def _host_key(path: Path) -> asyncssh.SSHKey:
        """The host key, made on the first start and kept (0600): clients' checks hold
        across restarts."""
        if path.exists():
            return asyncssh.read_private_key(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key("ssh-ed25519")
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        key.write_private_key(tmp)
        tmp.replace(path)
        return key

    # -- the ExecGateway port ----------------------------------------------------------
    @property
    def tunnel_host(self) -> str:
        return self.host

    @property
    def host_public_key(self) -> str:
        algorithm, blob = self._key.export_public_key("openssh").decode().split()[:2]
        return f"{algorithm} {blob}"

    def grant(self, app_id: str, dyno_name: str, client_key: str) -> str:
        try:
            key = asyncssh.import_public_key(client_key)
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise ValueError("not an OpenSSH public key") from None
        d = self.manager.running_dyno(app_id, dyno_name)
        if d is None:
            raise LookupError(dyno_name)
        if EXEC_FEATURE not in d.launch_features:
            raise PermissionError(f"{dyno_name} started before Heroku Exec was enabled")
        self._sweep()
        user = f"dyno-{secrets.token_hex(12)}"
        self._grants[user] = Grant(app_id, dyno_name, d.launch_id, key, time.monotonic() + self.ttl)
        return user

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncssh.create_server(
            lambda: _Server(self),
            self.host,
            self.port,
            server_host_keys=[self._key],
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            login_timeout=30,
            keepalive_interval=30,
        )
        self.port = self._server.get_port()  # when given 0 (tests): the one taken

    async def close(self) -> None:
        self._grants.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    # -- grants ----------------------------------------------------------------------------
    def _sweep(self) -> None:
        now = time.monotonic()
        for user in [u for u, g in self._grants.items() if g.expires_at < now]:
            self._grants.pop(user, None)

    def admit(self, user: str, key: asyncssh.SSHKey) -> bool:
        """Whether `key` opens `user`'s grant (still fresh, same launch of its dyno)."""
        self._sweep()
        g = self._grants.get(user)
        if g is None or key.public_data != g.key.public_data:
            return False
        d = self.manager.running_dyno(g.app_id, g.dyno_name)
        if d is None or d.launch_id != g.launch_id:
            self._grants.pop(user, None)
            return False
        g.expires_at = time.monotonic() + self.ttl
        return True

    def granted(self, user: str) -> bool:
        g = self._grants.get(user)
        if g is None:
            return False
        d = self.manager.running_dyno(g.app_id, g.dyno_name)
        return d is not None and d.launch_id == g.launch_id

    def entry(self, user: str) -> DynoEntry | None:
        g = self._grants.get(user)
        if g is None:
            return None
        d = self.manager.running_dyno(g.app_id, g.dyno_name)
        if d is None or d.launch_id != g.launch_id:
            return None
        g.expires_at = time.monotonic() + self.ttl
        return DynoEntry.of(d, self.manager.sandbox)


class _Server(asyncssh.SSHServer):
    def __init__(self, gateway: ExecGateway) -> None:
        self.gateway = gateway
        self.user = ""
        self.peer = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"

    def begin_auth(self, username: str) -> bool:
        self.user = username
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = self.gateway.admit(username, key)
        if not ok:
            log.info("Heroku Exec: refused a login from %s", self.peer)
        return ok

    def session_requested(self) -> asyncssh.SSHServerSession[bytes] | bool:
        if not self.gateway.granted(self.user):
            return False
        user = self.user
        return ExecSession(lambda: self.gateway.entry(user), self.gateway.sftp_server)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool | Awaitable[asyncssh.SSHTCPSession[bytes]]:
        entry = self.gateway.entry(self.user)
        if entry is None or not 0 < dest_port < 65536:
            return False
        host = entry.address if dest_host in LOCAL_NAMES else dest_host

        async def connect() -> asyncssh.SSHTCPSession[bytes]:
            try:
                sock = await open_tcp(entry, host, dest_port)
            except OSError as e:
                raise asyncssh.ChannelOpenError(
                    asyncssh.OPEN_CONNECT_FAILED, f"{host}:{dest_port}: {e.strerror or e}"
                ) from None
            return await TcpRelay.over(sock)

        return connect()

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False  # no remote forwarding into the platform's host
