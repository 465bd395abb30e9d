"""The platform-managed PostgreSQL cluster that holds every heroku-postgresql add-on.

PostgreSQL refuses to run as root, so when the platform runs as root the cluster belongs to a
`spruce-postgres` system user. The superuser (`spruce_admin`) and the port are kept in the
provider's state; the server listens on 127.0.0.1 only and has no Unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import signal
import stat
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import psycopg

from spruce.addons import pgconf
from spruce.addons.base import AddonLog, ProvisionError
from spruce.addons.pgpool import AdminPool
from spruce.addons.runtime import (
    SupervisedServer,
    as_user,
    find_postgres_bindir,
    kill_stale,
    port_is_free,
    redact,
    wait_until,
)
from spruce.netutil import free_port

OS_USER = "spruce-postgres"
ADMIN_ROLE = "spruce_admin"


def ensure_os_user(name: str = OS_USER) -> tuple[int, int]:
    """The (uid, gid) of the unprivileged user that runs PostgreSQL, created when missing."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        import subprocess

        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def grant_traverse(path: Path, uid: int, gid: int, log: AddonLog) -> None:
    """Give `uid` search (x) permission on the ancestors of `path` that deny it.

    Only the execute bit for others is added: names inside stay unreadable. Without it
    PostgreSQL cannot reach a data directory under a 0700 home such as /root.
    """
    for parent in reversed(path.resolve().parents):
        st = os.stat(parent)
        mode = stat.S_IMODE(st.st_mode)
        if (
            (st.st_uid == uid and mode & stat.S_IXUSR)
            or (st.st_gid == gid and mode & stat.S_IXGRP)
            or mode & stat.S_IXOTH
        ):
            continue
        os.chmod(parent, mode | stat.S_IXOTH)
        log("postgres", f"added search permission (o+x) on {parent} so {OS_USER} can reach it")


class PostgresCluster:
    """initdb, start, stop and admin connections for one cluster directory."""

    def __init__(
        self,
        root: Path,
        state: dict[str, Any],
        log: AddonLog,
        *,
        bindir: str | None = None,
        ready_timeout: float = 90.0,
        ca: pgconf.CertificateSource | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.root = root
        self.datadir = root / "cluster"
        self.tls_dir = root / "tls"
        self._ca = ca
        self._host = host
        self._settings: list[str] = []
        self.extensions: list[str] = []
        self.state = state  # the "cluster" part of the provider's state, saved by the provider
        self._log = log
        self._bindir_arg = bindir
        self._ready_timeout = ready_timeout
        self._server: SupervisedServer | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        self.pool = AdminPool(self._connect_admin)

    @property
    def bindir(self) -> Path:
        return find_postgres_bindir(self._bindir_arg)

    @property
    def port(self) -> int:
        return int(self.state["port"])

    @property
    def running(self) -> bool:
        return self._server is not None and not self._server.exited()

    @property
    def server(self) -> SupervisedServer | None:
        return self._server

    def owner(self) -> tuple[int | None, int | None]:
        """The (uid, gid) the server runs as (None, None when not root)."""
        return self._owner()

    def _owner(self) -> tuple[int | None, int | None]:
        if os.geteuid() != 0:
            return None, None
        if self._uid is None:
            self._uid, self._gid = ensure_os_user()
        return self._uid, self._gid

    async def _initdb(self) -> None:
        bindir = self.bindir
        uid, gid = self._owner()
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.datadir.chmod(0o700)
        if uid is not None:
            assert gid is not None
            os.chown(self.datadir, uid, gid)
            grant_traverse(self.datadir, uid, gid, self._log)
        self.state.setdefault("admin_password", "p" + secrets.token_hex(32))
        pwfile = self.datadir.parent / ".initdb-pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.state["admin_password"] + "\n")
        if uid is not None:
            assert gid is not None
            os.chown(pwfile, uid, gid)
        try:
            argv = [
                str(bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                ADMIN_ROLE,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
            proc = await asyncio.create_subprocess_exec(
                *as_user(argv, uid, gid),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.datadir,
            )
            out, _ = await proc.communicate()
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            text = redact(out.decode(errors="replace"), [self.state["admin_password"]])
            raise ProvisionError(f"initdb failed (status {proc.returncode}): {text[-800:]}")
        self.state["initialized"] = True

    def _argv(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.datadir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",
            # statements carrying a password must never reach the server log
            "-c",
            "log_min_error_statement=panic",
            "-c",
            "log_statement=none",
            "-c",
            "password_encryption=scram-sha-256",
            *self._settings,
        ]

    def _prepare(self, uid: int | None, gid: int | None) -> None:
        """TLS files, pg_hba.conf and the settings of this start (see pgconf)."""
        self.tls_dir.mkdir(exist_ok=True)
        cert, key = self.tls_dir / "server.crt", self.tls_dir / "server.key"
        ca = self._ca
        if ca is None:
            from spruce.certs.ca import InternalCA  # a provider used on its own: its own CA

            ca = InternalCA(self.tls_dir / "ca", name="Spruce Postgres CA")
        pgconf.ensure_server_certificate(ca, cert, key, self._host)
        hba = self.tls_dir / "pg_hba.conf"
        pgconf.write_hba(hba, ADMIN_ROLE)
        if uid is not None:
            assert gid is not None
            for path in (self.tls_dir, cert, key, hba):
                os.chown(path, uid, gid)
        self.extensions = pgconf.available_extensions(self.bindir)
        wl = pgconf.has_pgextwlist(self.bindir)
        if not wl:
            self._log(
                "postgres",
                "pgextwlist is not installed (apt-get install postgresql-<major>-pgextwlist):"
                " roles can create trusted extensions only",
            )
        self._settings = pgconf.server_settings(
            hba_file=hba, cert_file=cert, key_file=key, extensions=self.extensions, pgextwlist=wl
        )

    async def _can_connect(self) -> bool:
        try:
            conn = await psycopg.AsyncConnection.connect(**self.conninfo(), connect_timeout=2)
        except psycopg.OperationalError:
            return False
        await conn.close()
        return True

    def conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": ADMIN_ROLE,
            "password": self.state["admin_password"],
            "dbname": dbname,
        }

    async def start(self) -> bool:
        """Start the cluster (initdb first if needed); True when the port had to change."""
        if self.running:
            return False
        self.bindir  # noqa: B018 - raises MissingBinaryError before anything else
        changed = False
        if "port" not in self.state:
            self.state["port"] = free_port()
        if not self.state.get("initialized"):
            await self._initdb()
        uid, gid = self._owner()
        if uid is not None:
            assert gid is not None
            grant_traverse(self.datadir, uid, gid, self._log)
        self._prepare(uid, gid)
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            with contextlib.suppress(ValueError, OSError, IndexError):
                pid = int(pidfile.read_text().splitlines()[0])
                await asyncio.to_thread(kill_stale, pid, "postgres", 30.0, signal.SIGINT)
        if not port_is_free(self.port):
            self.state["port"] = free_port()
            changed = True
        server: SupervisedServer

        async def ready() -> None:
            await wait_until(
                self._can_connect,
                self._ready_timeout,
                "postgres",
                alive=lambda: not server.exited(),
            )

        server = SupervisedServer(
            "postgres",
            "postgres",
            self._argv,
            ready,
            self._log,
            stop_signal=signal.SIGINT,
            cwd=self.datadir,
            user=uid,
            group=gid,
            output=self.root / "postgres.log",
        )
        try:
            await server.start()
        except RuntimeError as e:
            raise ProvisionError(f"{e}; see {self.root / 'postgres.log'}") from None
        self._server = server
        return changed

    async def stop(self) -> None:
        await self.pool.close()
        if self._server is not None:
            await self._server.stop(timeout=30.0)
            self._server = None

    async def _connect_admin(self, dbname: str) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            **self.conninfo(dbname), autocommit=True, connect_timeout=5
        )

    def admin(self, dbname: str = "postgres") -> AbstractAsyncContextManager[Any]:
        """An admin session on `dbname`, from the pool (spruce.addons.pgpool)."""
        return self.pool.session(dbname)

    async def release(self, dbname: str) -> None:
        """Close the pooled sessions on `dbname` (before it is dropped or restored)."""
        await self.pool.release(dbname)
