"""The `heroku run` rendezvous: a TLS endpoint where the CLI meets its one-off dyno.

Protocol (as Heroku's CLI speaks it): the client opens TLS to the host and port of the
`attach_url` (`rendezvous://host:port/SECRET`), writes `SECRET\\r\\n`; the server answers with
a first chunk that the client discards, then relays the process's output to the client and
the client's input to the process (a `\\x04` from the client ends a pipe's input); when the
process exits the server writes `\\uFFFF heroku-command-exit-status: N` on its own line and
closes. Secrets are single use and expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from spruce.certs.ca import InternalCA

FIRST_CHUNK = b"rendezvous\r\n"
MAX_SECRET_LINE = 512
EOT = b"\x04"


def exit_status_line(status: int) -> bytes:
    return f"\uffff heroku-command-exit-status: {int(status)}\n".encode()


def parse_secret_line(buf: bytes) -> tuple[str | None, bytes]:
    """(secret, rest) once `buf` holds a full line, (None, buf) before. Raises on garbage."""
    end = buf.find(b"\n")
    if end < 0:
        if len(buf) > MAX_SECRET_LINE:
            raise ValueError("rendezvous secret line too long")
        return None, buf
    line = buf[:end].rstrip(b"\r")
    if not line or len(line) > MAX_SECRET_LINE:
        raise ValueError("bad rendezvous secret line")
    try:
        secret = line.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("bad rendezvous secret line") from None
    return secret, buf[end + 1 :]


@dataclass
class Attachment:
    """A client that presented a valid secret; the session owns the streams until done."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: bytes
    """Bytes the client sent after its secret line (early stdin)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Expected:
    future: asyncio.Future[Attachment]
    expires_at: float


class RendezvousServer:
    def __init__(self, ca: InternalCA, directory: Path, host: str = "127.0.0.1") -> None:
        self.ca = ca
        self.directory = directory
        self.host = host
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._expected: dict[str, _Expected] = {}

    async def start(self) -> None:
        if self._server is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        cert, key = self.directory / "rendezvous.pem", self.directory / "rendezvous.key"
        self.ca.issue_to_files(cert, key, ["localhost"], ["127.0.0.1", "::1"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for exp in self._expected.values():
            if not exp.future.done():
                exp.future.cancel()
        self._expected.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def expect(self, timeout: float) -> tuple[str, asyncio.Future[Attachment]]:
        """A fresh single-use secret and the future its client will resolve."""
        secret = secrets.token_urlsafe(32)
        fut: asyncio.Future[Attachment] = asyncio.get_running_loop().create_future()
        self._expected[secret] = _Expected(fut, time.monotonic() + timeout)
        return secret, fut

    def forget(self, secret: str) -> None:
        exp = self._expected.pop(secret, None)
        if exp and not exp.future.done():
            exp.future.cancel()

    def url(self, secret: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rendezvous://{host}:{self.port}/{secret}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            buf = b""
            secret = None
            async with asyncio.timeout(10):
                while secret is None:
                    chunk = await reader.read(1024)
                    if not chunk:
                        return
                    secret, buf = parse_secret_line(buf + chunk)
            exp = self._expected.pop(secret, None)
            if exp is None or exp.future.done() or time.monotonic() > exp.expires_at:
                return
            writer.write(FIRST_CHUNK)
            await writer.drain()
            att = Attachment(reader, writer, buf)
            exp.future.set_result(att)
            await att.done.wait()
        except (ValueError, TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)


async def bridge(
    att: Attachment,
    proc_stdout: asyncio.StreamReader | None,
    proc_stdin: asyncio.StreamWriter | None,
    pty_master: int | None,
    on_client_gone: object,
) -> None:
    """Relay bytes between the client and the process until the process's output ends."""
    loop = asyncio.get_running_loop()
    writer = att.writer

    async def client_to_process() -> None:
        stdin = proc_stdin
        data = att.pending
        while True:
            if data:
                if pty_master is not None:
                    with contextlib.suppress(OSError):
                        os.write(pty_master, data)
                elif stdin is not None:
                    eot = data.find(EOT)
                    payload = data if eot < 0 else data[:eot]
                    with contextlib.suppress(Exception):
                        stdin.write(payload)
                        await stdin.drain()
                    if eot >= 0:
                        with contextlib.suppress(Exception):
                            stdin.close()
                        stdin = None
            data = await att.reader.read(4096)
            if not data:
                if callable(on_client_gone):
                    on_client_gone()
                return

    async def process_to_client() -> None:
        if pty_master is not None:
            queue: asyncio.Queue[bytes] = asyncio.Queue()

            def readable() -> None:
                try:
                    chunk = os.read(pty_master, 65536)
                except BlockingIOError:
                    return
                except OSError:
                    chunk = b""
                if not chunk:
                    loop.remove_reader(pty_master)
                queue.put_nowait(chunk)

            loop.add_reader(pty_master, readable)
            try:
                while chunk := await queue.get():
                    writer.write(chunk)
                    await writer.drain()
            finally:
                loop.remove_reader(pty_master)
        elif proc_stdout is not None:
            while chunk := await proc_stdout.read(65536):
                writer.write(chunk)
                await writer.drain()

    inbound = asyncio.create_task(client_to_process())
    try:
        await process_to_client()
    except (OSError, ConnectionError):
        pass
    finally:
        inbound.cancel()
