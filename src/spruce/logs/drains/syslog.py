"""Syslog drains over TCP (`syslog://`) and TLS (`syslog+tls://`): octet-counted RFC 5424
frames on one long-lived connection, the way Logplex sends them."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from spruce.logs.drains.base import DrainError, DrainWorker
from spruce.logs.framing import l10_frame, line_frame


class SyslogDrain(DrainWorker):
    _writer: asyncio.StreamWriter | None = None

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.tls:
            return None
        return self.ssl_context or ssl.create_default_context()

    async def run_connection(self) -> None:
        cfg = self.config
        ctx = self._context()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.url.host,
                self.url.port,
                ssl=ctx,
                server_hostname=self.url.host if ctx else None,
            ),
            cfg.drain_connect_timeout,
        )
        self._writer = writer
        self.connected()
        # Syslog receivers never talk back; a read finishing means the peer closed.
        closed = asyncio.ensure_future(_until_eof(reader))
        closed.add_done_callback(lambda _f: self.wake())
        try:
            while True:
                await self.wait_for_lines(closed)
                if closed.done():
                    raise DrainError("the drain closed the connection")
                frames: list[bytes] = []
                lost = self.take_undelivered()
                if lost is not None:
                    frames.append(l10_frame(self.clock(), self.spec.token, lost[0], lost[1]))
                batch = self.take_batch(cfg.drain_batch_lines)
                frames.extend(line_frame(line, self.spec.token) for line in batch)
                try:
                    writer.write(b"".join(frames))
                    await asyncio.wait_for(writer.drain(), cfg.drain_write_timeout)
                except BaseException:
                    # What was handed to the socket may or may not have arrived: count it.
                    if batch:
                        self.record_loss(len(batch), batch[0].ts)
                    elif lost is not None:
                        self.restore_undelivered(lost)
                    raise
                self.sent += len(batch)
                self.connected()
        finally:
            closed.cancel()

    async def close_transport(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except Exception:
            # a peer that never reads keeps a closing socket open with its unsent bytes
            writer.transport.abort()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await reader.read(4096):
            pass
