"""RouterSupervisor: runs in the control plane's loop, owns the ports and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..events import LogSink
from . import control
from .server import RouterServer, listening_socket
from .state import Router
from .table import RouteTable
from .timers import RouterTimers

Addr = tuple[str, int]
STOP_MARGIN = 10.0  # beyond shutdown_grace before a stopping worker is killed
ROUTER_NICE = -5  # applied when the platform may raise priority (root)


class RouterSupervisor:
    """Start with `await start()`, feed the route table, `await stop()`.

    workers=0 runs the router in the caller's loop (tests, benchmarks); otherwise N worker
    processes each bind the ports with SO_REUSEPORT and get the table over a unix socket in
    run_dir. Router lines go to log_sink.emit(app_id, "heroku", "router", line, ts).
    """

    def __init__(
        self,
        http_addrs: list[Addr],
        https_addrs: list[Addr],
        workers: int,
        log_sink: LogSink,
        on_wake: Callable[[str], None] | None = None,
        timers: RouterTimers | None = None,
        run_dir: Path | None = None,
        on_activity: Callable[[dict[str, int]], None] | None = None,
        activity_interval: float = 1.0,
        snapshot: dict[str, Any] | None = None,
        span_sink: Callable[[list[list[Any]]], None] | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        if workers and run_dir is None:
            raise ValueError("run_dir is required with worker processes")
        self.workers = workers
        self.log_sink = log_sink
        self.on_wake = on_wake or (lambda app_id: None)
        self.on_activity = on_activity or (lambda counts: None)
        # span records of apps with a telemetry drain (router/trace.py), in batches
        self.span_sink = span_sink or (lambda records: None)
        self.activity_interval = activity_interval
        self.timers = timers or RouterTimers()
        self.run_dir = Path(run_dir) if run_dir else None
        self._http_req = list(http_addrs)
        self._https_req = list(https_addrs)
        self._reserved: list[socket.socket] = []
        self.http_addresses: list[Addr] = []
        self.https_addresses: list[Addr] = []
        self._snapshot: dict[str, Any] = copy.deepcopy(snapshot) if snapshot else {"apps": {}}
        RouteTable(self._snapshot)  # validate early: bad input gets a clear error
        # Certificates by app: one app's change replaces its own, not a list of every app's.
        self._app_certs = _by_app(self._snapshot.pop("certificates", None) or [])
        # by worker pid: workers of an earlier control plane (same run_dir) reconnect too
        self._conns: dict[int, asyncio.StreamWriter] = {}
        self._ready: set[int] = set()
        self._procs: list[asyncio.subprocess.Process] = []
        self._control: asyncio.AbstractServer | None = None
        self._inproc: RouterServer | None = None
        self._inproc_router: Router | None = None
        self._activity_task: asyncio.Task[None] | None = None
        self._ready_event = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def control_path(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "router-control.sock"

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.returncode is None]

    # lifecycle -----------------------------------------------------------
    def _reserve(self, addrs: list[Addr], listen: bool) -> tuple[list[socket.socket], list[Addr]]:
        socks, bound = [], []
        for host, port in addrs:
            s = listening_socket(host, port, reuse_port=True, listen=listen)
            socks.append(s)
            name = s.getsockname()
            bound.append((host, int(name[1])))
        return socks, bound

    async def start(self) -> None:
        inproc = self.workers == 0
        http_socks, self.http_addresses = self._reserve(self._http_req, inproc)
        https_socks, self.https_addresses = self._reserve(self._https_req, inproc)
        if inproc:
            self._inproc_router = Router(
                self.timers,
                self._emit_local,
                self.on_wake,
                RouteTable(self._table()),
                span=lambda record: self.span_sink([record]),
            )
            self._inproc = RouterServer(self._inproc_router)
            self._inproc.tls.reload(None)
            await self._inproc.start(http_socks, https_socks)
            self._activity_task = asyncio.ensure_future(self._local_activity())
            return
        # bound but not listening: keeps the ports ours while workers listen via SO_REUSEPORT
        self._reserved = http_socks + https_socks
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.control_path.unlink()
        except FileNotFoundError:
            pass
        self._control = await asyncio.start_unix_server(self._on_worker, str(self.control_path))
        os.chmod(self.control_path, 0o600)
        for i in range(self.workers):
            self._procs.append(await self._spawn(i))
        self._monitor = asyncio.ensure_future(self._watch())
        try:
            async with asyncio.timeout(30):
                while len(self._ready) < self.workers:
                    await self._ready_event.wait()
                    self._ready_event.clear()
        except TimeoutError:
            await self.stop()
            raise RuntimeError("router workers did not become ready in 30 s") from None

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        src = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        config = {
            "worker": index,
            "control": str(self.control_path),
            "http": self.http_addresses,
            "https": self.https_addresses,
            "timers": self.timers.to_dict(),
            "activity_interval": self.activity_interval,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spruce.router.worker", json.dumps(config), env=env
        )
        # The data path outranks the control plane, builds and dynos sharing its cores (on
        # Heroku the routers have machines of their own): with root, workers run at nice -5.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, ROUTER_NICE)
        return proc

    async def _watch(self) -> None:
        """Restart a worker that died (its ports stay served by the others meanwhile)."""
        while True:
            await asyncio.sleep(0.2)
            for i, p in enumerate(self._procs):
                if p.returncode is not None and not self._stopping:
                    self._ready.discard(i)
                    self._procs[i] = await self._spawn(i)

    async def stop(self) -> None:
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
        if self._activity_task:
            self._activity_task.cancel()
        if self._inproc is not None:
            await self._inproc.stop()
            self._inproc = None
        for w in list(self._conns.values()):
            try:
                w.write(control.encode({"t": "stop"}))
            except Exception:
                pass
        # workers stop gracefully (shutdown_grace, then H24); a worker's channel ends when it
        # exits, after its last log lines were read (workers adopted from an earlier control
        # plane included)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timers.shutdown_grace + STOP_MARGIN
        while self._conns and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for p in self._procs:
            try:
                async with asyncio.timeout(max(0.5, deadline - loop.time())):
                    await p.wait()
            except TimeoutError:
                p.kill()
                await p.wait()
        self._procs = []
        self.detach()
        for s in self._reserved:
            s.close()
        self._reserved = []

    def detach(self) -> None:
        """Drop the control channel but leave workers serving (the control plane going away)."""
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        if self._control is not None:
            self._control.close()
            self._control = None
        for w in list(self._conns.values()):
            w.close()
        self._conns.clear()

    async def reattach(self) -> None:
        """Open the control channel again; workers reconnect and get the current snapshot."""
        if self._control is None and self.workers:
            try:
                self.control_path.unlink()
            except FileNotFoundError:
                pass
            self._control = await asyncio.start_unix_server(self._on_worker, str(self.control_path))
            if self._monitor is None and not self._stopping:
                self._monitor = asyncio.ensure_future(self._watch())

    # table feed ------------------------------------------------------------
    def _broadcast(self, msg: dict[str, Any]) -> None:
        if self._inproc_router is not None:
            return
        frame = control.encode(msg)
        for w in list(self._conns.values()):
            if not w.is_closing():
                w.write(frame)

    def _table(self) -> dict[str, Any]:
        """The whole table as workers take it at a (re)connect."""
        certs = [c for entries in self._app_certs.values() for c in entries]
        return dict(self._snapshot, certificates=certs)

    def replace_table(self, snapshot: dict[str, Any]) -> None:
        RouteTable(snapshot)
        self._snapshot = copy.deepcopy(snapshot)
        self._app_certs = _by_app(self._snapshot.pop("certificates", None) or [])
        table = self._table()
        if self._inproc_router is not None:
            self._inproc_router.replace_table(table)
        self._broadcast({"t": "snapshot", "table": table})

    def upsert_app(self, app: dict[str, Any]) -> None:
        RouteTable({"apps": {str(app["id"]): app}})
        self._snapshot.setdefault("apps", {})[str(app["id"])] = copy.deepcopy(app)
        if self._inproc_router is not None:
            self._inproc_router.upsert_app(app)
        self._broadcast({"t": "upsert", "app": app})

    def remove_app(self, app_id: str) -> None:
        self._snapshot.get("apps", {}).pop(app_id, None)
        if self._inproc_router is not None:
            self._inproc_router.remove_app(app_id)
        self._broadcast({"t": "remove", "app_id": app_id})

    def set_app_certificates(self, app_id: str, certificates: list[dict[str, Any]]) -> None:
        """Replace one app's certificates: only they cross to the workers, not every app's."""
        entries = [dict(c, app_id=app_id) for c in certificates]
        RouteTable({"certificates": entries})  # validate before any worker sees it
        if entries:
            self._app_certs[app_id] = entries
        else:
            self._app_certs.pop(app_id, None)
        if self._inproc_router is not None:
            self._inproc_router.set_app_certificates(app_id, entries)
        self._broadcast({"t": "app_certs", "app_id": app_id, "certificates": entries})

    # worker messages -------------------------------------------------------
    def _emit_local(self, app_id: str, line: str) -> None:
        self.log_sink.emit(app_id, "heroku", "router", line)

    async def _local_activity(self) -> None:
        while True:
            await asyncio.sleep(self.activity_interval)
            assert self._inproc_router is not None
            counts = self._inproc_router.take_activity()
            if counts:
                self.on_activity(counts)

    async def _on_worker(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pid = -1
        try:
            while True:
                msg = await control.read_message(reader)
                if msg is None:
                    break
                t = msg.get("t")
                if t == "hello":
                    pid = int(msg["pid"])
                    self._conns[pid] = writer
                    writer.write(control.encode({"t": "snapshot", "table": self._table()}))
                elif t == "ready":
                    self._ready.add(int(msg["worker"]))
                    self._ready_event.set()
                elif t == "log":
                    for app_id, line, ts in msg["lines"]:
                        self.log_sink.emit(app_id, "heroku", "router", line, ts)
                elif t == "spans":
                    self.span_sink(list(msg["spans"]))
                elif t == "wake":
                    self.on_wake(str(msg["app_id"]))
                elif t == "activity":
                    self.on_activity({str(k): int(v) for k, v in msg["counts"].items()})
        except (ValueError, KeyError, TypeError):
            pass  # a confused worker: drop its channel, it reconnects
        finally:
            if self._conns.get(pid) is writer:
                del self._conns[pid]
            writer.close()


def _by_app(certificates: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_app: dict[str, list[dict[str, Any]]] = {}
    for c in certificates:
        by_app.setdefault(str(c.get("app_id") or ""), []).append(c)
    return by_app
