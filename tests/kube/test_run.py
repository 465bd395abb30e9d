"""`heroku run` on Kubernetes: the CLI's rendezvous meets the pod's attach stream."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from spruce.certs.ca import InternalCA
from spruce.dynos.rendezvous import RendezvousServer

from .conftest import Dynos, make_slug, runtime, until

pytestmark = pytest.mark.slow
EXIT_RE = re.compile("\uffff heroku-command-exit-status: (\\d+)\n?")


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[RendezvousServer]:
    server = RendezvousServer(InternalCA(tmp_path / "ca"), tmp_path / "rendezvous")
    await server.start()
    yield server
    await server.close()


async def cli(ca: InternalCA, attach_url: str, stdin: bytes = b"") -> tuple[str, int | None]:
    """What heroku-cli does with an attach_url: TLS, the secret, skip the first chunk, pipe
    stdin, read to the end and find the exit status line."""
    url = urlparse(attach_url)
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    reader, writer = await asyncio.open_connection(
        url.hostname, url.port, ssl=ctx, server_hostname=url.hostname
    )
    writer.write(url.path[1:].encode() + b"\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(65536), 10)
    writer.write(stdin)
    await writer.drain()
    out = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 120):
        out += chunk
    writer.close()
    text = out.decode()
    m = EXIT_RE.search(text)
    return EXIT_RE.sub("", text), (int(m.group(1)) if m else None)


async def test_heroku_run_attached_with_output_input_and_exit_status(
    dynos: Dynos, rendezvous: RendezvousServer, tmp_path: Path
) -> None:
    b = dynos.backend
    b.rendezvous = rendezvous
    app = runtime(make_slug(tmp_path), formation={})
    info = await b.run_one_off(
        app,
        'echo "early from $DYNO"; read line; echo "got:$line:$GREETING"; exit 7',
        attach=True,
    )
    assert info.attach_url and info.attach_url.startswith("rendezvous://127.0.0.1:")
    await until(lambda: [d.name for d in b.dynos(app.app_id)] == [info.name], 120)
    out, status = await cli(rendezvous.ca, info.attach_url, b"hello\n")
    assert status == 7, out
    assert f"early from {info.name}\n" in out and "got:hello:hello\n" in out
    assert await b.wait_one_off(app.app_id, info.name, timeout=30) == 7
    assert dynos.lines(info.name, "app") == []  # attached output goes to the client only
    await until(lambda: b.dynos(app.app_id) == [], 120, "the one-off gone")


async def test_heroku_run_with_a_tty_and_r13_when_nobody_attaches(
    dynos: Dynos, rendezvous: RendezvousServer, tmp_path: Path
) -> None:
    b = dynos.backend
    b.rendezvous = rendezvous
    app = runtime(make_slug(tmp_path), formation={})
    info = await b.run_one_off(app, "[ -t 0 ] && echo tty-yes; exit 0", attach=True, tty=True)
    assert info.attach_url
    out, status = await cli(rendezvous.ca, info.attach_url)
    assert status == 0 and "tty-yes\r\n" in out, out

    dynos.ds.rendezvous_timeout = 2.0
    lonely = await b.run_one_off(app, "echo never", attach=True)
    assert await b.wait_one_off(app.app_id, lonely.name, timeout=30) is None
    assert "Error R13 (Attach error) -> Failed to attach to process" in dynos.lines(
        lonely.name, "heroku"
    )
    await until(lambda: b.dynos(app.app_id) == [], 120, "the one-offs gone")


async def test_run_inside_a_running_dyno(
    dynos: Dynos, rendezvous: RendezvousServer, tmp_path: Path
) -> None:
    b = dynos.backend
    b.rendezvous = rendezvous
    app = runtime(make_slug(tmp_path), formation={"worker": (1, "basic")})
    await b.converge(app)
    await until(lambda: [d.state for d in b.dynos(app.app_id)] == ["up"], what="worker.1 up")
    info = await b.run_inside(app.app_id, "worker.1", 'read x; echo "in $DYNO: $x"; exit 4')
    assert info.name == "worker.1" and info.attach_url
    out, status = await cli(rendezvous.ca, info.attach_url, b"knock\n")
    assert (out, status) == ("in worker.1: knock\n", 4)
