"""Heroku Exec's SSH gateway over a real SSH connection (asyncssh's client): who gets in,
commands with and without a terminal, SFTP and forwarded TCP, all run with the dyno's entry.

The dyno here is a process of this test without a sandbox (isolation off), so the entry is
its environment and directory; tests/compat/test_heroku_cli_exec.py drives the same gateway
with Heroku's CLI into real sandboxed dynos."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from spruce.dynos.dyno import Dyno
from spruce.dynos.exec_gateway import ExecGateway
from spruce.dynos.model import DynoSettings
from spruce.dynos.sandbox import Sandbox
from spruce.services.features import EXEC_FEATURE

pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/openssh/sftp-server").exists(), reason="needs openssh-sftp-server"
)


@dataclass
class Proc:
    pid: int
    cgroup: None = None

    def inner_pid(self) -> None:
        return None

    def alive(self) -> bool:
        return True


class Manager:
    def __init__(self, home: Path) -> None:
        self.sandbox = Sandbox(home, DynoSettings(isolation="off"))
        self.dyno: Dyno | None = None

    def running_dyno(self, app_id: str, name: str) -> Dyno | None:
        d = self.dyno
        return d if d and d.app_id == app_id and d.name == name else None


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[ExecGateway, Manager]]:
    m = Manager(tmp_path)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "notes.txt").write_text("from the dyno\n")
    d = Dyno("app-1", "web.1", "web", 1, "standard-1x", "x", "rel", 2)
    d.proc = Proc(os.getpid())  # type: ignore[assignment]
    d.env = {"DYNO": "web.1", "PATH": os.environ["PATH"], "HOME": str(app_dir)}
    d.host_dir = app_dir
    d.launch_features = frozenset({EXEC_FEATURE})
    m.dyno = d
    gw = ExecGateway(m, "127.0.0.1", tmp_path / "exec" / "host_key", port=0)  # type: ignore[arg-type]
    await gw.start()
    yield gw, m
    await gw.close()


def connect(gw: ExecGateway, user: str, key: asyncssh.SSHKey) -> asyncssh.connect:
    return asyncssh.connect(
        "127.0.0.1",
        gw.port,
        username=user,
        client_keys=[key],
        known_hosts=None,
        server_host_key_algs=["ssh-ed25519"],
    )


def rsa_key() -> tuple[asyncssh.SSHKey, str]:
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    return key, key.export_public_key("openssh").decode()


async def test_grants_are_for_valid_keys_of_running_dynos_with_the_feature(
    gateway: tuple[ExecGateway, Manager],
) -> None:
    gw, m = gateway
    _, pub = rsa_key()
    with pytest.raises(ValueError):
        gw.grant("app-1", "web.1", "ssh-rsa not-base64")
    with pytest.raises(LookupError):
        gw.grant("app-1", "web.2", pub)
    assert m.dyno is not None
    m.dyno.launch_features = frozenset()
    with pytest.raises(PermissionError):
        gw.grant("app-1", "web.1", pub)
    assert gw.host_public_key.startswith("ssh-ed25519 ")
    assert len(gw.host_public_key.split()) == 2


async def test_a_command_runs_with_the_dynos_env_and_directory(
    gateway: tuple[ExecGateway, Manager],
) -> None:
    gw, m = gateway
    key, pub = rsa_key()
    user = gw.grant("app-1", "web.1", pub)
    async with connect(gw, user, key) as conn:
        r = await conn.run("echo $DYNO; pwd; exit 3")
        assert r.stdout == f"web.1\n{m.dyno.host_dir}\n"  # type: ignore[union-attr]
        assert r.exit_status == 3
        r = await conn.run("tty >/dev/null && echo on-a-terminal", term_type="xterm")
        assert r.stdout == "on-a-terminal\r\n"
        r = await conn.run("cat", input="piped\n")
        assert r.stdout == "piped\n"


async def test_other_keys_users_and_later_launches_are_refused(
    gateway: tuple[ExecGateway, Manager],
) -> None:
    gw, m = gateway
    key, pub = rsa_key()
    other, _ = rsa_key()
    user = gw.grant("app-1", "web.1", pub)
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(gw, user, other):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(gw, "dyno-unknown", key):
            pass
    assert m.dyno is not None
    m.dyno.launch_id = "a-new-launch"  # the dyno restarted: the grant is gone
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(gw, user, key):
            pass


async def test_sftp_and_forwarded_connections(gateway: tuple[ExecGateway, Manager]) -> None:
    gw, _ = gateway
    key, pub = rsa_key()
    user = gw.grant("app-1", "web.1", pub)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"dyno says " + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with connect(gw, user, key) as conn:
            async with conn.start_sftp_client() as sftp:
                async with sftp.open("notes.txt") as f:  # relative: the dyno's directory
                    assert await f.read() == "from the dyno\n"
            reader, writer = await conn.open_connection("0.0.0.0", port)
            writer.write(b"hello\n")
            assert await reader.readline() == b"dyno says hello\n"
            writer.close()
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", port)
    finally:
        server.close()
