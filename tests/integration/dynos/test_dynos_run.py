"""`heroku run` through the rendezvous, as the CLI speaks it (TLS, secret, first chunk)."""

from __future__ import annotations

import asyncio
import re
import ssl
from urllib.parse import urlparse

from .conftest import Harness, make_slug, runtime, until

EXIT_RE = re.compile("\uffff heroku-command-exit-status: (\\d+)")


async def cli_attach(
    harness: Harness, attach_url: str, stdin: bytes = b"", send_eot: bool = True
) -> tuple[str, int | None]:
    """Behave like heroku-cli's Dyno._rendezvous: verify TLS with the CA, send the secret,
    discard the first chunk, then pipe stdin (ending with \\x04) and read until close."""
    url = urlparse(attach_url)
    assert url.scheme == "rendezvous"
    ctx = ssl.create_default_context(cafile=str(harness.ca.cert_path))
    reader, writer = await asyncio.open_connection(
        url.hostname, url.port, ssl=ctx, server_hostname=url.hostname
    )
    writer.write(url.path[1:].encode() + b"\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.read(65536), 10)
    assert first  # discarded, as the CLI does
    if stdin:
        writer.write(stdin)
    if send_eot:
        writer.write(b"\x04")
    await writer.drain()
    out = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 10):
        out += chunk
    writer.close()
    text = out.decode()
    m = EXIT_RE.search(text)
    return EXIT_RE.sub("", text), (int(m.group(1)) if m else None)


async def test_run_attached_pipe_with_exit_status(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(
        app,
        'read line; echo "got:$line:$DYNO:$PROFILE_D_RAN"; [ -t 0 ] || echo no-tty; exit 7',
        env={"TERM": "dumb"},
        attach=True,
        tty=False,
    )
    assert re.fullmatch(r"run\.\d{4}", info.name) and info.type == "run"
    assert info.attach_url and info.attach_url.startswith("rendezvous://127.0.0.1:")
    assert [d.name for d in m.dynos("app1")] == [info.name]
    out, status = await cli_attach(harness, info.attach_url, b"hello\n")
    assert status == 7
    assert f"got:hello:{info.name}:yes" in out and "no-tty" in out
    await until(lambda: m.dynos("app1") == [], what="one-off gone")
    lines = harness.lines("heroku", info.name)
    assert lines[0] == "Starting process with command `" + info.command + "`"
    assert "Process exited with status 7" in lines
    assert lines[-1] == "State changed from up to complete"
    # The exit line is on a line of its own, as the CLI's regex expects.
    assert not harness.has_line("got:hello")  # attached output goes to the client only


async def test_run_with_tty(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(
        app,
        "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo term=$TERM cols=$(tput cols 2>/dev/null)",
        env={"TERM": "xterm", "COLUMNS": "99", "LINES": "30"},
        attach=True,
        tty=True,
    )
    assert info.attach_url
    out, status = await cli_attach(harness, info.attach_url, send_eot=False)
    assert status == 0
    assert "is-a-tty" in out and "term=xterm cols=99" in out


async def test_secret_is_single_use_and_checked(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(app, "echo once", attach=True)
    assert info.attach_url
    url = urlparse(info.attach_url)
    ctx = ssl.create_default_context(cafile=str(harness.ca.cert_path))
    # A wrong secret: the server closes without a first chunk.
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=ctx)
    writer.write(b"not-the-secret\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()
    out, status = await cli_attach(harness, info.attach_url)
    assert status == 0 and "once" in out
    # Used once: a second client gets nothing.
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=ctx)
    writer.write(url.path[1:].encode() + b"\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()


async def test_unattached_secret_expires_and_dyno_stops(harness: Harness) -> None:
    m = await harness.manager(rendezvous_timeout=0.5)
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(app, "echo never", attach=True)
    await until(lambda: m.dynos("app1") == [], timeout=5, what="expired one-off removed")
    assert harness.has_line("Error R13 (Attach error) -> Failed to attach to process", info.name)
    assert not harness.has_line("Starting process", info.name)


async def test_detached_one_off_logs(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(app, "echo detached-output; exit 0", size="standard-2x")
    assert info.attach_url is None and info.size == "Standard-2X"
    await until(lambda: harness.has_line("State changed from up to complete", info.name))
    assert harness.has_line("detached-output", info.name)
    assert "Process exited with status 0" in harness.lines("heroku", info.name)


async def test_end_one_off_with_stop(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), formation={})
    info = await m.run_one_off(app, "sleep 1000")
    await until(lambda: [d.state for d in m.dynos("app1")] == ["up"])
    await m.stop("app1", dyno_name=info.name)
    await until(lambda: m.dynos("app1") == [], what="one-off ended")
    assert "Process exited with status 143" in harness.lines("heroku", info.name)


async def test_run_inside_existing_dyno(harness: Harness) -> None:
    m = await harness.manager()
    app = runtime(make_slug(harness.tmp), config={"SECRET_THING": "s3"})
    await m.converge(app)
    await until(lambda: len(m.web_endpoints("app1")) == 1)
    port = m.web_endpoints("app1")[0].port
    info = await m.run_inside("app1", "web.1", 'echo "$DYNO $PORT $SECRET_THING $(pwd)"; exit 3')
    assert info.name == "web.1" and info.attach_url
    out, status = await cli_attach(harness, info.attach_url)
    assert status == 3
    assert f"web.1 {port} s3 " in out
    assert [d.name for d in m.dynos("app1")] == ["web.1"]
