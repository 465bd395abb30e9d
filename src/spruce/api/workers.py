"""The API's read workers as the main process keeps them (spruce up --api-workers N).

The main process binds the API's port and hands the listening socket to N worker processes
(api/read_worker.py), which accept every connection; the main process then serves the full
API only on a unix socket, for what the workers forward. Sharing one listening socket (not
one socket each with SO_REUSEPORT) means a worker that dies loses no connection waiting in
its queue: the others, and its replacement, accept them. A worker that exits is started
again; `stop` ends them all, finishing the requests they have in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sys
from pathlib import Path

from spruce.services.settings import PlatformAddresses

log = logging.getLogger("spruce.api")
RESTART_DELAY = 0.5  # a worker that dies at once is not restarted in a tight loop
STOP_GRACE = 10.0


def default_count(cores: int | None = None) -> int:
    """0 (the main process answers alone) on one or two cores, where the platform's other
    processes use the cores anyway; else half the cores, at most 4."""
    cores = cores or os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores // 2)


class ApiWorkers:
    def __init__(
        self,
        count: int,
        listen: socket.socket,
        main_socket: Path,
        shared_limits: Path,
        database_url: str,
        addresses: PlatformAddresses,
        rate_limit: int,
    ) -> None:
        self.count = count
        self._listen = listen
        self._config = {
            "fd": listen.fileno(),
            "main_socket": str(main_socket),
            "shared_limits": str(shared_limits),
            "database_url": database_url,
            "addresses": dataclasses.asdict(addresses),
            "rate_limit": rate_limit,
        }
        self._procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None and p.returncode is None]

    async def start(self) -> None:
        for i in range(self.count):
            self._procs[i] = await self._spawn(i)
            self._keepers.append(asyncio.create_task(self._keep(i)))

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        src = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        # The store's URL may hold a password: the environment, never the command line.
        env["SPRUCE_API_WORKER"] = json.dumps({**self._config, "index": index})
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spruce.api.read_worker",
            env=env,
            pass_fds=(self._listen.fileno(),),
        )

    async def _keep(self, index: int) -> None:
        while True:
            proc = self._procs[index]
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            log.warning("API worker %d (pid %d) exited %s; starting another", index, proc.pid, code)
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            self._procs[index] = await self._spawn(index)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._keepers:
            task.cancel()
        live = [p for p in self._procs if p is not None and p.returncode is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in live:
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await p.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
