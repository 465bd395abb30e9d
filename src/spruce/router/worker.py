"""A router worker process: one Heroku "router" serving the shared ports (SO_REUSEPORT).

Started by RouterSupervisor as `python -m spruce.router.worker CONFIG_JSON`. It keeps serving
with its last table when the control channel drops, and reconnects until told to stop (a
"stop" message, SIGTERM or SIGINT). Stopping is graceful (`RouterServer.stop`): the router
lines of that period, H24 included, are sent to the supervisor before the process exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from . import control
from .server import RouterServer, listening_socket
from .state import Router
from .timers import RouterTimers

MAX_PENDING_LINES = 10000


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.index = int(config["worker"])
        self.control_path = str(config["control"])
        self.http_addrs = [tuple(a) for a in config["http"]]
        self.https_addrs = [tuple(a) for a in config["https"]]
        self.activity_interval = float(config.get("activity_interval", 1.0))
        self.router = Router(
            RouterTimers.from_dict(config["timers"]), self._emit, self._wake, span=self._span
        )
        self.server = RouterServer(self.router)
        self._lines: list[str] = []
        self._spans: list[list[Any]] = []
        self._out: list[dict[str, Any]] = []
        self._writer: asyncio.StreamWriter | None = None
        self._flush_scheduled = False
        self._serving = False
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # set by run()

    def _emit(self, app_id: str, line: str) -> None:
        lines = self._lines
        if len(lines) < MAX_PENDING_LINES:
            lines.append(control.log_entry(app_id, line, time.time_ns() // 1000))
        if not self._flush_scheduled:  # (once per request: no call when already due)
            self._schedule_flush()

    def _span(self, record: list[Any]) -> None:
        """A span record (apps with a telemetry drain), batched like the log lines."""
        if len(self._spans) < MAX_PENDING_LINES:
            self._spans.append(record)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _wake(self, app_id: str) -> None:
        self._out.append({"t": "wake", "app_id": app_id})
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # (the loop kept: get_running_loop() is a getpid() syscall, once per batch)
            loop = self._loop or asyncio.get_running_loop()
            loop.call_later(0.005, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        w = self._writer
        if w is None or w.is_closing():
            return  # kept (bounded) until the control plane is back
        if self._lines:
            w.write(control.encode_log(self._lines))
            self._lines = []
        if self._spans:
            w.write(control.encode({"t": "spans", "spans": self._spans}))
            self._spans = []
        for msg in self._out:
            w.write(control.encode(msg))
        self._out = []

    async def _activity(self) -> None:
        while True:
            await asyncio.sleep(self.activity_interval)
            counts = self.router.take_activity()
            if counts:
                self._out.append({"t": "activity", "counts": counts})
                self._schedule_flush()

    async def _serve(self) -> None:
        if self._serving or self._stop.is_set():
            return
        self._serving = True
        await self.server.start(
            [listening_socket(h, p) for h, p in self.http_addrs],
            [listening_socket(h, p) for h, p in self.https_addrs],
        )

    async def _session(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self.control_path)
        self._writer = writer
        writer.write(control.encode({"t": "hello", "worker": self.index, "pid": os.getpid()}))
        self._flush()
        try:
            while True:
                msg = await control.read_message(reader)
                if msg is None:
                    return
                t = msg.get("t")
                if t == "snapshot":
                    self.router.replace_table(msg["table"])
                    await self._serve()
                    writer.write(control.encode({"t": "ready", "worker": self.index}))
                elif t == "upsert":
                    self.router.upsert_app(msg["app"])
                elif t == "remove":
                    self.router.remove_app(msg["app_id"])
                elif t == "app_certs":
                    self.router.set_app_certificates(msg["app_id"], msg["certificates"])
                elif t == "stop":
                    # run() stops the server; the channel stays open for the last log lines
                    self._stop.set()
        finally:
            self._writer = None
            writer.close()

    async def _sessions(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        activity = asyncio.ensure_future(self._activity())
        sessions = asyncio.ensure_future(self._sessions())
        await self._stop.wait()
        activity.cancel()
        await self.server.stop()  # the grace period; H24 for what still runs after it
        self._flush()
        writer = self._writer
        if writer is not None and not writer.is_closing():
            try:
                await asyncio.wait_for(writer.drain(), 5.0)
            except (TimeoutError, ConnectionError):
                pass
        sessions.cancel()
        await asyncio.gather(sessions, activity, return_exceptions=True)


def main() -> None:
    config = json.loads(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Worker(config).run())


if __name__ == "__main__":
    main()
