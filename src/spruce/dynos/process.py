"""One dyno process: launch (profile scripts, sandbox, cgroup), output, memory, exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spruce.compile.oci.unpack import UnpackedImage
from spruce.dynos import procs
from spruce.dynos.disk import APP_DIR, TMP_DIR
from spruce.dynos.images import image_sandbox_argv
from spruce.dynos.sandbox import Cgroup, DynoFs, Sandbox

# Run as `bash -c`: .profile.d scripts, then $HOME/.profile, then the command (Heroku's order).
PROFILE_PRELUDE = (
    'cd "$HOME" 2>/dev/null\n'
    'for __f in "$HOME"/.profile.d/*.sh; do [ -r "$__f" ] && . "$__f"; done; unset __f\n'
    '[ -r "$HOME/.profile" ] && . "$HOME/.profile"\n'
)
MAX_LINE = 10_000


@dataclass
class LaunchSpec:
    app_id: str
    dyno_name: str
    dyno_id: str
    command: str
    env: dict[str, str]
    host_dir: Path
    """The slug (or the app's copy of it) on the host."""
    home: str
    """HOME and working directory as the dyno sees them."""
    uid: int | None
    memory_limit: int
    pids_max: int
    stdio: str = "log"
    """log: lines to the log sink; pipe: stdin/stdout pipes; pty: a pseudo-terminal."""
    winsize: tuple[int, int] | None = None
    image: UnpackedImage | None = None
    """Fir: the unpacked image (root at /); host_dir is then the writable /workspace."""
    image_argv: list[str] | None = None
    """Fir: what runs inside the image (/cnb/process/<type>, or bash -c for one-offs)."""
    disk_mb: int = 0
    """The dyno's own disk (/app's changes, /tmp), when the sandbox gives it one."""
    shm_bytes: int = 64 << 20
    """/dev/shm's size (it is memory: the dyno's memory quota)."""
    netns: str | None = None
    """A space's dyno: the network namespace it runs in (its own address and egress rules)."""
    hosts: Path | None = None
    """Its /etc/hosts when not the platform's (a space's: private networking names)."""
    enter_pid: int | None = None
    """run:inside: a process of the target dyno's sandbox, whose namespaces (its /app,
    /tmp, processes) the command joins instead of getting a sandbox of its own."""

    @property
    def fs(self) -> DynoFs | None:
        return DynoFs(self.dyno_id, self.disk_mb, self.shm_bytes) if self.disk_mb else None


@dataclass
class PersistedDyno:
    """What a later manager needs to find (and end) a dyno left by one that died."""

    app_id: str
    dyno_name: str
    pid: int
    pgid: int
    starttime: int | None
    port: int | None
    cgroup_dirs: list[str] = field(default_factory=list)


@dataclass
class MemSample:
    total_mb: float
    rss_mb: float
    cache_mb: float
    swap_mb: float
    pgpgin: int
    pgpgout: int
    running: int


class DynoProcess:
    def __init__(
        self,
        spec: LaunchSpec,
        sandbox: Sandbox,
        state_dir: Path,
        emit_line: Callable[[str], None],
        port: int | None,
    ) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.state_dir = state_dir
        self.emit_line = emit_line
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.cgroup: Cgroup | None = None
        self.pty_master: int | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._state_file: Path | None = None
        self.started_at = time.time()
        self.returncode: int | None = None
        self.killed = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def spawn(self) -> None:
        spec = self.spec
        key = f"{spec.app_id}.{spec.dyno_name}.{spec.dyno_id[:8]}"
        self.cgroup = self.sandbox.cgroup(key, spec.memory_limit, spec.pids_max)
        entered = self._enter_argv(spec)
        if entered is not None:
            argv, cwd = entered, "/"
        elif spec.image is not None:
            argv = self._image_argv(spec)
            cwd = "/"
        else:
            argv = self.sandbox.wrap(
                ["/bin/bash", "-c", PROFILE_PRELUDE + spec.command],
                spec.host_dir,
                spec.uid,
                self.cgroup,
                spec.dyno_id,
                spec.fs,
                spec.hosts,
            )
            cwd = "/" if spec.home != str(spec.host_dir) else str(spec.host_dir)
        if entered is None:
            argv = self.sandbox.in_netns(argv, spec.netns)
        slave: int | None = None
        kwargs: dict[str, object] = {}
        if spec.stdio == "pty":
            master, slave = pty.openpty()
            if spec.winsize:
                import fcntl
                import struct
                import termios

                rows, cols = spec.winsize
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            self.pty_master = master
            os.set_blocking(master, False)
            kwargs = {"stdin": slave, "stdout": slave, "stderr": slave}
        elif spec.stdio == "pipe":
            kwargs = {
                "stdin": asyncio.subprocess.PIPE,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.STDOUT,
            }
        else:
            kwargs = {
                "stdin": asyncio.subprocess.DEVNULL,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.PIPE,
            }
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=spec.env,
                start_new_session=True,
                limit=MAX_LINE * 2,
                **kwargs,  # type: ignore[arg-type]
            )
        except BaseException:
            if self.cgroup:
                self.cgroup.remove()
            self.sandbox.release_disk(spec.fs)
            raise
        finally:
            if slave is not None:
                os.close(slave)
        self._persist()
        if spec.stdio == "log":
            assert self.proc.stdout and self.proc.stderr
            self._pumps = [
                asyncio.create_task(self._pump(self.proc.stdout)),
                asyncio.create_task(self._pump(self.proc.stderr)),
            ]

    def _enter_argv(self, spec: LaunchSpec) -> list[str] | None:
        if spec.enter_pid is None:
            return None
        if spec.image is not None:
            assert spec.image_argv is not None
            inner = spec.image_argv
        else:
            inner = ["/bin/bash", "-c", PROFILE_PRELUDE + spec.command]
        argv = self.sandbox.enter(inner, spec.enter_pid, spec.uid)
        return self.sandbox.in_cgroup(argv, self.cgroup) if argv is not None else None

    def inner_pid(self) -> int | None:
        """A process inside this dyno's sandbox (its own pid namespace), if it has one."""
        try:
            ours = os.readlink("/proc/self/ns/pid")
        except OSError:
            return None
        for p in self.members():
            try:
                if os.readlink(f"/proc/{p.pid}/ns/pid") != ours:
                    return p.pid
            except OSError:
                continue
        return None

    def _image_argv(self, spec: LaunchSpec) -> list[str]:
        assert spec.image is not None and spec.image_argv is not None
        bwrap = self.sandbox.bwrap_for_images()
        if bwrap is None:
            raise OSError("Fir dynos run in their image's root and need bubblewrap (bwrap)")
        disk_dir = self.sandbox.disk_dir(spec.fs)
        inner = image_sandbox_argv(
            spec.image,
            spec.image_argv,
            bwrap=bwrap,
            workspace=disk_dir / APP_DIR if disk_dir else spec.host_dir,
            uid=spec.uid if self.sandbox.users else None,
            setpriv=self.sandbox.setpriv,
            hostname=spec.dyno_id,
            extra_ro=self.sandbox.settings.image_ro_paths,
            tmp=disk_dir / TMP_DIR if disk_dir else None,
            tmp_bytes=max(spec.disk_mb, 64) << 20,
            shm_bytes=spec.shm_bytes,
            hosts=spec.hosts
            or (self.sandbox.hosts_file if self.sandbox.hosts_file.exists() else None),
        )
        inner = self.sandbox.wrap_disk(inner, spec.fs, spec.host_dir)
        return self.sandbox.in_cgroup(inner, self.cgroup)

    def _persist(self) -> None:
        assert self.proc is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        rec = PersistedDyno(
            self.spec.app_id,
            self.spec.dyno_name,
            self.proc.pid,
            self.proc.pid,
            procs.starttime(self.proc.pid),
            self.port,
            [str(d) for d in self.cgroup.dirs] if self.cgroup else [],
        )
        path = self.state_dir / f"{self.spec.dyno_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec)))
        tmp.replace(path)
        self._state_file = path

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as e:
                raw = e.partial
                if raw:
                    self.emit_line(raw.decode(errors="replace").rstrip("\r\n"))
                return
            except asyncio.LimitOverrunError:
                raw = await stream.read(MAX_LINE)
            self.emit_line(raw[:MAX_LINE].decode(errors="replace").rstrip("\r\n"))

    def members(self) -> list[procs.ProcStat]:
        if self.proc is None:
            return []
        found = procs.group_members(self.proc.pid)
        if self.cgroup:
            seen = {p.pid for p in found}
            found += [p for p in procs.pids_alive(self.cgroup.procs()) if p.pid not in seen]
        return found

    def alive(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.returncode is None:
            return True
        return bool(self.members())

    def signal(self, sig: int) -> None:
        if self.proc is None:
            return
        if sig == procs.SIGKILL:
            self.killed = True
        procs.signal_group(self.proc.pid, sig, self.cgroup.procs() if self.cgroup else None)

    async def wait(self) -> int:
        """Wait for the leader and every process of the dyno; returns Heroku's exit status."""
        assert self.proc is not None
        rc = await self.proc.wait()
        self.returncode = rc
        # The sandbox's own leader may end before the app's processes (which got the same
        # signal but may ignore it): the dyno is gone only when its whole group is.
        while self.members():
            await asyncio.sleep(0.1)
        if self.killed:
            # The wrappers (bwrap, bash) report their own status; Heroku reports the kill.
            rc = -procs.SIGKILL
        if self._pumps:
            done, pending = await asyncio.wait(self._pumps, timeout=1.0)
            for t in pending:
                t.cancel()
        self.cleanup()
        return procs.exit_status(rc)

    def cleanup(self) -> None:
        self.sandbox.release_disk(self.spec.fs)
        if self.pty_master is not None:
            try:
                os.close(self.pty_master)
            except OSError:
                pass
            self.pty_master = None
        if self.cgroup:
            self.cgroup.remove()
        if self._state_file:
            self._state_file.unlink(missing_ok=True)
            self._state_file = None

    def memory(self) -> MemSample:
        members = self.members()
        running = sum(1 for p in members if p.state in ("R", "D"))
        stat = self.cgroup.memory() if self.cgroup else None
        mb = 1024 * 1024
        if stat is not None:
            rss = stat.get("total_rss", stat.get("rss", 0)) / mb
            cache = stat.get("total_cache", stat.get("cache", 0)) / mb
            swap = stat.get("total_swap", stat.get("swap", 0)) / mb
            return MemSample(
                rss + swap,
                rss,
                cache,
                swap,
                stat.get("total_pgpgin", 0),
                stat.get("total_pgpgout", 0),
                running,
            )
        rss = sum(p.rss_bytes for p in members) / mb
        return MemSample(rss, rss, 0.0, 0.0, 0, 0, running)


async def end_leftover(rec: PersistedDyno, sandbox: Sandbox, grace: float) -> bool:
    """End the processes of a dyno recorded by an earlier manager. True if any were found."""
    cg = sandbox.existing_cgroup(rec.cgroup_dirs) if rec.cgroup_dirs else None
    leader = procs.read_stat(rec.pid)
    # Linux hands out no pid that is still a process group's id: a new process with the
    # leader's pid means the old group is gone (its cgroup may still hold escapees).
    reused = leader is not None and rec.starttime is not None and leader.starttime != rec.starttime
    pgid = None if reused else rec.pgid

    def alive() -> list[int]:
        pids = [p.pid for p in procs.group_members(pgid)] if pgid else []
        if cg:
            pids += [p.pid for p in procs.pids_alive(cg.procs())]
        return pids

    def send(sig: int) -> None:
        for pid in alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    if not alive():
        if cg:
            cg.remove()
        return False
    send(procs.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if alive():
        send(procs.SIGKILL)
        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    if cg:
        cg.remove()
    return True
