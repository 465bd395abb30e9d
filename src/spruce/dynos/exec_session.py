"""One Heroku Exec session inside a running dyno (spruce.dynos.exec_gateway serves them).

A session's process is started with the dyno's own entry: `nsenter` into the namespaces
of a process of its sandbox (mounts, pid, network, ...), `setpriv` to its uid, inside its
cgroup, with its environment, so it sees what the dyno sees and counts against its memory.
TCP connections are opened from the dyno's network namespace (a thread joins it with
setns(2), as only that thread changes namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import pty
import signal
import socket
import struct
import termios
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from spruce.dynos.process import PROFILE_PRELUDE

if TYPE_CHECKING:
    from spruce.dynos.dyno import Dyno
    from spruce.dynos.sandbox import Sandbox

log = logging.getLogger(__name__)
CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 10.0
ENTRY_TRIES = 50
CLIENT_LINGER = 1.0
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
_NETNS_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exec-netns")
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP,
           "KILL": signal.SIGKILL, "QUIT": signal.SIGQUIT, "USR1": signal.SIGUSR1,
           "USR2": signal.SIGUSR2}  # fmt: skip


@dataclass(frozen=True)
class DynoEntry:
    """How to run something inside one launch of a dyno."""

    prefix: tuple[str, ...]
    """argv prefix that joins the dyno (its namespaces, uid, cgroup); the command follows."""
    env: dict[str, str]
    cwd: str | None
    """The working directory on the host (when not entering a sandbox, which sets its own)."""
    netns: str | None
    """The dyno's network namespace when it is not the platform's (a space's dyno)."""
    address: str
    """Where the dyno's own ports are reached (0.0.0.0 and localhost map here)."""
    root: str | None = None
    """The sandbox's root seen from the host (/proc/PID/root): its /dev/pts gives terminals."""

    @classmethod
    def of(cls, d: Dyno, sandbox: Sandbox) -> DynoEntry | None:
        proc = d.proc
        if proc is None or proc.pid is None:
            return None
        cwd: str | None = str(d.host_dir) if d.host_dir else None
        inner = proc.inner_pid()
        if inner is None and sandbox.bwrap and d.uid is not None:
            return None  # sandboxed, but its sandbox is not there yet: never run outside it
        prefix: list[str] | None = None
        if inner is not None:
            prefix = sandbox.enter([], inner, d.uid)
            if prefix is not None:
                cwd = None
        if prefix is None and d.uid is not None and sandbox.setpriv:
            prefix = [sandbox.setpriv, f"--reuid={d.uid}", f"--regid={d.uid}", "--clear-groups",
                      "--no-new-privs", "--"]  # fmt: skip
        prefix = sandbox.in_cgroup(prefix or [], proc.cgroup) if proc.cgroup else prefix or []
        netns: str | None = f"/proc/{proc.pid}/ns/net"
        try:
            if os.stat(f"/proc/{proc.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
                netns = None
        except OSError:
            netns = None
        root = f"/proc/{inner}/root" if inner is not None and cwd is None else None
        return cls(tuple(prefix), dict(d.env), cwd, netns, d.host, root)


def _connect_in_netns(netns: str, host: str, port: int) -> socket.socket:
    """A TCP connection made from another network namespace (this thread joins it and
    comes back; the socket stays in the namespace it was made in)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        try:
            return socket.create_connection((host, port), CONNECT_TIMEOUT)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - the kernel refused
                os._exit(70)  # a thread left in a dyno's network would leak into others
    finally:
        os.close(own)
        os.close(target)


async def open_tcp(entry: DynoEntry, host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    if entry.netns is not None:
        sock = await loop.run_in_executor(_NETNS_THREAD, _connect_in_netns, entry.netns, host, port)
    else:
        sock = await loop.run_in_executor(
            None, lambda: socket.create_connection((host, port), CONNECT_TIMEOUT)
        )
    sock.setblocking(False)
    return sock


class TcpRelay(asyncssh.SSHTCPSession[bytes]):
    """A forwarded connection: the channel's bytes to a socket and back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chan: asyncssh.SSHTCPChannel[bytes] | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def over(cls, sock: socket.socket) -> TcpRelay:
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self.chan = chan
        self._pump = asyncio.create_task(self._to_channel())

    async def _to_channel(self) -> None:
        assert self.chan is not None
        with contextlib.suppress(OSError, asyncssh.Error):
            while data := await self.reader.read(65536):
                self.chan.write(data)
            self.chan.write_eof()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        with contextlib.suppress(OSError):
            self.writer.write(data)

    def eof_received(self) -> bool:
        with contextlib.suppress(OSError):
            self.writer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pump is not None:
            self._pump.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()


def open_terminal(root: str | None) -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal: one of the sandbox's own devpts when it
    has one (so `tty` and ttyname(3) inside name it), else of the host's."""
    if root is not None:
        try:
            master = os.open(f"{root}/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return pty.openpty()
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
            (number,) = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))
            slave = os.open(f"{root}/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            os.close(master)
            return pty.openpty()
        os.set_inheritable(master, False)
        return master, slave
    return pty.openpty()


def _set_winsize(fd: int, cols: int, rows: int) -> None:
    if cols > 0 and rows > 0:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _terminal_taker(slave: int) -> Callable[[], None]:
    """For the child, before exec: a session of its own with the terminal as its
    controlling one. By the slave's own fd: uvloop calls this before it sets fds 0-2."""

    def take() -> None:
        if os.getsid(0) != os.getpid():
            os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    return take


class ExecSession(asyncssh.SSHServerSession[bytes]):
    """A shell, a command or sftp-server inside the dyno, relayed over one channel."""

    def __init__(self, resolve: Callable[[], DynoEntry | None], sftp_server: str | None) -> None:
        self.resolve = resolve
        self.entry: DynoEntry | None = None
        self.sftp_server = sftp_server
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: tuple[str, int, int] | None = None
        self.argv: list[str] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None
        self._pending: list[bytes] = []
        self._eof = False
        self._client_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- requests ----------------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object
    ) -> bool:
        self.term = (term_type or "xterm", term_size[0], term_size[1])
        return True

    def shell_requested(self) -> bool:
        self.argv = ["/bin/bash", "-c", PROFILE_PRELUDE + "exec /bin/bash"]
        return True

    def exec_requested(self, command: str) -> bool:
        self.argv = ["/bin/bash", "-c", PROFILE_PRELUDE + command]
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp" or self.sftp_server is None:
            return False
        self.argv = [self.sftp_server]
        self.term = None  # a binary protocol: never through a terminal
        return True

    def session_started(self) -> None:
        self._task = asyncio.create_task(self._guarded())

    async def _guarded(self) -> None:
        try:
            await self._run()
        except Exception:
            log.exception("Heroku Exec: a session failed")
            if self.chan is not None:
                with contextlib.suppress(Exception):
                    self.chan.write_stderr(b"Heroku Exec: the session failed\r\n")
                    self.chan.exit(1)

    # -- data from the client ----------------------------------------------------------
    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if b"\x04" in data:
            self._client_done.set()
        if self.proc is None:
            self._pending.append(data)
        else:
            self._write_in(data)

    def eof_received(self) -> bool:
        self._eof = True
        self._client_done.set()
        if self.proc is not None:
            self._close_in()
        return True

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.master is not None:
            _set_winsize(self.master, width, height)

    def signal_received(self, signal_name: str) -> None:
        sig = SIGNALS.get(signal_name)
        if sig is not None and self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGHUP)

    def _write_in(self, data: bytes) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, data)
        elif self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.write(data)

    def _close_in(self) -> None:
        if self.master is None and self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()

    # -- the process -------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        assert self.entry is not None
        env = dict(self.entry.env)
        if self.term is not None:
            env["TERM"] = self.term[0]
            env["COLUMNS"], env["LINES"] = str(self.term[1]), str(self.term[2])
        return env

    async def _spawn(self, argv: Sequence[str]) -> None:
        assert self.chan is not None and self.entry is not None
        if self.term is not None:
            master, slave = open_terminal(self.entry.root)
            _set_winsize(slave, self.term[1], self.term[2])
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, env=self._env(),
                    cwd=self.entry.cwd, preexec_fn=_terminal_taker(slave),
                )  # fmt: skip
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            self.master = master
        else:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self._env(), cwd=self.entry.cwd,
                start_new_session=True,
            )  # fmt: skip

    async def _run(self) -> None:
        chan = self.chan
        assert chan is not None
        if self.argv is None:
            chan.exit(1)
            return
        for _ in range(ENTRY_TRIES):  # a dyno just up may not have its sandbox yet
            self.entry = self.resolve()
            if self.entry is not None:
                break
            await asyncio.sleep(0.1)
        else:
            chan.write_stderr(b"Heroku Exec: the dyno is not running (or not ready)\r\n")
            chan.exit(1)
            return
        try:
            await self._spawn([*self.entry.prefix, *self.argv])
        except OSError as e:
            chan.write_stderr(
                f"Heroku Exec: could not start in the dyno ({e.strerror})\r\n".encode()
            )
            chan.exit(127)
            return
        for data in self._pending:
            self._write_in(data)
        self._pending.clear()
        if self._eof:
            self._close_in()
        assert self.proc is not None
        try:
            if self.master is not None:
                await self._relay_terminal(chan, self.master)
            else:
                await asyncio.gather(
                    self._relay(self.proc.stdout, chan.write),
                    self._relay(self.proc.stderr, chan.write_stderr),
                )
            status = await self.proc.wait()
        finally:
            if self.master is not None:
                os.close(self.master)
                self.master = None
        if self.term is not None:
            # Heroku's CLI starts sending its stdin (then ^D) on the first output and fails
            # if the channel closed meanwhile: give a quick command's client that moment.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._client_done.wait(), CLIENT_LINGER)
        with contextlib.suppress(OSError, asyncssh.Error):
            chan.exit(status if status >= 0 else 128 - status)

    @staticmethod
    async def _relay(stream: asyncio.StreamReader | None, write: object) -> None:
        if stream is None or not callable(write):
            return
        with contextlib.suppress(OSError, asyncssh.Error):
            while data := await stream.read(65536):
                write(data)

    async def _relay_terminal(self, chan: asyncssh.SSHServerChannel[bytes], master: int) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""  # EIO: every holder of the terminal is gone
            if not data:
                loop.remove_reader(master)
                if not done.done():
                    done.set_result(None)
                return
            with contextlib.suppress(OSError, asyncssh.Error):
                chan.write(data)

        loop.add_reader(master, readable)
        try:
            await done
        finally:
            loop.remove_reader(master)
